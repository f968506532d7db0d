"""`scanaot.tensor`: Aesara's `aesara.tensor` names, for tracing programs.

    import scanaot.tensor as at
    x = at.vector("x")            # float32 (config.floatX) vector
    k = at.iscalar("k")           # int32 scalar
"""
from __future__ import annotations

from ..graph.basic import Constant, TensorType, Variable, as_tensor_variable, constant  # noqa: F401
# each op family lists its user functions in __all__
from ..ops.creation import *  # noqa: F401,F403
from ..ops.elemwise import *  # noqa: F401,F403
from ..ops.elemwise import abs_ as abs  # noqa: F401,A004
from ..ops.elemwise import sgn
from ..ops.elemwise import pow_ as pow  # noqa: F401,A004
from ..ops.indexing import *  # noqa: F401,F403
from ..ops.linalg import *  # noqa: F401,F403
from ..ops.nlinalg import *  # noqa: F401,F403
from ..ops.reduction import *  # noqa: F401,F403
from ..ops.join import *  # noqa: F401,F403
from ..ops.shape import *  # noqa: F401,F403
from .type import _make, tensor  # noqa: F401

sign = sgn
TensorVariable = Variable
TensorConstant = Constant

_RANKS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}
_PREFIXES = {"": None, "b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32",
             "d": "float64"}

for _kind, _ndim in _RANKS.items():
    for _prefix, _dtype in _PREFIXES.items():
        globals()[_prefix + _kind] = _make(_dtype, _ndim)
        globals()[_prefix + _kind + "s"] = (
            lambda *names, _c=globals()[_prefix + _kind]: [_c(n) for n in names])
del _kind, _ndim, _prefix, _dtype
