"""`scanaot.tensor`: Aesara's `aesara.tensor` names, for tracing programs.

    import scanaot.tensor as at
    x = at.vector("x")            # float32 (config.floatX) vector
    k = at.iscalar("k")           # int32 scalar
"""
from __future__ import annotations

from .basic import (_make, abs_ as abs, alloc, and_, arange, as_tensor_variable, cast, ceil,  # noqa: F401
                    constant, cos, dimshuffle, dot, eq, exp, floor, ge, gt, inc_subtensor, int_div,
                    invert, le, log, lt, max, maximum, mean, min, minimum, mod, mul, neg, neq, ones,
                    ones_like, or_, prod, set_subtensor, shape, sigmoid, sgn, sin, sqrt, stack,
                    sub, sum, switch, tanh, tensor, transpose, true_div, xor, zeros, zeros_like, add)
from .basic import pow_ as pow  # noqa: F401,A004
from .graph import Constant, TensorType, Variable  # noqa: F401

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
