"""`scanaot.tensor`: Aesara's `aesara.tensor` names, for tracing programs.

    import scanaot.tensor as at
    x = at.vector("x")            # float32 (config.floatX) vector
    k = at.iscalar("k")           # int32 scalar
"""
from __future__ import annotations

from ..graph.basic import Constant, TensorType, Variable, as_tensor_variable, constant  # noqa: F401
from ..ops.creation import alloc, arange, ones, ones_like, zeros, zeros_like  # noqa: F401
from ..ops.elemwise import (abs_ as abs, add, and_, cast, ceil, cos, eq, exp, floor, ge, gt,  # noqa: F401
                            int_div, invert, le, log, lt, maximum, minimum, mod, mul, neg, neq, or_, sgn,
                            sigmoid, sin, sqrt, sub, switch, tanh, true_div, xor)
from ..ops.elemwise import pow_ as pow  # noqa: F401,A004
from ..ops.indexing import inc_subtensor, set_subtensor  # noqa: F401
from ..ops.linalg import dot  # noqa: F401
from ..ops.reduction import max, mean, min, prod, sum  # noqa: F401,A004
from ..ops.shape import dimshuffle, shape, stack, transpose  # noqa: F401
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
