"""`scanaot.tensor`: Aesara's `aesara.tensor` names, for tracing programs.

    import scanaot.tensor as at
    x = at.vector("x")            # float64 (config.floatX) vector
    k = at.iscalar("k")           # int32 scalar

The submodules Aesara users import from (`scanaot.tensor.math`, `.basic`, `.nnet`,
`.nlinalg`, `.slinalg`, `.extra_ops`, `.shape`, `.subtensor`, `.var`, `.type`) re-export
the op families' names; a name scanaot lacks raises an AttributeError pointing at
docs/tensor.md.
"""
from __future__ import annotations

from ..graph.basic import Constant, Variable, as_tensor_variable, constant  # noqa: F401
# each op family lists its user functions in __all__
from ..ops.creation import *  # noqa: F401,F403
from ..ops.elemwise import *  # noqa: F401,F403
from ..ops.elemwise import abs_ as abs  # noqa: F401,A004
from ..ops.elemwise import sgn
from ..ops.elemwise import pow_ as pow  # noqa: F401,A004
from ..ops.indexing import *  # noqa: F401,F403
from ..ops.linalg import *  # noqa: F401,F403
from ..ops.nlinalg import *  # noqa: F401,F403
from ..ops.nnet import *  # noqa: F401,F403
from ..ops.reduction import *  # noqa: F401,F403
from ..ops.join import *  # noqa: F401,F403
from ..ops.shape import *  # noqa: F401,F403
from . import _exports
from . import random  # noqa: F401  (at.random, as in Aesara)
from .type import TensorType, tensor  # noqa: F401
from .type import constructors as _constructors

sign = sgn
TensorVariable = Variable
TensorConstant = Constant
globals().update(_constructors())

# the submodules last: they take their names from the families above; where one
# shares its name with a function (shape, var), the function keeps the name here
_functions = dict(globals())
from . import basic, extra_ops, math, nlinalg, nnet, shape, slinalg, subtensor, type, var  # noqa: E402,F401,I001

globals().update({name: _functions[name] for name in ("shape", "var") if name in _functions})
del _functions

__getattr__ = _exports.module_getattr(__name__)
