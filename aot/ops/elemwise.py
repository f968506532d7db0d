"""Elementwise scalar functions with Aesara's broadcasting, and `cast`.

Each scalar function is one row of `SCALAR_FUNCTIONS`: its name, arity, typing rule,
MLIR emission (on arguments already converted to the compute dtype) and derivative.
The `Elemwise` op applies a row over broadcast tensors; its emission builds one
`linalg.generic` and its VJP sums each cotangent back to its input's shape (the
gradient engine's unbroadcast).

Typing rules: "upcast" (the inputs' common dtype), "float" (upcast, then integers
become floats: Aesara's upgrade_to_float), "div" (upcast; integers divide into
floatX, Aesara's TrueDiv), "bool" (comparisons), "int" (upcast;
integer or bool inputs only), "float_only" (float inputs only, same dtype out: Aesara's
rounding), "switch" (cond ? a : b).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, math

from .. import config
from ..emit.builders import (cast_scalar, compute_type, dim, empty, generic, index_const, index_min,
                             load_scalar, scalar_of, scalar_tensor, store_scalar)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Constant, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st


@dataclass(frozen=True)
class ScalarFunction:
    """One scalar function: `emit(args, dtype)` builds it on compute-type values;
    `derivative(inputs, output, g)` gives one cotangent per input (before
    unbroadcasting), or is None for piecewise-constant functions (no gradient)."""
    name: str
    arity: int
    typing: str
    emit: Callable[[list, str], ir.Value]
    derivative: Callable[[list, Variable, Variable], list] | None = None


SCALAR_FUNCTIONS: dict[str, ScalarFunction] = {}


def _row(name: str, arity: int, typing: str, emit: Callable, derivative: Callable | None = None) -> None:
    SCALAR_FUNCTIONS[name] = ScalarFunction(name, arity, typing, emit, derivative)


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def _const(dtype: str, value: float) -> ir.Value:
    return arith.constant(compute_type(dtype), float(value) if _is_float(dtype) else int(value))


# ---------------------------------------------------------------- emission of the rows
def _add(a, d):
    return arith.addf(*a) if _is_float(d) else (arith.xori(*a) if d == "bool" else arith.addi(*a))


def _mul(a, d):
    return arith.mulf(*a) if _is_float(d) else (arith.andi(*a) if d == "bool" else arith.muli(*a))


def _int_div(a, d):
    return math.floor(arith.divf(*a)) if _is_float(d) else arith.floordivsi(*a)


def _mod(args, d):
    """Python's modulo: the result takes the divisor's sign."""
    a, b = args
    zero = _const(d, 0)
    if _is_float(d):
        r = arith.remf(a, b)
        nonzero = arith.cmpf(arith.CmpFPredicate.UNE, r, zero)
        sign_differs = arith.xori(arith.cmpf(arith.CmpFPredicate.OLT, r, zero),
                                  arith.cmpf(arith.CmpFPredicate.OLT, b, zero))
        return arith.select(arith.andi(nonzero, sign_differs), arith.addf(r, b), r)
    r = arith.remsi(a, b)
    nonzero = arith.cmpi(arith.CmpIPredicate.ne, r, zero)
    sign_differs = arith.xori(arith.cmpi(arith.CmpIPredicate.slt, r, zero),
                              arith.cmpi(arith.CmpIPredicate.slt, b, zero))
    return arith.select(arith.andi(nonzero, sign_differs), arith.addi(r, b), r)


_FLOAT_PREDICATES = {"lt": "OLT", "gt": "OGT", "le": "OLE", "ge": "OGE", "eq": "OEQ", "neq": "UNE"}
_INT_PREDICATES = {"lt": "slt", "gt": "sgt", "le": "sle", "ge": "sge", "eq": "eq", "neq": "ne"}
_BOOL_PREDICATES = {"slt": "ult", "sgt": "ugt", "sle": "ule", "sge": "uge"}


def _compare(name: str) -> Callable:
    def emit(a, d):
        if _is_float(d):
            return arith.cmpf(getattr(arith.CmpFPredicate, _FLOAT_PREDICATES[name]), *a)
        pred = _INT_PREDICATES[name]
        if d == "bool":
            pred = _BOOL_PREDICATES.get(pred, pred)
        return arith.cmpi(getattr(arith.CmpIPredicate, pred), *a)
    return emit


def _sign(a, d):
    x, zero = a[0], _const(d, 0)
    if _is_float(d):
        t = compute_type(d)
        pos = arith.uitofp(t, arith.cmpf(arith.CmpFPredicate.OGT, x, zero))
        neg = arith.uitofp(t, arith.cmpf(arith.CmpFPredicate.OLT, x, zero))
        return arith.subf(pos, neg)
    t = compute_type(d)
    pos = arith.extui(t, arith.cmpi(arith.CmpIPredicate.sgt, x, zero))
    neg = arith.extui(t, arith.cmpi(arith.CmpIPredicate.slt, x, zero))
    return arith.subi(pos, neg)


def _sigmoid(a, d):
    one = _const(d, 1.0)
    return arith.divf(one, arith.addf(one, _exp(arith.negf(a[0]), d)))


def _exp(x: ir.Value, dtype: str) -> ir.Value:
    return exp_f32(x) if dtype == "float32" else math.exp(x)


# Cephes' float32 exp: exp(x) = 2^n * exp(r), r = x - n ln 2 in [-ln2/2, ln2/2], a degree-6
# polynomial for exp(r), 2^n built in the exponent bits: about 1 ulp, and vectorizable
# (libm's expf is a call per element, which LLVM cannot vectorize)
_EXP_HI, _EXP_LO = 88.72283935546875, -87.33654022216797  # above: inf; below: subnormal results
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
          5.0000001201e-1]


def exp_f32(x: ir.Value) -> ir.Value:
    t = x.type
    i32 = ir.IntegerType.get_signless(32)
    c = lambda v: arith.constant(t, v)  # noqa: E731
    # a subnormal result is exp(x + 32 ln 2) * 2^-32: one rounding, as libm's
    small = arith.cmpf(arith.CmpFPredicate.OLT, x, c(_EXP_LO))
    shifted = arith.select(small, arith.addf(x, c(32 * 0.6931471805599453)), x)
    clamped = arith.maximumf(arith.minimumf(shifted, c(_EXP_HI)), c(_EXP_LO))  # NaN stays NaN
    n = math.floor(arith.addf(arith.mulf(clamped, c(1.4426950408889634)), c(0.5)))
    r = arith.subf(arith.subf(clamped, arith.mulf(n, c(_LN2_HI))), arith.mulf(n, c(_LN2_LO)))
    p = c(_EXP_P[0])
    for coefficient in _EXP_P[1:]:
        p = arith.addf(arith.mulf(p, r), c(coefficient))
    y = arith.addf(arith.addf(arith.mulf(p, arith.mulf(r, r)), r), c(1.0))
    # 2^n as 2^(n-1) * 2 for n > 0, so n = 128 (x near the top) stays finite
    positive = arith.cmpf(arith.CmpFPredicate.OGT, n, c(0.0))
    m = arith.subi(arith.fptosi(i32, n), arith.extui(i32, positive))
    scale = arith.bitcast(t, arith.shli(arith.addi(m, arith.constant(i32, 127)), arith.constant(i32, 23)))
    result = arith.mulf(arith.mulf(y, scale), arith.select(positive, c(2.0), c(1.0)))
    result = arith.mulf(result, arith.select(small, c(2.0 ** -32), c(1.0)))
    return arith.select(arith.cmpf(arith.CmpFPredicate.OGT, x, c(_EXP_HI)), c(float("inf")), result)


# XLA's float32 tanh: a rational approximation within a few ulp, vectorizable
# (libm's tanhf is a call per element)
_TANH_CLAMP = 7.90531110763549805
_TANH_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03]
_TANH_Q = [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03]


def tanh_f32(x: ir.Value) -> ir.Value:
    t = x.type
    c = lambda v: arith.constant(t, v)  # noqa: E731
    x = arith.maximumf(arith.minimumf(x, c(_TANH_CLAMP)), c(-_TANH_CLAMP))
    x2 = arith.mulf(x, x)
    p = c(_TANH_P[0])
    for coefficient in _TANH_P[1:]:
        p = arith.addf(arith.mulf(x2, p), c(coefficient))
    p = arith.mulf(x, p)
    q = c(_TANH_Q[0])
    for coefficient in _TANH_Q[1:]:
        q = arith.addf(arith.mulf(x2, q), c(coefficient))
    return arith.divf(p, q)


# Cephes' float32 log: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9
# polynomial in m - 1; vectorizable like exp_f32 (about 1 ulp)
_LOG_P = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
          -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1]


def log_f32(x: ir.Value) -> ir.Value:
    t = x.type
    i32 = ir.IntegerType.get_signless(32)
    c = lambda v: arith.constant(t, v)  # noqa: E731
    ci = lambda v: arith.constant(i32, v)  # noqa: E731
    tiny = arith.cmpf(arith.CmpFPredicate.OLT, x, c(1.1754943508222875e-38))  # subnormal: scale by 2^25
    scaled = arith.select(tiny, arith.mulf(x, c(2.0 ** 25)), x)
    bits = arith.bitcast(i32, scaled)
    e = arith.subi(arith.andi(arith.shrui(bits, ci(23)), ci(0xFF)), ci(126))
    e = arith.select(tiny, arith.subi(e, ci(25)), e)
    m = arith.bitcast(t, arith.ori(arith.andi(bits, ci(0x007FFFFF)), ci(0x3F000000)))  # in [0.5, 1)
    low = arith.cmpf(arith.CmpFPredicate.OLT, m, c(0.707106781186547524))
    e = arith.select(low, arith.subi(e, ci(1)), e)
    m = arith.subf(arith.select(low, arith.addf(m, m), m), c(1.0))
    z = arith.mulf(m, m)
    p = c(_LOG_P[0])
    for coefficient in _LOG_P[1:]:
        p = arith.addf(arith.mulf(p, m), c(coefficient))
    ef = arith.sitofp(t, e)
    y = arith.addf(arith.mulf(arith.mulf(p, m), z), arith.mulf(ef, c(-2.12194440e-4)))
    y = arith.addf(y, arith.mulf(z, c(-0.5)))
    result = arith.addf(arith.addf(m, y), arith.mulf(ef, c(0.693359375)))
    result = arith.select(arith.cmpf(arith.CmpFPredicate.OEQ, x, c(0.0)), c(float("-inf")), result)
    result = arith.select(arith.cmpf(arith.CmpFPredicate.OEQ, x, c(float("inf"))), c(float("inf")), result)
    return arith.select(arith.cmpf(arith.CmpFPredicate.OGE, x, c(0.0)), result, c(float("nan")))  # < 0, NaN


def _math(name: str) -> Callable:
    return lambda a, d: getattr(math, name)(a[0])


def _float_or_int(float_op: Callable, int_op: Callable) -> Callable:
    return lambda a, d: float_op(*a) if _is_float(d) else int_op(*a)


# ---------------------------------------------------------------- special functions
# No math-dialect op exists for these; they are emitted as branch-free arith code
# (every branch computed, one chosen by select) so they vectorize and lower for
# every target without a library call.
def _horner(x: ir.Value, coefficients: Sequence[float], d: str) -> ir.Value:
    """coefficients[0] * x**(n-1) + ... + coefficients[-1]."""
    p = _const(d, coefficients[0])
    for c in coefficients[1:]:
        p = arith.addf(arith.mulf(p, x), _const(d, c))
    return p


def _below(x: ir.Value, bound: float, d: str) -> ir.Value:
    return arith.cmpf(arith.CmpFPredicate.OLT, x, _const(d, bound))


_SHIFT = 6  # the asymptotic series below are accurate to ~1e-13 from 6 up


def _shift_up(x: ir.Value, d: str) -> tuple[ir.Value, ir.Value, list[ir.Value]]:
    """(y, shifted, terms): y = x + 6 where x < 6 (else x), and x, x+1, ..., x+5, the
    terms the recurrences f(x) = f(x+6) - sum(term(x+k)) of lgamma/psi/psi' need."""
    shifted = _below(x, _SHIFT, d)
    terms = [x] + [arith.addf(x, _const(d, k)) for k in range(1, _SHIFT)]
    return arith.select(shifted, arith.addf(x, _const(d, _SHIFT)), x), shifted, terms


def _reflected(x: ir.Value, d: str, positive: Callable, reflect: Callable, pole: float) -> ir.Value:
    """positive(x) for x >= 0; reflect(x, positive(1 - x)) for x < 0, and `pole` at the
    negative integers (where sin(pi x) rounds to a tiny nonzero number instead of 0)."""
    negative = _below(x, 0.0, d)
    base = positive(arith.select(negative, arith.subf(_const(d, 1.0), x), x))
    at_pole = arith.andi(negative, arith.cmpf(arith.CmpFPredicate.OEQ, math.floor(x), x))
    return arith.select(at_pole, _const(d, pole), arith.select(negative, reflect(x, base), base))


def _sum(values: list[ir.Value]) -> ir.Value:
    total = values[0]
    for v in values[1:]:
        total = arith.addf(total, v)
    return total


def _sin_pi(x: ir.Value, d: str) -> ir.Value:
    return math.sin(arith.mulf(_const(d, _PI), x))


_PI = 3.141592653589793
_LN2, _LN10 = 0.6931471805599453, 2.302585092994046
_TWO_OVER_SQRT_PI = 1.1283791670955126
_HALF_LOG_2PI = 0.9189385332046728
# Stirling's series of lgamma, digamma's and trigamma's asymptotic series (Bernoulli
# numbers), highest power of 1/y**2 first
_LGAMMA_SERIES = [1 / 156, -691 / 360360, 1 / 1188, -1 / 1680, 1 / 1260, -1 / 360, 1 / 12]
_DIGAMMA_SERIES = [1 / 12, -691 / 32760, 1 / 132, -1 / 240, 1 / 252, -1 / 120, 1 / 12, 0.0]
_TRIGAMMA_SERIES = [7 / 6, -691 / 2730, 5 / 66, -1 / 30, 1 / 42, -1 / 30, 1 / 6, 0.0]


def _gammaln(a, d):
    def positive(x):
        y, shifted, terms = _shift_up(x, d)
        inv = arith.divf(_const(d, 1.0), y)
        half = arith.subf(y, _const(d, 0.5))
        # (y - 1/2)(ln y - 1) - 1/2 is (y - 1/2) ln y - y, and stays inf at y = inf
        stirling = arith.addf(arith.subf(arith.mulf(half, arith.subf(math.log(y), _const(d, 1.0))),
                                         _const(d, 0.5)), _const(d, _HALF_LOG_2PI))
        stirling = arith.addf(stirling, arith.mulf(inv, _horner(arith.mulf(inv, inv), _LGAMMA_SERIES, d)))
        product = terms[0]
        for t in terms[1:]:
            product = arith.mulf(product, t)
        return arith.select(shifted, arith.subf(stirling, math.log(product)), stirling)

    def reflect(x, base):  # lgamma(x) = log(pi / |sin(pi x)|) - lgamma(1 - x)
        return arith.subf(math.log(arith.divf(_const(d, _PI), math.absf(_sin_pi(x, d)))), base)

    return _reflected(a[0], d, positive, reflect, float("inf"))


def _digamma(a, d):
    def positive(x):
        y, shifted, terms = _shift_up(x, d)
        inv = arith.divf(_const(d, 1.0), y)
        series = _horner(arith.mulf(inv, inv), _DIGAMMA_SERIES, d)
        psi = arith.subf(arith.subf(math.log(y), arith.mulf(_const(d, 0.5), inv)), series)
        recurrence = _sum([arith.divf(_const(d, 1.0), t) for t in terms])
        return arith.select(shifted, arith.subf(psi, recurrence), psi)

    def reflect(x, base):  # psi(x) = psi(1 - x) - pi / tan(pi x)
        return arith.subf(base, arith.divf(_const(d, _PI), math.tan(arith.mulf(_const(d, _PI), x))))

    return _reflected(a[0], d, positive, reflect, float("nan"))


def _trigamma(a, d):
    def positive(x):
        y, shifted, terms = _shift_up(x, d)
        inv = arith.divf(_const(d, 1.0), y)
        series = arith.mulf(inv, _horner(arith.mulf(inv, inv), _TRIGAMMA_SERIES, d))
        psi1 = _sum([inv, arith.mulf(_const(d, 0.5), arith.mulf(inv, inv)), series])
        recurrence = _sum([arith.divf(_const(d, 1.0), arith.mulf(t, t)) for t in terms])
        return arith.select(shifted, arith.addf(psi1, recurrence), psi1)

    def reflect(x, base):  # psi'(x) = pi^2 / sin^2(pi x) - psi'(1 - x)
        s = _sin_pi(x, d)
        return arith.subf(arith.divf(_const(d, _PI * _PI), arith.mulf(s, s)), base)

    return _reflected(a[0], d, positive, reflect, float("inf"))


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011): single precision
_ERFINV_CENTRAL = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                   -0.00125372503, -0.00417768164, 0.246640727, 1.50140941]
_ERFINV_TAIL = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682]


def _erfinv_newton(x: ir.Value, a: ir.Value, d: str) -> ir.Value:
    """Four Newton steps solving erf(x) = a: on erf below 1/2, on log(erfc(x)) = log(1 - a)
    above (1 - a is exact there, and log erfc is near-quadratic, so the far tail, where the
    single-precision start is a few % off, converges as fast as the centre)."""
    use_erf = _below(a, 0.5, d)
    one = _const(d, 1.0)
    for _ in range(4):
        density = arith.mulf(_const(d, _TWO_OVER_SQRT_PI), math.exp(arith.negf(arith.mulf(x, x))))
        tail = math.erfc(x)
        step_erf = arith.divf(arith.subf(math.erf(x), a), density)
        step_log = arith.divf(arith.mulf(arith.subf(math.log(arith.subf(one, a)), math.log(tail)), tail), density)
        x = arith.subf(x, arith.select(use_erf, step_erf, step_log))
    return x


def _erfinv(args, d):
    """Giles' approximation; in float64, refined to full precision by Newton steps."""
    y = args[0]
    one = _const(d, 1.0)
    a = math.absf(y)
    w = arith.negf(math.log(arith.mulf(arith.subf(one, a), arith.addf(one, a))))
    central = _horner(arith.subf(w, _const(d, 2.5)), _ERFINV_CENTRAL, d)
    tail = _horner(arith.subf(math.sqrt(w), _const(d, 3.0)), _ERFINV_TAIL, d)
    x = arith.mulf(arith.select(_below(w, 5.0, d), central, tail), a)
    if d == "float64":
        x = _erfinv_newton(x, a, d)
    x = arith.select(arith.cmpf(arith.CmpFPredicate.OEQ, a, one), _const(d, float("inf")), x)
    x = arith.select(arith.cmpf(arith.CmpFPredicate.UGT, a, one), _const(d, float("nan")), x)
    return arith.select(_below(y, 0.0, d), arith.negf(x), x)


def _round_half_away(a, d):
    return math.round(a[0])


def _round_half_even(a, d):
    return math.roundeven(a[0])


def _is_class(float_test: Callable) -> Callable:
    """isnan/isinf: integers are never nan or inf."""
    return lambda a, d: float_test(a[0], d) if _is_float(d) else _const("bool", 0)


def _isnan(x, d):
    return arith.cmpf(arith.CmpFPredicate.UNO, x, x)


def _isinf(x, d):
    return arith.cmpf(arith.CmpFPredicate.OEQ, math.absf(x), _const(d, float("inf")))


def _clip(args, d):
    """Aesara's `x < min ? min : x > max ? max : x` (min wins when min > max)."""
    x, low, high = args
    below, above = _compare("lt")([x, low], d), _compare("gt")([x, high], d)
    return arith.select(below, low, arith.select(above, high, x))


def _arctan2_derivative(x, z, g):
    """d/dy atan2(y, x) = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)."""
    r2 = x[0] * x[0] + x[1] * x[1]
    return [g * x[1] / r2, -g * x[0] / r2]


def _no_trigamma_gradient(x, z, g):
    raise rules.NullGradientError("tri_gamma has no gradient (Aesara's is not implemented either): "
                                  "stop the gradient before it or differentiate digamma once only")


def _k(value: float, like: Variable) -> Variable:
    """A constant in `like`'s float dtype (a Python float would be floatX)."""
    return as_tensor_variable(np.asarray(value, dtype=like.dtype))


# ---------------------------------------------------------------- the table
# name, arity, typing, emission, derivative (x: the inputs, z: the output, g: its cotangent)
_row("add", 2, "upcast", _add, lambda x, z, g: [g, g])
_row("sub", 2, "upcast", _float_or_int(arith.subf, arith.subi), lambda x, z, g: [g, -g])
_row("mul", 2, "upcast", _mul, lambda x, z, g: [g * x[1], g * x[0]])
_row("true_div", 2, "div", lambda a, d: arith.divf(*a),
     lambda x, z, g: [g / x[1], -g * x[0] / (x[1] * x[1])])
_row("int_div", 2, "upcast", _int_div)
_row("mod", 2, "upcast", _mod, lambda x, z, g: [g, -g * floor(x[0] / x[1])])
_row("pow", 2, "upcast", _float_or_int(math.powf, math.ipowi),
     lambda x, z, g: [g * x[1] * x[0] ** (x[1] - 1), g * log(x[0]) * z])
_row("maximum", 2, "upcast", _float_or_int(arith.maximumf, arith.maxsi),
     lambda x, z, g: [g * ge(x[0], x[1]), g * lt(x[0], x[1])])
_row("minimum", 2, "upcast", _float_or_int(arith.minimumf, arith.minsi),
     lambda x, z, g: [g * le(x[0], x[1]), g * gt(x[0], x[1])])
for _name in ("lt", "gt", "le", "ge", "eq", "neq"):
    _row(_name, 2, "bool", _compare(_name))
_row("and", 2, "int", lambda a, d: arith.andi(*a))
_row("or", 2, "int", lambda a, d: arith.ori(*a))
_row("xor", 2, "int", lambda a, d: arith.xori(*a))
_row("invert", 1, "int", lambda a, d: arith.xori(a[0], _const(d, 1 if d == "bool" else -1)))
_row("neg", 1, "upcast", lambda a, d: arith.negf(a[0]) if _is_float(d) else arith.subi(_const(d, 0), a[0]),
     lambda x, z, g: [-g])
_row("abs", 1, "upcast", _float_or_int(math.absf, math.absi), lambda x, z, g: [g * sgn(x[0])])
_row("sign", 1, "upcast", _sign)
_row("tanh", 1, "float", lambda a, d: tanh_f32(a[0]) if d == "float32" else math.tanh(a[0]),
     lambda x, z, g: [g * (1 - z * z)])
_row("exp", 1, "float", lambda a, d: _exp(a[0], d), lambda x, z, g: [g * z])
_row("log", 1, "float", lambda a, d: log_f32(a[0]) if d == "float32" else math.log(a[0]),
     lambda x, z, g: [g / x[0]])
_row("sqrt", 1, "float", _math("sqrt"), lambda x, z, g: [g / (2 * z)])
_row("sin", 1, "float", _math("sin"), lambda x, z, g: [g * cos(x[0])])
_row("cos", 1, "float", _math("cos"), lambda x, z, g: [-g * sin(x[0])])
_row("sigmoid", 1, "float", _sigmoid, lambda x, z, g: [g * z * (1 - z)])
_row("ceil", 1, "float", _math("ceil"))
_row("floor", 1, "float", _math("floor"))
_row("switch", 3, "switch", lambda a, d: arith.select(*a),
     lambda x, z, g: [None, switch(x[0], g, 0), switch(x[0], 0, g)])
_row("sqr", 1, "upcast", lambda a, d: _mul([a[0], a[0]], d), lambda x, z, g: [g * 2 * x[0]])
_row("reciprocal", 1, "float", lambda a, d: arith.divf(_const(d, 1.0), a[0]), lambda x, z, g: [-g * z * z])
_row("log1p", 1, "float", _math("log1p"), lambda x, z, g: [g / (1 + x[0])])
_row("expm1", 1, "float", _math("expm1"), lambda x, z, g: [g * (z + 1)])
_row("log2", 1, "float", _math("log2"), lambda x, z, g: [g / (x[0] * _k(_LN2, z))])
_row("log10", 1, "float", _math("log10"), lambda x, z, g: [g / (x[0] * _k(_LN10, z))])
_row("exp2", 1, "float", _math("exp2"), lambda x, z, g: [g * z * _k(_LN2, z)])
_row("erf", 1, "float", _math("erf"), lambda x, z, g: [g * _k(_TWO_OVER_SQRT_PI, z) * exp(-x[0] * x[0])])
_row("erfc", 1, "float", _math("erfc"), lambda x, z, g: [-g * _k(_TWO_OVER_SQRT_PI, z) * exp(-x[0] * x[0])])
_row("erfinv", 1, "float", _erfinv, lambda x, z, g: [g * _k(1 / _TWO_OVER_SQRT_PI, z) * exp(z * z)])
_row("gammaln", 1, "float", _gammaln, lambda x, z, g: [g * digamma(x[0])])
_row("psi", 1, "float", _digamma, lambda x, z, g: [g * tri_gamma(x[0])])
_row("tri_gamma", 1, "float", _trigamma, _no_trigamma_gradient)
_row("tan", 1, "float", _math("tan"), lambda x, z, g: [g * (1 + z * z)])
_row("arcsin", 1, "float", _math("asin"), lambda x, z, g: [g / sqrt(1 - x[0] * x[0])])
_row("arccos", 1, "float", _math("acos"), lambda x, z, g: [-g / sqrt(1 - x[0] * x[0])])
_row("arctan", 1, "float", _math("atan"), lambda x, z, g: [g / (1 + x[0] * x[0])])
_row("arctan2", 2, "float", lambda a, d: math.atan2(*a), _arctan2_derivative)
_row("sinh", 1, "float", _math("sinh"), lambda x, z, g: [g * cosh(x[0])])
_row("cosh", 1, "float", _math("cosh"), lambda x, z, g: [g * sinh(x[0])])
_row("arcsinh", 1, "float", _math("asinh"), lambda x, z, g: [g / sqrt(x[0] * x[0] + 1)])
_row("arccosh", 1, "float", _math("acosh"), lambda x, z, g: [g / sqrt(x[0] * x[0] - 1)])
_row("arctanh", 1, "float", _math("atanh"), lambda x, z, g: [g / (1 - x[0] * x[0])])
_row("round_half_away_from_zero", 1, "float_only", _round_half_away)
_row("round_half_to_even", 1, "float_only", _round_half_even)
_row("trunc", 1, "float", _math("trunc"))
_row("clip", 3, "upcast", _clip,
     lambda x, z, g: [g * and_(ge(x[0], x[1]), le(x[0], x[2])), g * lt(x[0], x[1]), g * gt(x[0], x[2])])
_row("isnan", 1, "bool", _is_class(_isnan))
_row("isinf", 1, "bool", _is_class(_isinf))
del _name


def scalar_op(name: str, args: list[ir.Value], dtype: str) -> ir.Value:
    """One scalar function on arguments already converted to `dtype` (compute types)."""
    return SCALAR_FUNCTIONS[name].emit(args, dtype)


# ---------------------------------------------------------------- the Elemwise op
def broadcast_pattern(types: Sequence[TensorType]) -> tuple[bool, ...]:
    """Aesara's broadcasting: align on the right; a dim broadcasts only if marked so."""
    ndim = max(t.ndim for t in types)
    pattern = []
    for axis in range(ndim):
        flags = []
        for t in types:
            offset = axis - (ndim - t.ndim)
            flags.append(True if offset < 0 else t.broadcastable[offset])
        pattern.append(all(flags))
    return tuple(pattern)


class Elemwise(Op):
    """A scalar function applied elementwise with broadcasting."""

    def __init__(self, scalar: str):
        if scalar not in SCALAR_FUNCTIONS:
            raise KeyError(f"unknown elementwise op {scalar!r}")
        self.scalar = scalar

    def __str__(self) -> str:
        return self.scalar

    def compute_dtype(self, in_dtypes: Sequence[str]) -> str:
        """The dtype the inputs are converted to before the scalar function runs."""
        rule = SCALAR_FUNCTIONS[self.scalar].typing
        if rule == "switch":
            return dtypes.upcast(*in_dtypes[1:])
        common = dtypes.upcast(*in_dtypes)
        if rule == "div" and not dtypes.is_float(common):
            return config.floatX  # Aesara's TrueDiv: integers divide into floatX
        return dtypes.upgrade_to_float(common) if rule in ("float", "div") else common

    def make_node(self, *inputs: Variable) -> Apply:
        row = SCALAR_FUNCTIONS[self.scalar]
        if len(inputs) != row.arity:
            raise TypeError(f"{self.scalar} takes {row.arity} inputs, got {len(inputs)}")
        in_dtypes = [v.dtype for v in inputs]
        if row.typing == "int" and any(dtypes.is_float(d) for d in in_dtypes):
            raise TypeError(f"{self.scalar} needs integer or bool inputs, got {', '.join(in_dtypes)}")
        if row.typing == "float_only" and not all(dtypes.is_float(d) for d in in_dtypes):
            raise TypeError(f"{self.scalar} needs float inputs (as in Aesara), got {', '.join(in_dtypes)}")
        out = "bool" if row.typing == "bool" else self.compute_dtype(in_dtypes)
        return Apply(self, inputs, [TensorType(out, broadcast_pattern([v.type for v in inputs]))])

    def infer_shape(self, node, input_shapes):
        out = node.outputs[0]
        shape = []
        for axis in range(out.ndim):
            size = None
            for var, in_shape in zip(node.inputs, input_shapes):
                offset = axis - (out.ndim - var.ndim)
                if offset >= 0 and not var.broadcastable[offset]:
                    size = in_shape[offset]
                    break
            shape.append(size if size is not None else int_constant(1))
        return [shape]


def broadcast_dims(fe, values, types, out_type) -> list[ir.Value]:
    """Output dims of a broadcast; mismatched dims set SHAPE_MISMATCH and use the smallest."""
    out = []
    for axis in range(out_type.ndim):
        if out_type.broadcastable[axis]:
            out.append(index_const(1))
            continue
        candidates = []
        for v, t in zip(values, types):
            offset = axis - (out_type.ndim - t.ndim)
            if offset >= 0 and not t.broadcastable[offset]:
                candidates.append(dim(v, offset))
        size = candidates[0]
        for other in candidates[1:]:
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, size, other), st.SHAPE_MISMATCH)
            size = index_min(size, other)
        out.append(size)
    return out


def input_map(t: TensorType, out_ndim: int) -> ir.AffineMap:
    """The indexing map of a broadcast operand: broadcast dims read index 0."""
    exprs = []
    for axis in range(t.ndim):
        if t.broadcastable[axis]:
            exprs.append(ir.AffineConstantExpr.get(0))
        else:
            exprs.append(ir.AffineDimExpr.get(axis + out_ndim - t.ndim))
    return ir.AffineMap.get(out_ndim, 0, exprs)


def elementwise(fe, values, types, out_type, body) -> ir.Value:
    """Apply `body(list of compute-type scalars) -> compute-type scalar` with broadcasting."""
    in_dtypes = [t.dtype for t in types]
    if out_type.ndim == 0:
        scalars = [scalar_of(v, d) for v, d in zip(values, in_dtypes)]
        return scalar_tensor(body(scalars), out_type.dtype)
    sizes = broadcast_dims(fe, values, types, out_type)
    init = empty(sizes, out_type)
    maps = [input_map(t, out_type.ndim) for t in types]
    maps.append(ir.AffineMap.get_identity(out_type.ndim))

    def block(args):
        scalars = [load_scalar(a, d) for a, d in zip(args, in_dtypes)]
        return store_scalar(body(scalars), out_type.dtype)

    return generic(values, init, maps, ["parallel"] * out_type.ndim, block)


@rules.emission(Elemwise)
def _emit_elemwise(fe, node: Apply, values):
    types = [v.type for v in node.inputs]
    compute = node.op.compute_dtype([t.dtype for t in types])
    name = node.op.scalar

    def body(scalars):
        if name == "switch":  # the condition stays bool
            return scalar_op(name, [scalars[0]] + [cast_scalar(s, t.dtype, compute)
                                                   for s, t in zip(scalars[1:], types[1:])], compute)
        converted = [cast_scalar(s, t.dtype, compute) for s, t in zip(scalars, types)]
        return scalar_op(name, converted, compute)

    return [elementwise(fe, values, types, node.outputs[0].type, body)]


@rules.vjp(Elemwise)
def _vjp_elemwise(node, cots, needed):
    derivative = SCALAR_FUNCTIONS[node.op.scalar].derivative
    if derivative is None or cots[0] is None:
        return [None] * len(node.inputs)
    return derivative(node.inputs, node.outputs[0], cots[0])


# ---------------------------------------------------------------- Cast
class Cast(Op):
    """Conversion to another dtype (to bool means `!= 0`)."""

    def __init__(self, dtype: str):
        self.dtype = dtypes.check(dtype)

    def __str__(self) -> str:
        return f"cast_{self.dtype}"

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [TensorType(self.dtype, x.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


@rules.emission(Cast)
def _emit_cast(fe, node, values):
    src = node.inputs[0].dtype
    return [elementwise(fe, values, [node.inputs[0].type], node.outputs[0].type,
                        lambda s: cast_scalar(s[0], src, node.op.dtype))]


@rules.vjp(Cast)
def _vjp_cast(node, cots, needed):
    return [cast(cots[0], node.inputs[0].dtype) if dtypes.is_float(node.inputs[0].dtype) else None]


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "add", "sub", "mul", "true_div", "int_div", "mod", "pow_", "maximum", "minimum", "lt", "gt",
    "le", "ge", "eq", "neq", "and_", "or_", "xor", "neg", "abs_", "invert", "sgn", "tanh", "exp",
    "log", "sqrt", "sin", "cos", "sigmoid", "ceil", "floor", "switch", "cast",
    "sqr", "square", "reciprocal", "inv", "log1p", "expm1", "log2", "log10", "exp2", "erf", "erfc",
    "erfinv", "gammaln", "psi", "digamma", "tri_gamma", "tan", "arcsin", "arccos", "arctan", "arctan2",
    "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "round", "round_half_to_even",
    "round_half_away_from_zero", "iround", "trunc", "clip", "isnan", "isinf", "where", "expit",
]

def elemwise(name: str, *args: Any) -> Variable:
    return Elemwise(name)(*[as_tensor_variable(a) for a in args])


def _binary(name: str) -> Callable[[Any, Any], Variable]:
    def op(a: Any, b: Any) -> Variable:
        return elemwise(name, a, b)
    op.__name__ = op.__qualname__ = name
    return op


def _unary(name: str) -> Callable[[Any], Variable]:
    def op(a: Any) -> Variable:
        return elemwise(name, a)
    op.__name__ = op.__qualname__ = name
    return op


add, sub, mul, true_div, int_div, mod = (_binary(n) for n in ("add", "sub", "mul", "true_div", "int_div", "mod"))
pow_, maximum, minimum = _binary("pow"), _binary("maximum"), _binary("minimum")
lt, gt, le, ge, eq, neq = (_binary(n) for n in ("lt", "gt", "le", "ge", "eq", "neq"))
and_, or_, xor = _binary("and"), _binary("or"), _binary("xor")
neg, abs_, invert, sgn = _unary("neg"), _unary("abs"), _unary("invert"), _unary("sign")
tanh, exp, log, sqrt = (_unary(n) for n in ("tanh", "exp", "log", "sqrt"))
sin, cos, sigmoid, ceil, floor = (_unary(n) for n in ("sin", "cos", "sigmoid", "ceil", "floor"))
sqr, reciprocal, log1p, expm1 = (_unary(n) for n in ("sqr", "reciprocal", "log1p", "expm1"))
log2, log10, exp2, erf, erfc, erfinv = (_unary(n) for n in ("log2", "log10", "exp2", "erf", "erfc", "erfinv"))
gammaln, psi, tri_gamma = _unary("gammaln"), _unary("psi"), _unary("tri_gamma")
tan, arcsin, arccos, arctan = (_unary(n) for n in ("tan", "arcsin", "arccos", "arctan"))
sinh, cosh, arcsinh, arccosh, arctanh = (_unary(n) for n in ("sinh", "cosh", "arcsinh", "arccosh", "arctanh"))
round_half_to_even = _unary("round_half_to_even")
round_half_away_from_zero = _unary("round_half_away_from_zero")
trunc, isnan, isinf, arctan2 = _unary("trunc"), _unary("isnan"), _unary("isinf"), _binary("arctan2")
square, inv, digamma, expit = sqr, reciprocal, psi, sigmoid  # Aesara's aliases

_ROUNDING = {"half_to_even": round_half_to_even, "half_away_from_zero": round_half_away_from_zero}


def round(a: Any, mode: str | None = None) -> Variable:  # noqa: A001
    """Aesara's `round`: mode "half_to_even" (the default, as numpy) or "half_away_from_zero"."""
    if mode is None:
        mode = "half_to_even"
    if mode not in _ROUNDING:
        raise ValueError(f"round: mode must be one of {', '.join(map(repr, _ROUNDING))}, got {mode!r}")
    return _ROUNDING[mode](a)


def iround(a: Any, mode: str | None = None) -> Variable:
    """`round(a, mode)` as int64."""
    return cast(round(a, mode), "int64")


def clip(x: Any, min: Any, max: Any) -> Variable:  # noqa: A002
    """`min` where x < min, `max` where x > max, else x (min wins if min > max, as Aesara)."""
    return elemwise("clip", x, min, max)


def switch(cond: Any, ift: Any, iff: Any) -> Variable:
    """Elementwise `ift if cond else iff` (cond is converted to bool)."""
    c = as_tensor_variable(cond)
    if c.dtype != "bool":
        c = cast(c, "bool")
    return elemwise("switch", c, ift, iff)


where = switch  # numpy's spelling, as aesara.tensor has it


def cast(x: Any, dtype: str) -> Variable:
    """`x` in `dtype`; a constant is converted now, so it stays a constant (its
    value still decides broadcasting: `zeros((2, 1))` has a broadcastable dim)."""
    x = as_tensor_variable(x)
    dtype = dtypes.check(dtype)
    if x.dtype == dtype:
        return x
    if isinstance(x, Constant):
        return Constant(x.data.astype(dtype))
    return Cast(dtype)(x)
