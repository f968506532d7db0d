"""vectorize-generics (aot/passes/vectorize_generics.py): elementwise loops, outer
reductions, copies and fills as vector loops of the CPU variant's width, checked
against numpy at every length around the vector width, at each CPU level."""
import numpy as np
import pytest

import scanaot
import scanaot as aesara
import scanaot.tensor as at
from conftest import assert_close, sample

# around one and several vectors of every variant (4/8/16 float32 lanes, 2/4/8 float64)
LENGTHS = [0, 1, 3, 4, 7, 8, 15, 16, 17, 33, 67]
LEVELS = ["x86-64-v2", "x86-64-v3", "native"]


@pytest.mark.parametrize("cpu", LEVELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_elementwise_with_broadcasts_at_every_length(cpu, dtype, rng):
    x, row = at.matrix("x", dtype=dtype), at.vector("row", dtype=dtype)
    col = at.tensor(dtype=dtype, shape=(None, 1), name="col")
    out = at.maximum(x * 2 + row, x - col) + at.arange(x.shape[1], dtype=dtype)
    f = aesara.function([x, row, col], [out, x.sum(axis=0), x.max(axis=0)], cpu=cpu)
    for n in LENGTHS:
        xv, rv, cv = sample(rng, (3, n), dtype), sample(rng, (n,), dtype), sample(rng, (3, 1), dtype)
        got, total, largest = f(xv, rv, cv)
        assert_close(got, np.maximum(xv * 2 + rv, xv - cv) + np.arange(n, dtype=dtype), dtype)
        assert_close(total, xv.sum(axis=0))
        if n:
            assert_close(largest, xv.max(axis=0), dtype)


@pytest.mark.parametrize("cpu", LEVELS)
def test_outer_reductions_in_a_scan_step(cpu, rng):
    """The HMM's step: a logsumexp over rows (max, then a sum of exps) in float32."""
    log_obs, log_A = at.fmatrix("log_obs"), at.fmatrix("log_A")
    alphas, _ = scanaot.scan(lambda o, a, A: o + at.logsumexp(a[:, None] + A, axis=0),
                             sequences=log_obs[1:], outputs_info=log_obs[0], non_sequences=log_A)
    f = aesara.function([log_obs, log_A], alphas, cpu=cpu)
    for states in (1, 5, 16, 19):
        obs = np.log(rng.uniform(0.1, 1, (6, states))).astype("float32")
        A = np.log(rng.dirichlet(np.ones(states), states)).astype("float32")
        alpha, expect = obs[0].astype("float64"), []
        for o in obs[1:]:
            z = alpha[:, None] + A
            alpha = o + np.log(np.exp(z - z.max(axis=0)).sum(axis=0)) + z.max(axis=0)
            expect.append(alpha)
        np.testing.assert_allclose(f(obs, A), np.array(expect), rtol=2e-6, atol=2e-6)


def test_integer_division_past_the_last_full_vector_does_not_trap():
    """A masked chunk reads zeros past the end: integer division stays with LLVM."""
    x, y = at.ivector("x"), at.ivector("y")
    f = aesara.function([x, y], [x // y, x % y])
    xv, yv = np.arange(1, 6, dtype="int32"), np.full(5, 2, dtype="int32")
    q, r = f(xv, yv)
    assert_close(q, xv // yv) and assert_close(r, xv % yv)


def test_nan_and_inf_lanes_as_numpy(rng):
    x = at.fvector("x")
    f = aesara.function([x], [at.exp(x), at.log(x), at.maximum(x, 0), x.max()])
    xv = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0, np.nan, 3.0], dtype="float32")
    with np.errstate(all="ignore"):
        expect = [np.exp(xv), np.log(xv), np.maximum(xv, 0), np.max(xv)]
    for got, want in zip(f(xv), expect):
        np.testing.assert_array_equal(got, want)


def test_the_llvm_stage_has_vectors_of_the_variant_width():
    x = at.fmatrix("x")
    f = aesara.function([x], at.exp(x) * 2 + x.sum(axis=0), cpu="x86-64-v3")
    llvm = f.ir("llvm")
    assert "vector<8xf32>" in llvm, "AVX2: 8 float32 lanes"
    assert "llvm.intr.masked.load" in llvm or "masked.load" in llvm, "the tail is one masked chunk"


def test_a_diagonal_read_is_left_to_llvm(rng):
    """`diag(x) * y`-like reads index two dims with the inner loop: not a contiguous chunk."""
    x = at.dmatrix("x")
    f = aesara.function([x], [at.diag(x) + 1, x * at.diag(x)[None, :]])
    for n in (1, 5, 17):
        xv = rng.normal(size=(n, n))
        d, scaled = f(xv)
        assert_close(d, np.diag(xv) + 1) and assert_close(scaled, xv * np.diag(xv)[None, :])


@pytest.mark.parametrize("cpu", LEVELS)
@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_narrow_and_wide_elements_at_every_length(cpu, dtype, rng):
    """Where the CPU has no masked access for an element size (SSE: none; AVX2: bytes
    and halfwords) the partial chunk is a scalar loop; elsewhere a masked chunk."""
    x, y = at.vector("x", dtype=dtype), at.vector("y", dtype=dtype)
    f = aesara.function([x, y], [at.maximum(x, y) + x, at.minimum(x, y)], cpu=cpu)
    for n in LENGTHS + [31, 32, 63, 64, 65]:
        xv, yv = sample(rng, (n,), dtype), sample(rng, (n,), dtype)
        got, low = f(xv, yv)
        assert_close(got, np.maximum(xv, yv) + xv, dtype)
        assert_close(low, np.minimum(xv, yv), dtype)


@pytest.mark.parametrize("cpu, dtype, masked", [("x86-64-v2", "float32", False), ("x86-64-v3", "float32", True),
                                                ("x86-64-v3", "int16", False), ("x86-64-v4", "int16", True)])
def test_masked_tails_only_where_the_cpu_has_masked_access(cpu, dtype, masked):
    """LLVM splits a masked access the CPU lacks into a branch per lane."""
    x = at.vector("x", dtype=dtype)
    llvm = aesara.function([x], x * 3 + 1, cpu=cpu).ir("llvm")
    assert ("masked.store" in llvm) is masked


@pytest.mark.parametrize("cpu", LEVELS)
def test_rounding_on_vectors_as_numpy(cpu):
    """floor and the other rounding ops become instructions on vectors (no libm call per lane)."""
    x = at.fvector("x")
    f = aesara.function([x], [at.floor(x), at.ceil(x), at.trunc(x), at.round_half_to_even(x),
                              at.round_half_away_from_zero(x), at.sigmoid(x)], cpu=cpu)
    xv = np.array([-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 0.49999997, -3.7, 3.7, 1e8, -1e8, np.inf, -np.inf,
                   np.nan, 7.25, -7.25, 20.0, -20.0], dtype="float32")
    exact = xv.astype("float64")  # x + 0.5 rounds in float32 (0.49999997 + 0.5 == 1)
    expect = [np.floor(xv), np.ceil(xv), np.trunc(xv), np.round(xv),
              np.where(exact < 0, -np.floor(-exact + 0.5), np.floor(exact + 0.5)).astype("float32")]
    got = f(xv)
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g, e)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(got[-1], 1 / (1 + np.exp(-xv.astype("float64"))), rtol=1e-6, atol=1e-7)
    assert "floorf" not in f.ir("llvm")


def test_a_masked_tail_computes_its_mask_once():
    """A tail's reads and write are in bounds under the chunk's own mask: one vector
    compare makes the mask of all its accesses (an out-of-bounds transfer would AND a
    second mask of the same bound into each): as many compares as masked tails, each
    tail one masked store (the elementwise loop's, and the copy's into a caller's
    buffer of another shape)."""
    x, y = at.fvector("x"), at.fvector("y")
    f = aesara.function([x, y], x * y + 1, cpu="x86-64-v4")
    llvm_ir = f.ir("llvm")
    tails = llvm_ir.count("llvm.intr.masked.store")
    assert tails >= 1 and llvm_ir.count("llvm.intr.masked.load") >= 2 * tails - 1
    assert len([line for line in llvm_ir.splitlines() if "llvm.icmp" in line and "vector<" in line]) == tails
    xv, yv = np.arange(21, dtype="float32"), np.linspace(0, 1, 21, dtype="float32")
    np.testing.assert_allclose(f(xv, yv), xv * yv + 1, rtol=1e-6)
