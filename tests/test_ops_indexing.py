"""Indexing: None/Ellipsis, x[idx], take, set/inc_subtensor on x[idx], against numpy."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import assert_close
from scanaot.runtime.status import StatusError


def _inc(a, i, v):
    a = a.copy()
    np.add.at(a, i, v)
    return a


def _set(a, i, v):
    a = a.copy()
    a[i] = v
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_array_index_newaxis_and_ellipsis(dtype):
    x, i, y = at.tensor(dtype=dtype, shape=(None, None)), at.lvector("i"), at.tensor(dtype=dtype, shape=(None, None))
    outs = [x[i], at.take(x, i, axis=1), x[None], x[:, None, 1:], x[..., 0], x[..., None], x[0, ..., None],
            at.inc_subtensor(x[i], 1), at.set_subtensor(x[i], y), at.inc_subtensor(x[i], y), x[[0, -1]], x.take(i, 0)]
    f = aesara.function([x, i, y], outs)
    a = np.arange(12).reshape(3, 4).astype(dtype)
    iv = np.array([0, 2, 0, -1])
    yv = (np.ones((4, 4)) * np.arange(1, 5)[:, None]).astype(dtype)
    want = [a[iv], np.take(a, iv, axis=1), a[None], a[:, None, 1:], a[..., 0], a[..., None], a[0, ..., None],
            _inc(a, iv, 1), _set(a, iv, yv), _inc(a, iv, yv), a[[0, -1]], a[iv]]
    for got, ref in zip(f(a, iv, yv), want):
        assert_close(got, ref.astype(dtype), dtype)


def test_out_of_bounds_and_bad_indices():
    x, i = at.dvector("x"), at.lvector("i")
    f = aesara.function([x, i], [x[i], at.inc_subtensor(x[i], 1.0)])
    with pytest.raises(StatusError, match="out of bounds"):
        f(np.zeros(3), np.array([3]))
    with pytest.raises(StatusError, match="out of bounds"):
        f(np.zeros(0), np.array([0]))
    with pytest.raises(IndexError, match="boolean mask"):
        x[x > 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="integer vector"):
        x[at.dvector()]
    with pytest.raises(ValueError, match="take: axis"):
        at.take(x, i, axis=1)


def test_gradients_against_finite_differences(rng):
    x, i, w = at.dmatrix("x"), at.lvector("i"), at.dmatrix("w")
    cost = at.sum(x[i] * w) + at.sum(at.take(x, i, 1) ** 2) + at.sum(x[:, None] * 3)
    a, iv, wv = rng.normal(size=(3, 4)), np.array([0, 2, 0]), rng.normal(size=(3, 4))
    got = aesara.function([x, i, w], aesara.grad(cost, x))(a, iv, wv)

    def ref(v):
        return np.sum(v[iv] * wv) + np.sum(np.take(v, iv, 1) ** 2) + np.sum(v * 3)

    num = np.zeros_like(a)
    for k in np.ndindex(a.shape):
        p, m = a.copy(), a.copy()
        p[k] += 1e-6
        m[k] -= 1e-6
        num[k] = (ref(p) - ref(m)) / 2e-6
    np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-7)


def test_inside_a_scan_step():
    xs, table = at.lmatrix("xs"), at.dvector("table")
    out, _ = aesara.scan(lambda k, acc, t: acc + at.sum(t[k]), sequences=[xs],
                         outputs_info=[at.as_tensor_variable(np.float64(0))], non_sequences=[table])
    f = aesara.function([xs, table], out[-1])
    assert_close(f(np.array([[0, 2], [1, 1]]), np.array([1., 2., 4.])), np.array(9.))


def test_compiles_for_cuda(tmp_path):
    x, i = at.fmatrix("x"), at.lvector("i")
    outs = [x[i], at.inc_subtensor(x[i], 1.0), x[None, ..., 0]]
    assert aesara.compile([x, i], outs, name="indexing", target="cuda", out_dir=tmp_path) is not None
