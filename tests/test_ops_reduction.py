"""Reductions, argmax, var/std, cumsum/cumprod and sort against numpy; gradients against
float64 central differences of the numpy reference."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import assert_close, sample
from scanaot.runtime.status import StatusError


def numeric_grad(ref, a, w, eps=1e-6):
    """d sum(ref(a) * w) / da by central differences (float64)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        p, m = a.copy(), a.copy()
        p[i] += eps
        m[i] -= eps
        g[i] = (np.sum(ref(p) * w) - np.sum(ref(m) * w)) / (2 * eps)
    return g


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_reductions_against_numpy(dtype, rng):
    x = at.tensor(dtype=dtype, shape=(None, None, None))
    a = sample(rng, (2, 3, 4), "int8").astype(dtype) if dtype == "bool" else sample(rng, (2, 3, 4), dtype)
    cases = [
        (at.all(x, axis=1), np.all(a, 1)), (at.any(x, axis=(0, -1), keepdims=True), np.any(a, (0, 2), keepdims=True)),
        (at.all(x), np.all(a)), (x.any(-1), np.any(a, -1)),
        (at.max(x, axis=-1, keepdims=True), np.max(a, -1, keepdims=True)), (x.min((0, 2)), np.min(a, (0, 2))),
        (at.argmax(x), np.argmax(a)), (at.argmin(x, axis=-2), np.argmin(a, -2)),
        (x.argmax(0, keepdims=True), np.argmax(a, 0, keepdims=True)),
        (at.sort(x), np.sort(a)), (at.argsort(x, axis=0), np.argsort(a, 0, kind="stable")),
    ]
    if dtype != "bool":
        cases += [(at.sum(x, axis=-1, keepdims=True), np.sum(a, -1, keepdims=True)),
                  (at.prod(x, axis=(0, 1)), np.prod(a, (0, 1))), (at.cumsum(x, axis=1), np.cumsum(a, 1)),
                  (x.cumprod(-1), np.cumprod(a, -1))]
    if dtype.startswith("float"):
        cases += [(at.var(x, axis=1), np.var(a, 1)), (at.std(x, ddof=1, keepdims=True), np.std(a, ddof=1, keepdims=True)),
                  (x.mean(axis=-1, keepdims=True), np.mean(a, -1, keepdims=True))]
    f = aesara.function([x], [c[0] for c in cases])
    for k, (got, (_, want)) in enumerate(zip(f(a), cases)):
        assert got.shape == np.shape(want), k
        assert_close(got, np.asarray(want).astype(got.dtype))
        if k < 4:
            assert got.dtype == np.bool_
        if 6 <= k <= 8 or k == 10:
            assert got.dtype == np.int64


def test_argmax_ties_and_nan_follow_numpy():
    x = at.dvector()
    f = aesara.function([x], [at.argmax(x), at.argmin(x), at.sort(x), at.argsort(x)])
    for a in ([1., 3., 3., 0., 0.], [1., np.nan, 2., np.nan]):
        a = np.array(a)
        got = f(a)
        np.testing.assert_array_equal(got[0], np.argmax(a))
        np.testing.assert_array_equal(got[1], np.argmin(a))
        np.testing.assert_array_equal(got[2], np.sort(a))
        np.testing.assert_array_equal(got[3], np.argsort(a, kind="stable"))


def test_empty_shapes():
    x = at.dmatrix()
    f = aesara.function([x], [at.sum(x, axis=0), at.cumsum(x, axis=0), at.sort(x), at.all(x, axis=0)])
    got = f(np.zeros((0, 3)))
    assert_close(got[0], np.zeros(3))
    assert got[1].shape == (0, 3) and got[2].shape == (0, 3)
    assert_close(got[3], np.ones(3, bool))
    g = aesara.function([x], [at.max(x, axis=0), at.argmax(x, axis=0)])
    with pytest.raises(StatusError, match="zero-size axis"):
        g(np.zeros((0, 3)))
    assert_close(g(np.zeros((2, 0)))[0], np.zeros(0))


def test_bad_arguments_are_named():
    x = at.dmatrix()
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        at.max(x, axis=2)
    with pytest.raises(ValueError, match="repeats"):
        at.sum(x, axis=(0, -2))
    with pytest.raises(TypeError, match="axis must be"):
        at.sum(x, axis=1.5)
    with pytest.raises(ValueError, match="ddof"):
        at.var(x, ddof=-1)
    with pytest.raises(ValueError, match="at least one dim"):
        at.sort(at.dscalar())


def test_gradients_against_finite_differences(rng):
    x, w = at.dmatrix("x"), at.dmatrix("w")
    cases = {"cumsum": (at.cumsum(x, axis=1), lambda a: np.cumsum(a, 1)),
             "cumprod": (at.cumprod(x, axis=0), lambda a: np.cumprod(a, 0)),
             "sort": (at.sort(x, axis=0), lambda a: np.sort(a, 0)),
             "var": (at.var(x, axis=1, keepdims=True), lambda a: np.var(a, 1, keepdims=True)),
             "std": (at.std(x, ddof=1), lambda a: np.std(a, ddof=1)),
             "max": (at.max(x, axis=-1, keepdims=True), lambda a: np.max(a, -1, keepdims=True)),
             "prod": (x.prod(0, keepdims=True), lambda a: np.prod(a, 0, keepdims=True))}
    a, wv = rng.uniform(0.5, 1.5, size=(3, 4)), rng.normal(size=(3, 4))
    f = aesara.function([x, w], [aesara.grad(at.sum(y * w), x) for y, _ in cases.values()])
    for (name, (_, ref)), g in zip(cases.items(), f(a, wv)):
        w_ref = wv if np.ndim(ref(a)) == 2 and np.shape(ref(a)) == a.shape else np.broadcast_to(wv, a.shape)
        np.testing.assert_allclose(g, numeric_grad(ref, a, _broadcast_weight(ref(a), wv)), rtol=1e-5, atol=1e-7,
                                   err_msg=name)
        del w_ref


def _broadcast_weight(out, w):
    """The part of w the symbolic sum(y * w) pairs with each element (y broadcasts to w)."""
    out = np.asarray(out)
    return w if out.shape == w.shape else w.sum(axis=tuple(i for i in range(w.ndim)
                                                            if out.ndim == 0 or out.shape[i] == 1),
                                                keepdims=out.ndim > 0)


def test_argmax_and_all_have_no_gradient():
    x = at.dvector()
    g = aesara.grad(at.sum(x * at.cast(at.argmax(x), "float64")), x)
    a = np.array([1., 3., 2.])
    assert_close(aesara.function([x], g)(a), np.full(3, 1.))


def test_inside_a_scan_step(rng):
    xs = at.dmatrix("xs")
    out, _ = aesara.scan(lambda row, acc: acc + at.max(at.cumsum(row, axis=0)) + at.cast(at.argmin(row), "float64"),
                         sequences=[xs], outputs_info=[at.as_tensor_variable(np.float64(0))])
    a = rng.normal(size=(4, 5))
    want = np.cumsum([np.max(np.cumsum(r)) + np.argmin(r) for r in a])
    assert_close(aesara.function([xs], out)(a), want)


def test_compiles_for_cuda(tmp_path):
    x = at.fmatrix("x")
    outs = [at.argmax(x, axis=1), at.cumsum(x, axis=0), at.sort(x), at.var(x, axis=0, keepdims=True), at.all(x > 0)]
    art = aesara.compile([x], outs, name="reductions", target="cuda", out_dir=tmp_path)
    assert art is not None


def test_axis_none_works_on_the_flattened_tensor():
    """numpy's rule for cumsum, cumprod, sort, argsort and take with axis=None."""
    x, idx = at.dmatrix("x"), at.lvector("idx")
    f = aesara.function([x, idx], [at.cumsum(x), at.cumprod(x), at.sort(x, axis=None), at.argsort(x, axis=None),
                                   at.take(x, idx), x.take(idx)])
    xv = np.array([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0]])
    iv = np.array([5, 0, 3])
    got = f(xv, iv)
    for g, want in zip(got, [np.cumsum(xv), np.cumprod(xv), np.sort(xv, axis=None), np.argsort(xv, axis=None),
                             np.take(xv, iv), np.take(xv, iv)]):
        np.testing.assert_array_equal(g, want)
