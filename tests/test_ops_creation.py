"""Creation ops (eye, identity_like, full, full_like, fill/second, linspace, tril, triu,
diag, diagonal, zeros/ones from a shape vector) against numpy, bad input, gradients,
inside a scan, and a cuda compile."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import DTYPES, assert_close, sample
from test_ops_shape import numeric_grad


@pytest.mark.parametrize("dtype", DTYPES)
def test_creation_matches_numpy(dtype, rng):
    x, v, n = at.tensor(dtype, (False, False), name="x"), at.tensor(dtype, (False,), name="v"), at.lscalar("n")
    outs = [at.eye(n, 4, 1, dtype), at.eye(3, dtype=dtype), at.identity_like(x), at.full((2, n), 7, dtype),
            at.full_like(x, 3), at.fill(x, v[:4]), at.second(v, 2), at.tril(x), at.triu(x, 1), at.tril(x, -1),
            at.diag(v), at.diag(v, -2), at.diag(x), at.diagonal(x, 1), x.diagonal(-1), at.zeros(x.shape, dtype),
            at.ones(x.T.shape, dtype)]
    f = aesara.function([x, v, n], outs)
    xv, vv = sample(rng, (3, 4), dtype), sample(rng, (5,), dtype)
    expected = [np.eye(2, 4, 1), np.eye(3), np.eye(3, 4), np.full((2, 2), 7), np.full_like(xv, 3),
                np.broadcast_to(vv[:4], (3, 4)), np.full(5, 2), np.tril(xv), np.triu(xv, 1), np.tril(xv, -1),
                np.diag(vv), np.diag(vv, -2), np.diag(xv), np.diagonal(xv, 1), np.diagonal(xv, -1),
                np.zeros((3, 4)), np.ones((4, 3))]
    for i, (got, want) in enumerate(zip(f(xv, vv, 2), expected)):
        assert got.dtype == (np.int8 if i == 6 else np.dtype(dtype)), (i, got.dtype)  # second(v, 2): 2's dtype
        assert_close(got, np.asarray(want).astype(got.dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linspace(dtype):
    n = at.lscalar("n")
    f = aesara.function([n], [at.linspace(at.constant(0.5, dtype=dtype), 2, n), at.linspace(1, 3, 1),
                              at.linspace(0, 1, 0)])
    a, b, c = f(7)
    assert_close(a, np.linspace(0.5, 2, 7, dtype=dtype))
    assert_close(b, np.linspace(1, 3, 1).astype(b.dtype)) and c.shape == (0,)


def test_edge_shapes():
    v, x, n = at.dvector("v"), at.dmatrix("x"), at.lscalar("n")
    f = aesara.function([v, x, n], [at.diag(v), at.diag(v, 2), at.diag(x), at.diagonal(x, 9), at.eye(n),
                                    at.tril(x), at.full((n, 0), 1.0)])
    got = f(np.zeros(0), np.zeros((0, 3)), 0)
    assert [g.shape for g in got] == [(0, 0), (2, 2), (0,), (0,), (0, 0), (0, 3), (0, 0)]
    assert (got[1] == 0).all()
    with pytest.raises(Exception, match="allocat|negative"):
        f(np.zeros(0), np.zeros((0, 3)), -1)


def test_typing():
    assert at.eye(3).dtype == aesara.config.floatX and at.eye(3, dtype="int32").dtype == "int32"
    assert at.second(at.dmatrix(), at.iscalar()).dtype == "int32"
    assert at.full_like(at.fmatrix(), 2).dtype == "float32"
    assert at.linspace(0, 1, 5).dtype.startswith("float")


def test_bad_input_names_the_argument():
    v = at.vector("v")
    with pytest.raises(TypeError, match="eye: n must be an integer scalar"):
        at.eye(2.5)
    with pytest.raises(TypeError, match="full: shape entry 0 must be an integer scalar"):
        at.full((1.5,), 1)
    with pytest.raises(TypeError, match="fill_value must be a scalar"):
        at.full((2,), v)
    with pytest.raises(TypeError, match="tril: x must have at least 2 dims"):
        at.tril(v)
    with pytest.raises(ValueError, match="diag: v must be a vector or a matrix"):
        at.diag(at.tensor3())
    with pytest.raises(TypeError, match="identity_like: x must be a matrix"):
        at.identity_like(v)
    with pytest.raises(TypeError, match="linspace: num must be an integer scalar"):
        at.linspace(0, 1, 2.5)
    with pytest.raises(TypeError, match="length is known"):
        at.zeros(at.lvector("s"))


def test_gradients_against_finite_differences(rng):
    x, v, s = at.dmatrix("x"), at.dvector("v"), at.dscalar("s")
    cost = (at.sum(at.tril(x) ** 2) + at.sum(at.triu(x, 1) * x) + at.sum(at.diag(v, 1) * at.arange(36.).reshape((6, 6)))
            + at.sum(at.diag(x) ** 3) + at.sum(at.fill(x, v[:4] * s)) + at.sum(at.linspace(s, 2 * s, 5) ** 2))
    f = aesara.function([x, v, s], [cost, *aesara.grad(cost, [x, v, s])])
    xv, vv, sv = rng.standard_normal((3, 4)), rng.standard_normal(5), 0.7
    _, gx, gv, gs = f(xv, vv, sv)
    np.testing.assert_allclose(gx, numeric_grad(lambda a: float(f(a, vv, sv)[0]), xv), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gv, numeric_grad(lambda a: float(f(xv, a, sv)[0]), vv), rtol=1e-6, atol=1e-6)
    fd = (f(xv, vv, sv + 1e-6)[0] - f(xv, vv, sv - 1e-6)[0]) / 2e-6
    np.testing.assert_allclose(gs, fd, rtol=1e-6, atol=1e-6)


def test_eye_inside_a_scan(rng):
    seq = at.dmatrix("seq")

    def step(row, acc):
        return at.dot(acc, at.eye(3, dtype="float64") + at.diag(row) * 0.1)

    out, _ = aesara.scan(step, sequences=[seq], outputs_info=[at.identity_like(at.zeros((3, 3), "float64"))])
    f = aesara.function([seq], out[-1])
    sv = rng.standard_normal((4, 3))
    acc = np.eye(3)
    for r in sv:
        acc = acc @ (np.eye(3) + np.diag(r) * 0.1)
    assert_close(f(sv), acc)


def test_creation_compiles_for_cuda(tmp_path):
    x = at.fmatrix("x")
    y = at.tril(x) + at.eye(x.shape[0], x.shape[1], 1, "float32") + at.diag(at.diagonal(x))[:, :1]
    assert aesara.compile([x], y, name="creation_ops", target="cuda", out_dir=tmp_path) is not None
