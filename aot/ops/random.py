"""Random variables from a counter-based generator emitted as IR (docs/random.md).

A stream's state is an int64 vector `[key0, key1, counter]` (keys are uint32 values).
Element i of a draw is a pure function of (key, counter, i): Philox4x32-10 (Salmon et
al., "Parallel random numbers: as easy as 1, 2, 3", 2011) on the counter block

    (i mod 2**32, (i >> 32) mod 2**16 | block << 16, counter mod 2**32, counter >> 32)

with key (key0, key1), where `block` numbers the 4-word blocks one element uses (a
rejection loop takes one per try). Nothing depends on loop order, threads, vector
width or target, so a seed gives the same words everywhere; the draw's node returns
the state with `counter + 1` beside the sample (a stream advances one per call).
uint32 arithmetic is done in i32/i64 arith ops (64-bit products for mulhi/mullo).

Methods: uniform and bernoulli from 53-bit (float64) or 24-bit (float32) fractions;
normal by Box-Muller; integers by Lemire's multiply-shift on 64-bit words (two tries,
so the bias is below (range / 2**64)**2); binomial by inversion (sequential search,
at most n steps; a normal approximation where (1 - p)**n underflows); poisson by inversion below lam = 10 and Hormann's PTRS above;
gamma by Marsaglia-Tsang (at most 32 tries; shape < 1 by the u**(1/shape) boost);
beta as X / (X + Y) of two gammas. choice, permutation and multivariate_normal are
graphs over these (scanaot.tensor.random.basic). No draw has a gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from mlir import ir
from mlir.dialects import arith, math, scf, tensor

from ..emit.builders import (cast_scalar, compute_type, dim, empty, generic, index_const, load_scalar,
                             loop_index, scalar_of, scalar_tensor, store_scalar)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .elemwise import input_map, scalar_op

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
PHILOX_ROUNDS = 10
STATE_SIZE = 3  # key0, key1, counter
MAX_TRIES = 32  # rejection loops (gamma, beta, poisson's PTRS): ~1e-40 to run out
SECOND_GAMMA = 64  # beta's second gamma starts at this block

I32 = lambda: ir.IntegerType.get_signless(32)  # noqa: E731
I64 = lambda: ir.IntegerType.get_signless(64)  # noqa: E731


def _c32(value: int) -> ir.Value:
    """A uint32 constant as a signless i32."""
    return arith.constant(I32(), value - (1 << 32) if value >= 1 << 31 else value)


def _is_f32(ft: ir.Type) -> bool:
    return ft == ir.F32Type.get()


def _c64(value: int) -> ir.Value:
    return arith.constant(I64(), value)


# ---------------------------------------------------------------- Philox4x32-10
def _mulhilo(m: int, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(high, low) words of the 64-bit product of uint32 `m` and `x`."""
    product = arith.muli(_c64(m), arith.extui(I64(), x))
    return arith.trunci(I32(), arith.shrui(product, _c64(32))), arith.trunci(I32(), product)


def philox(counter: Sequence[ir.Value], key: Sequence[ir.Value]) -> list[ir.Value]:
    """Four uint32 words (i32) of Philox4x32-10 for a 4-word counter and 2-word key."""
    c, k0, k1 = list(counter), key[0], key[1]
    for r in range(PHILOX_ROUNDS):
        if r:
            k0, k1 = arith.addi(k0, _c32(PHILOX_W[0])), arith.addi(k1, _c32(PHILOX_W[1]))
        hi0, lo0 = _mulhilo(PHILOX_M[0], c[0])
        hi1, lo1 = _mulhilo(PHILOX_M[1], c[2])
        c = [arith.xori(arith.xori(hi1, c[1]), k0), lo1, arith.xori(arith.xori(hi0, c[3]), k1), lo0]
    return c


@dataclass
class Element:
    """One element's generator: key and draw counter (i32 words) and its index (i64)."""
    key: tuple[ir.Value, ir.Value]
    counter: tuple[ir.Value, ir.Value]
    index: ir.Value

    def words(self, block: int | ir.Value) -> list[ir.Value]:
        """The four words of this element's block number `block` (an int or an i32)."""
        block = _c32(block) if isinstance(block, int) else block
        low = arith.trunci(I32(), self.index)
        high = arith.andi(arith.trunci(I32(), arith.shrui(self.index, _c64(32))), _c32(0xFFFF))
        c1 = arith.ori(high, arith.shli(block, _c32(16)))
        return philox([low, c1, *self.counter], self.key)


# ---------------------------------------------------------------- words to numbers
def _fraction(words: list[ir.Value], j: int, ft: ir.Type) -> tuple[ir.Value, int]:
    """An integer with the float's mantissa bits from words j (and j+1 for f64)."""
    if _is_f32(ft):
        return arith.shrui(words[j], _c32(8)), 24
    high = arith.shli(arith.extui(I64(), words[j]), _c64(21))
    low = arith.shrui(arith.extui(I64(), words[j + 1]), _c64(11))
    return arith.ori(high, low), 53


def unit(words: list[ir.Value], j: int, ft: ir.Type, open_low: bool = False) -> ir.Value:
    """A uniform fraction in [0, 1) (exact multiples of 2**-bits: 53 bits from words j
    and j+1 for f64, 24 from word j for f32), or in (0, 1] with `open_low` (for log)."""
    x, bits = _fraction(words, j, ft)
    if open_low:
        x = arith.addi(x, arith.constant(x.type, 1))
    return arith.mulf(arith.uitofp(ft, x), arith.constant(ft, 2.0 ** -bits))


def unit32(word: ir.Value, ft: ir.Type, open_low: bool = False) -> ir.Value:
    """A uniform fraction from one word (32 bits for f64, 24 for f32)."""
    if _is_f32(ft):
        return unit([word], 0, ft, open_low)
    x = arith.extui(I64(), word)
    if open_low:
        x = arith.addi(x, _c64(1))
    return arith.mulf(arith.uitofp(ft, x), arith.constant(ft, 2.0 ** -32))


def _f(ft: ir.Type, v: float) -> ir.Value:
    return arith.constant(ft, float(v))


def box_muller(u1: ir.Value, u2: ir.Value, ft: ir.Type) -> ir.Value:
    """A standard normal from a fraction in (0, 1] and one in [0, 1)."""
    radius = math.sqrt(arith.mulf(_f(ft, -2.0), math.log(u1)))
    return arith.mulf(radius, math.cos(arith.mulf(_f(ft, 6.283185307179586), u2)))


def standard_normal(words: list[ir.Value], ft: ir.Type) -> ir.Value:
    """A standard normal from one block (full-precision fractions)."""
    step = 1 if _is_f32(ft) else 2
    return box_muller(unit(words, 0, ft, open_low=True), unit(words, step, ft), ft)


def _mul_high_64(x: ir.Value, r: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(high, low) 64-bit halves of the unsigned 128-bit product x * r, from 32-bit limbs
    (no i128: every target lowers this)."""
    mask = _c64(0xFFFFFFFF)
    shift = _c64(32)
    xl, xh, rl, rh = arith.andi(x, mask), arith.shrui(x, shift), arith.andi(r, mask), arith.shrui(r, shift)
    ll, lh, hl, hh = arith.muli(xl, rl), arith.muli(xl, rh), arith.muli(xh, rl), arith.muli(xh, rh)
    mid = arith.addi(arith.addi(arith.shrui(ll, shift), arith.andi(lh, mask)), arith.andi(hl, mask))
    high = arith.addi(arith.addi(hh, arith.shrui(lh, shift)), arith.addi(arith.shrui(hl, shift), arith.shrui(mid, shift)))
    low = arith.ori(arith.shli(mid, shift), arith.andi(ll, mask))
    return high, low


def _word64(words: list[ir.Value], j: int) -> ir.Value:
    return arith.ori(arith.shli(arith.extui(I64(), words[j]), _c64(32)), arith.extui(I64(), words[j + 1]))


def lemire(words: list[ir.Value], span: ir.Value) -> ir.Value:
    """An integer in [0, span) (span an i64 > 0) by Lemire's multiply-shift with two tries."""
    threshold = arith.remui(arith.subi(_c64(0), span), span)  # 2**64 mod span
    first, low = _mul_high_64(_word64(words, 0), span)
    second, _ = _mul_high_64(_word64(words, 2), span)
    return arith.select(arith.cmpi(arith.CmpIPredicate.uge, low, threshold), first, second)


# ---------------------------------------------------------------- bounded loops
def while_loop(inits: list[ir.Value], keep_going: Callable[[list[ir.Value]], ir.Value],
               step: Callable[[list[ir.Value]], list[ir.Value]]) -> list[ir.Value]:
    """scf.while over `inits`: runs `step` while `keep_going` (an i1) holds."""
    types = [v.type for v in inits]
    loop = scf.WhileOp(types, inits)
    before = loop.before.blocks.append(*types)
    with ir.InsertionPoint(before):
        scf.ConditionOp(keep_going(list(before.arguments)), list(before.arguments))
    after = loop.after.blocks.append(*types)
    with ir.InsertionPoint(after):
        scf.YieldOp(step(list(after.arguments)))
    return list(loop.results)


def rejection(first_block: int, fallback: ir.Value, attempt: Callable[[ir.Value], tuple[ir.Value, ir.Value]],
              enabled: ir.Value | None = None) -> ir.Value:
    """The first accepted `attempt(block) -> (accepted, value)` over blocks first_block,
    first_block + 1, ... (at most MAX_TRIES; then the last candidate). `enabled` false
    skips the loop (gives `fallback`)."""
    false = arith.constant(ir.IntegerType.get_signless(1), 0)
    done = false if enabled is None else arith.xori(enabled, arith.constant(enabled.type, 1))

    def keep_going(c):
        more = arith.cmpi(arith.CmpIPredicate.slt, c[0], _c32(MAX_TRIES))
        return arith.andi(more, arith.xori(c[2], arith.constant(c[2].type, 1)))

    def step(c):
        accepted, value = attempt(arith.addi(c[0], _c32(first_block)))
        return [arith.addi(c[0], _c32(1)), value, accepted]

    return while_loop([_c32(0), fallback, done], keep_going, step)[1]


def _sequential_search(u: ir.Value, first: ir.Value, limit: ir.Value,
                       ratio: Callable[[ir.Value], ir.Value]) -> ir.Value:
    """Inversion: the smallest k <= limit (i64) with cdf(k) >= u, where pmf(0) = `first`
    and pmf(k + 1) = pmf(k) * ratio(k)."""
    def keep_going(c):
        below = arith.cmpf(arith.CmpFPredicate.OGT, u, c[2])
        return arith.andi(below, arith.cmpi(arith.CmpIPredicate.slt, c[0], limit))

    def step(c):
        k, pmf, cdf = c
        pmf = arith.mulf(pmf, ratio(k))
        return [arith.addi(k, _c64(1)), pmf, arith.addf(cdf, pmf)]

    return while_loop([_c64(0), first, first], keep_going, step)[0]


# ---------------------------------------------------------------- distributions
def _uniform(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    low, high = p
    return arith.addf(low, arith.mulf(arith.subf(high, low), unit(e.words(0), 0, ft)))


def _normal(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    return arith.addf(p[0], arith.mulf(p[1], standard_normal(e.words(0), ft)))


def _bernoulli(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    hit = arith.cmpf(arith.CmpFPredicate.OLT, unit(e.words(0), 0, ft), p[0])
    return arith.extui(I64(), hit)


def _integers(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    low, high = p
    span = arith.subi(high, low)
    positive = arith.cmpi(arith.CmpIPredicate.sgt, span, _c64(0))
    offset = lemire(e.words(0), arith.select(positive, span, _c64(1)))
    return arith.addi(low, offset)


def _binomial(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    n, prob = p
    flip = arith.cmpf(arith.CmpFPredicate.OGT, prob, _f(ft, 0.5))
    q = arith.select(flip, arith.subf(_f(ft, 1.0), prob), prob)
    n_f = arith.sitofp(ft, n)
    first = math.exp(arith.mulf(n_f, math.log1p(arith.negf(q))))
    odds = arith.divf(q, arith.subf(_f(ft, 1.0), q))

    def ratio(k):
        k_f = arith.sitofp(ft, k)
        return arith.mulf(odds, arith.divf(arith.subf(n_f, k_f), arith.addf(k_f, _f(ft, 1.0))))

    exact = arith.cmpf(arith.CmpFPredicate.OGT, first, _f(ft, 1e-250))
    k = _sequential_search(unit(e.words(0), 0, ft), first, arith.select(exact, n, _c64(0)), ratio)
    k = arith.select(exact, k, _binomial_normal(e, n_f, q, ft))
    return arith.select(flip, arith.subi(n, k), k)


def _binomial_normal(e: Element, n_f: ir.Value, q: ir.Value, ft: ir.Type) -> ir.Value:
    """Where (1 - q)**n underflows (n q above ~575): the normal approximation
    round(n q + sqrt(n q (1 - q)) z) clipped to [0, n] (relative error O(1/sqrt(n q)))."""
    mean = arith.mulf(n_f, q)
    sd = math.sqrt(arith.mulf(mean, arith.subf(_f(ft, 1.0), q)))
    value = math.roundeven(arith.addf(mean, arith.mulf(sd, standard_normal(e.words(1), ft))))
    return arith.fptosi(I64(), arith.minimumf(arith.maximumf(value, _f(ft, 0.0)), n_f))


def _poisson(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    lam = p[0]
    small = arith.cmpf(arith.CmpFPredicate.OLT, lam, _f(ft, 10.0))
    limit = arith.select(small, _c64(1000), _c64(0))

    def ratio(k):
        return arith.divf(lam, arith.sitofp(ft, arith.addi(k, _c64(1))))

    by_inversion = _sequential_search(unit(e.words(0), 0, ft), math.exp(arith.negf(lam)), limit, ratio)
    by_ptrs = rejection(1, arith.constant(ft, 0.0), lambda b: _ptrs_try(e.words(b), lam, ft),
                        enabled=arith.xori(small, arith.constant(small.type, 1)))
    return arith.select(small, by_inversion, arith.fptosi(I64(), by_ptrs))


def _ptrs_try(words: list[ir.Value], lam: ir.Value, ft: ir.Type) -> tuple[ir.Value, ir.Value]:
    """One try of Hormann's PTRS (transformed rejection with squeeze), as numpy's."""
    c = lambda v: _f(ft, v)  # noqa: E731
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = arith.addf(c(0.931), arith.mulf(c(2.53), slam))
    a = arith.addf(c(-0.059), arith.mulf(c(0.02483), b))
    inv_alpha = arith.addf(c(1.1239), arith.divf(c(1.1328), arith.subf(b, c(3.4))))
    vr = arith.subf(c(0.9277), arith.divf(c(3.6224), arith.subf(b, c(2.0))))
    u = arith.subf(unit(words, 0, ft), c(0.5))
    v = unit(words, 2, ft, open_low=True)
    us = arith.subf(c(0.5), math.absf(u))
    k = math.floor(arith.addf(arith.mulf(arith.addf(arith.divf(arith.mulf(c(2.0), a), us), b), u),
                              arith.addf(lam, c(0.43))))
    squeeze = arith.andi(arith.cmpf(arith.CmpFPredicate.OGE, us, c(0.07)), arith.cmpf(arith.CmpFPredicate.OLE, v, vr))
    lhs = arith.subf(arith.addf(math.log(v), math.log(inv_alpha)),
                     math.log(arith.addf(arith.divf(a, arith.mulf(us, us)), b)))
    lgamma = scalar_op("gammaln", [arith.addf(k, c(1.0))], "float64" if not _is_f32(ft) else "float32")
    rhs = arith.subf(arith.subf(arith.mulf(k, loglam), lam), lgamma)
    valid = arith.andi(arith.cmpf(arith.CmpFPredicate.OGE, k, c(0.0)),
                       arith.cmpf(arith.CmpFPredicate.OGE, us, c(0.013)))
    accepted = arith.ori(squeeze, arith.andi(valid, arith.cmpf(arith.CmpFPredicate.OLE, lhs, rhs)))
    return arith.andi(accepted, arith.cmpf(arith.CmpFPredicate.OGE, k, c(0.0))), k


def standard_gamma(e: Element, shape: ir.Value, ft: ir.Type, first_block: int) -> ir.Value:
    """Marsaglia-Tsang; block `first_block` holds the boost's uniform, tries follow."""
    one = _f(ft, 1.0)
    boost = arith.cmpf(arith.CmpFPredicate.OLT, shape, one)
    a = arith.select(boost, arith.addf(shape, one), shape)
    d = arith.subf(a, _f(ft, 1.0 / 3.0))
    c = arith.divf(one, math.sqrt(arith.mulf(_f(ft, 9.0), d)))

    def attempt(block):
        words = e.words(block)
        x = box_muller(unit(words, 0, ft, open_low=True), unit32(words[2], ft), ft)
        u = unit32(words[3], ft, open_low=True)
        t = arith.addf(one, arith.mulf(c, x))
        v = arith.mulf(arith.mulf(t, t), t)
        positive = arith.cmpf(arith.CmpFPredicate.OGT, v, _f(ft, 0.0))
        safe_v = arith.select(positive, v, one)
        rhs = arith.addf(arith.mulf(_f(ft, 0.5), arith.mulf(x, x)),
                         arith.addf(arith.subf(d, arith.mulf(d, safe_v)), arith.mulf(d, math.log(safe_v))))
        accepted = arith.andi(positive, arith.cmpf(arith.CmpFPredicate.OLT, math.log(u), rhs))
        return accepted, arith.mulf(d, safe_v)

    value = rejection(first_block + 1, d, attempt)
    u0 = unit(e.words(first_block), 0, ft, open_low=True)
    scale = math.powf(u0, arith.divf(one, shape))
    return arith.select(boost, arith.mulf(value, scale), value)


def _gamma(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    return arith.mulf(standard_gamma(e, p[0], ft, 0), p[1])


def _beta(e: Element, p: list[ir.Value], ft: ir.Type) -> ir.Value:
    x = standard_gamma(e, p[0], ft, 0)
    y = standard_gamma(e, p[1], ft, SECOND_GAMMA)
    return arith.divf(x, arith.addf(x, y))


@dataclass(frozen=True)
class Distribution:
    """One distribution: its parameters' kinds ("float" or "int"), whether its sample
    is a float (floatX or `dtype`) or an integer (int64), and its element function."""
    params: tuple[str, ...]
    result: str
    sample: Callable[[Element, list[ir.Value], ir.Type], ir.Value]


DISTRIBUTIONS = {
    "uniform": Distribution(("float", "float"), "float", _uniform),
    "normal": Distribution(("float", "float"), "float", _normal),
    "bernoulli": Distribution(("float",), "int", _bernoulli),
    "integers": Distribution(("int", "int"), "int", _integers),
    "binomial": Distribution(("int", "float"), "int", _binomial),
    "poisson": Distribution(("float",), "int", _poisson),
    "gamma": Distribution(("float", "float"), "float", _gamma),
    "beta": Distribution(("float", "float"), "float", _beta),
}


# ---------------------------------------------------------------- the op
class RandomVariable(Op):
    """A draw: inputs (state, one int64 size per output dim, parameters); outputs
    (the state with its counter advanced by one, the sample). Parameters broadcast
    against the size (aligned on the right), as Aesara's."""

    def __init__(self, distribution: str, dtype: str, broadcastable: Sequence[bool]):
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {distribution!r}; expected one of {', '.join(DISTRIBUTIONS)}")
        self.distribution, self.dtype = distribution, dtypes.check(dtype)
        self.broadcastable = tuple(broadcastable)

    def __str__(self) -> str:
        return f"random_{self.distribution}"

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    def make_node(self, state: Variable, *rest: Variable) -> Apply:
        if state.dtype != "int64" or state.ndim != 1:
            raise TypeError(f"{self}: expected rng to be an int64 vector stream state, got {state.describe()}")
        sizes, params = rest[:self.ndim], rest[self.ndim:]
        kinds = DISTRIBUTIONS[self.distribution].params
        if len(params) != len(kinds):
            raise TypeError(f"{self}: takes {len(kinds)} parameters, got {len(params)}")
        for i, s in enumerate(sizes):
            if s.ndim != 0 or not dtypes.is_int(s.dtype):
                raise TypeError(f"{self}: size[{i}] must be an integer scalar, got {s.describe()}")
        for i, v in enumerate(params):
            if v.ndim > self.ndim:
                raise ValueError(f"{self}: parameter {i} ({v.describe()}) has more dims than the size ({self.ndim})")
        return Apply(self, [state, *sizes, *params], [state.type, TensorType(self.dtype, self.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0]), list(node.inputs[1:1 + self.ndim])]


def _work_type(op: RandomVariable) -> tuple[str, ir.Type]:
    """The dtype floats are computed in: the sample's, or float64 for integer samples."""
    work = op.dtype if dtypes.is_float(op.dtype) else "float64"
    return work, compute_type(work)


def _element_generator(fe, state: ir.Value) -> Callable[[ir.Value], Element]:
    """Reads key and counter from the state (checked to have STATE_SIZE entries)."""
    fe.check(arith.cmpi(arith.CmpIPredicate.eq, dim(state, 0), index_const(STATE_SIZE)), st.SHAPE_MISMATCH,
             "the random stream state must have 3 entries (key0, key1, counter)")
    entry = [tensor.extract(state, [index_const(i)]) for i in range(STATE_SIZE)]
    key = (arith.trunci(I32(), entry[0]), arith.trunci(I32(), entry[1]))
    counter = (arith.trunci(I32(), entry[2]), arith.trunci(I32(), arith.shrui(entry[2], _c64(32))))
    return lambda index: Element(key, counter, index)


def _advanced(state: ir.Value) -> ir.Value:
    counter = tensor.extract(state, [index_const(2)])
    return tensor.insert(arith.addi(counter, _c64(1)), state, [index_const(2)])


def _sizes(fe, node, values) -> list[ir.Value]:
    """The output dims (1 where broadcastable); each parameter's dims are checked."""
    op = node.op
    sizes = [index_const(1) if b else arith.index_cast(ir.IndexType.get(), cast_scalar(
        scalar_of(v, var.dtype), var.dtype, "int64")) for b, v, var in
        zip(op.broadcastable, values[1:1 + op.ndim], node.inputs[1:1 + op.ndim])]
    for v, var in zip(values[1 + op.ndim:], node.inputs[1 + op.ndim:]):
        for axis in range(var.ndim):
            if not var.broadcastable[axis]:
                want = sizes[axis + op.ndim - var.ndim]
                fe.check(arith.cmpi(arith.CmpIPredicate.eq, dim(v, axis), want), st.SHAPE_MISMATCH,
                         f"{op}: a parameter's shape does not broadcast to the size")
    return sizes


def _flat_index(sizes: list[ir.Value]) -> ir.Value:
    """The element's row-major index (i64) inside a linalg.generic body."""
    flat = index_const(0)
    for axis, size in enumerate(sizes):
        flat = arith.addi(arith.muli(flat, size), loop_index(axis))
    return arith.index_cast(I64(), flat)


@rules.emission(RandomVariable)
def _emit_random(fe, node, values):
    op = node.op
    dist = DISTRIBUTIONS[op.distribution]
    work, ft = _work_type(op)
    params = node.inputs[1 + op.ndim:]
    element = _element_generator(fe, values[0])

    def sample(index: ir.Value, scalars: list[ir.Value]) -> ir.Value:
        args = [cast_scalar(load_scalar(s, v.dtype), v.dtype, work if kind == "float" else "int64")
                for s, v, kind in zip(scalars, params, dist.params)]
        value = dist.sample(element(index), args, ft)
        return cast_scalar(value, work if dist.result == "float" else "int64", op.dtype)

    out_type = node.outputs[1].type
    if op.ndim == 0:
        scalars = [tensor.extract(v, []) for v in values[1:]]
        return [_advanced(values[0]), scalar_tensor(sample(_c64(0), scalars), op.dtype)]
    sizes = _sizes(fe, node, values)
    maps = [input_map(v.type, op.ndim) for v in params] + [ir.AffineMap.get_identity(op.ndim)]
    result = generic(values[1 + op.ndim:], empty(sizes, out_type), maps, ["parallel"] * op.ndim,
                     lambda args: store_scalar(sample(_flat_index(sizes), args[:-1]), op.dtype))
    return [_advanced(values[0]), result]


rules.vjp(RandomVariable)(rules.no_gradient)


# ---------------------------------------------------------------- user function
__all__: list[str] = []  # the user functions live in scanaot.tensor.random


def random_variable(distribution: str, rng: Variable, size: Sequence[Any], broadcastable: Sequence[bool],
                    params: Sequence[Any], dtype: str) -> tuple[Variable, Variable]:
    """(next state, sample) of one draw; `size` one integer (scalar) per output dim."""
    sizes = [as_tensor_variable(s) for s in size]
    sizes = [int_constant(int(s.data)) if hasattr(s, "data") else s for s in sizes]
    op = RandomVariable(distribution, dtype, broadcastable)
    return tuple(op(rng, *sizes, *[as_tensor_variable(p) for p in params]))
