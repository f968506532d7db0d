"""Valid programs that once failed to compile, each against a plain numpy loop.

- a direct (keep-last) state whose new value is written by a loop: `dot(p, M)`,
  an inner scan seeded by the outer state, checkpoint chunks (out_of_place.py);
- a state read by a loop after another state's in-place writer;
- graphs 10^4 elementwise ops deep (iterative shape inference, linear fusion).
"""
import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot.packaging.shape_expr import ExprBuilder
from test_passes import allocations_inside_loops

DTYPES = ["float32", "float64"]
# python float constants are floatX (float32): the steps use constants exact in float32


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)


def _matrix(n, dtype, seed=0):
    return (np.random.default_rng(seed).random((n, n)) * (0.9 / n)).astype(dtype)


def _power_program(dtype, step):
    M = at.matrix("M", dtype=dtype)
    k = at.iscalar("k")
    r, _ = scanaot.scan(step, outputs_info=at.ones_like(M), non_sequences=M, n_steps=k)
    return scanaot.function([M, k], r[-1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_state_times_matrix_keeps_last(dtype):
    f = _power_program(dtype, lambda p, M: at.dot(p, M))
    for n, steps in [(1, 1), (3, 1), (5, 7), (17, 3)]:
        m = _matrix(n, dtype)
        want = np.ones_like(m)
        for _ in range(steps):
            want = want @ m
        np.testing.assert_allclose(f(m, steps), want, **_tol(dtype))
    assert allocations_inside_loops(f.ir("memref")) == []


def test_matrix_state_on_the_right_and_empty_run():
    f = _power_program("float64", lambda p, M: at.dot(M, p) + p.T)
    m = _matrix(4, "float64")
    want = np.ones_like(m)
    for _ in range(5):
        want = m @ want + want.T
    np.testing.assert_allclose(f(m, 5), want, rtol=1e-12)
    with pytest.raises(Exception, match="zero steps"):
        f(m, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", ["left", "right"])
def test_vector_state_times_matrix(dtype, side):
    M, v, k = at.matrix("M", dtype=dtype), at.vector("v", dtype=dtype), at.iscalar("k")
    step = (lambda p, M: at.dot(M, p)) if side == "left" else (lambda p, M: at.dot(p, M))
    r, _ = scanaot.scan(step, outputs_info=v, non_sequences=M, n_steps=k)
    f = scanaot.function([M, v, k], r[-1])
    m, v0 = _matrix(6, dtype), np.linspace(1, 2, 6).astype(dtype)
    want = v0
    for _ in range(9):
        want = m @ want if side == "left" else want @ m
    np.testing.assert_allclose(f(m, v0, 9), want, **_tol(dtype))


@pytest.mark.parametrize("order", ["writer first", "reader first"])
def test_state_read_by_a_loop_after_an_in_place_writer(order):
    M, k = at.matrix("M", dtype="float64"), at.iscalar("k")
    if order == "writer first":
        step, ref = (lambda a, b, M: (a * 2.0, at.dot(a, M))), (lambda a, b, m: (a * 2, a @ m))
    else:
        step, ref = (lambda a, b, M: (at.dot(b, M), a * 2.0)), (lambda a, b, m: (b @ m, a * 2))
    (a, b), _ = scanaot.scan(step, outputs_info=[M, M * 3.0], non_sequences=M, n_steps=k)
    f = scanaot.function([M, k], [a[-1], b[-1]])
    m = _matrix(3, "float64")
    wa, wb = m, m * 3
    for _ in range(4):
        wa, wb = ref(wa, wb, m)
    ga, gb = f(m, 4)
    np.testing.assert_allclose(ga, wa, rtol=1e-12)
    np.testing.assert_allclose(gb, wb, rtol=1e-12)


def _nested(dtype, inner_step, inner_steps):
    x, k = at.vector("x", dtype=dtype), at.iscalar("k")

    def outer(p):
        inner, _ = scanaot.scan(inner_step, outputs_info=p, n_steps=inner_steps)
        return inner[-1]

    r, _ = scanaot.scan(outer, outputs_info=x, n_steps=k)
    return scanaot.function([x, k], r[-1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_scan_seeded_by_the_outer_state(dtype):
    f = _nested(dtype, lambda q: q * 0.5 + 1.0, 3)
    x0 = np.linspace(-1, 1, 300).astype(dtype)
    for steps in (1, 4):
        want = x0.copy()
        for _ in range(steps * 3):
            want = want * 0.5 + 1.0
        np.testing.assert_allclose(f(x0, steps), want, **_tol(dtype))


def test_nested_scan_with_a_matrix_step():
    """The inner scan is not interchanged (dot): its loop carries a copy of the seed."""
    M, x, k = at.matrix("M", dtype="float64"), at.vector("x", dtype="float64"), at.iscalar("k")

    def outer(p, M):
        inner, _ = scanaot.scan(lambda q, M: at.dot(M, q), outputs_info=p, non_sequences=M, n_steps=2)
        return inner[-1]

    r, _ = scanaot.scan(outer, outputs_info=x, non_sequences=M, n_steps=k)
    f = scanaot.function([M, x, k], r[-1])
    m, x0 = _matrix(5, "float64"), np.arange(5.0)
    np.testing.assert_allclose(f(m, x0, 3), np.linalg.matrix_power(m, 6) @ x0, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_checkpoint_forward_keeps_last(dtype):
    x, k = at.vector("x", dtype=dtype), at.iscalar("k")
    rc, _ = scanaot.scan_checkpoints(lambda p: p * 0.75 + 0.25, outputs_info=x, n_steps=k, save_every_N=100)
    f = scanaot.function([x, k], rc[-1])
    x0 = np.linspace(0, 3, 50).astype(dtype)
    for steps in (1, 100, 250):
        want = x0.copy()
        for _ in range(steps):
            want = want * 0.75 + 0.25
        np.testing.assert_allclose(f(x0, steps), want, **_tol(dtype))


def test_gradient_through_matrix_power_matches_finite_differences():
    M, k = at.matrix("M", dtype="float64"), at.iscalar("k")
    r, _ = scanaot.scan(lambda p, M: at.dot(p, M), outputs_info=at.ones_like(M), non_sequences=M, n_steps=k)
    cost = r[-1].sum()
    f = scanaot.function([M, k], [cost, scanaot.grad(cost, M)])
    m = _matrix(3, "float64", seed=1)
    value, grad = f(m, 4)
    eps, numeric = 1e-6, np.zeros_like(m)
    for i in np.ndindex(m.shape):
        up, down = m.copy(), m.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (f(up, 4)[0] - f(down, 4)[0]) / (2 * eps)
    np.testing.assert_allclose(value, (np.ones_like(m) @ np.linalg.matrix_power(m, 4)).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def _chain(x, depth):
    y = x
    for _ in range(depth):
        y = y * 0.9990234375 + 0.5  # exact in float32: python floats are floatX constants
    return y


def _chain_ref(x0, depth):
    y = x0.copy()
    for _ in range(depth):
        y = y * x0.dtype.type(0.9990234375) + x0.dtype.type(0.5)
    return y


def test_ten_thousand_chained_scalar_ops_compile():
    x = at.scalar("x", dtype="float64")
    f = scanaot.function([x], _chain(x, 10_000))
    np.testing.assert_allclose(f(np.float64(1.0)), _chain_ref(np.ones((), "float64"), 10_000), rtol=1e-9)


def test_shapes_of_a_deep_chain():
    """30 times Python's recursion limit (10^5 works too, in 10 s)."""
    x = at.vector("x")
    y = _chain(x, 30_000)
    shape, bounded = ExprBuilder([x]).output_shape(y)
    assert shape == [{"dim": [0, 0]}] and bounded == [False]


def test_elementwise_chain_fuses_into_one_loop():
    x = at.vector("x", dtype="float64")
    f = scanaot.function([x], _chain(x, 250))  # 500 body ops: under split-large-generics' cut
    assert f.ir("scf").count("linalg.generic") == 1
    x0 = np.linspace(0, 1, 37)
    np.testing.assert_allclose(f(x0), _chain_ref(x0, 250), rtol=1e-12)


def test_long_vector_chain_is_split_into_bounded_loops():
    """split-large-generics: 3000 fused ops become loops of at most MAX_BODY_OPS ops each
    (LLVM's vectorizer is superlinear in a loop's size), with the same results; the
    values crossing a cut include one read by several later ops."""
    from scanaot.passes.split_generics import MAX_BODY_OPS
    x = at.vector("x", dtype="float64")
    y = x
    for i in range(1500):
        y = at.tanh(y) * 0.5 + x if i % 7 == 0 else y * 0.5 + 0.25
    f = scanaot.function([x], y)
    scf = f.ir("scf")
    assert 2 < scf.count("linalg.generic") <= 3000 // MAX_BODY_OPS + 2
    x0 = np.linspace(-1, 1, 37)
    ref = x0.copy()
    for i in range(1500):
        ref = np.tanh(ref) * 0.5 + x0 if i % 7 == 0 else ref * 0.5 + 0.25
    np.testing.assert_allclose(f(x0), ref, rtol=1e-12)


def test_shape_expressions_fold_and_stay_loadable():
    """n_steps built from many scalar ops folds (`(k + 1) + 1` is `k + 2`, `e * 1` is `e`);
    one that stays deeper than the runtime reads is refused at compile time, naming the output."""
    k, x = at.iscalar("k"), at.dscalar("x")
    n = k
    for i in range(200):
        n = n + 1 if i % 2 else n * 1
    r, _ = scanaot.scan(lambda p: p * 2, outputs_info=x, n_steps=n - 3)
    f = scanaot.function([x, k], r)
    assert f(1.0, 2).shape == (99,)
    assert f.manifest["functions"][0]["outputs"][0]["shape_text"] == ["int((k + 97))"]
    m = k
    for _ in range(100):
        m = at.maximum(m - 1, 1) + 1
    r2, _ = scanaot.scan(lambda p: p * 2, outputs_info=x, n_steps=m)
    with pytest.raises(ValueError, match="output 0 .* levels deep"):
        scanaot.function([x, k], r2)
