"""Shape ops (reshape, flatten, specify_shape, swapaxes, transpose, padding, squeeze,
expand_dims) against numpy, bad input, gradients, inside a scan, and a cuda compile."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import DTYPES, assert_close, sample


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


@pytest.mark.parametrize("dtype", DTYPES)
def test_shape_ops_match_numpy(dtype, rng):
    x = at.tensor(dtype, (False, False, False), name="x")
    n = at.lscalar("n")
    outs = [at.reshape(x, (n, -1)), at.reshape(x, x.shape[::-1] if False else (4, 3, 2)), at.flatten(x),
            at.flatten(x, 2), x.reshape((-1,)), at.swapaxes(x, 0, -1), at.transpose(x, (1, 2, 0)),
            x.transpose(2, 0, 1), at.shape_padleft(x, 2), at.shape_padright(x), at.shape_padaxis(x, -2),
            at.expand_dims(x, (0, 2)), at.squeeze(at.shape_padaxis(x, 1)), at.specify_shape(x, (2, None, 4)),
            at.reshape(x, at.stack([n, 12]))]
    f = aesara.function([x, n], outs)
    xv = sample(rng, (2, 3, 4), dtype)
    expected = [xv.reshape(2, -1), xv.reshape(4, 3, 2), xv.ravel(), xv.reshape(2, 12), xv.ravel(),
                np.swapaxes(xv, 0, -1), xv.transpose(1, 2, 0), xv.transpose(2, 0, 1), xv[None, None],
                xv[..., None], np.expand_dims(xv, -2), np.expand_dims(xv, (0, 2)), xv, xv, xv.reshape(2, 12)]
    for got, want in zip(f(xv, 2), expected):
        assert got.dtype == want.dtype
        assert_close(got, want)


def test_typing_and_static_shapes():
    x = at.matrix("x")
    assert at.reshape(x, (1, -1)).broadcastable == (True, False)
    assert at.flatten(at.shape_padleft(at.vector())).broadcastable == (False,)
    assert at.specify_shape(x, (1, None)).broadcastable == (True, False)
    assert at.squeeze(at.shape_padright(x)).broadcastable == (False, False)
    assert at.as_tensor is at.as_tensor_variable


def test_edge_shapes(rng):
    x, s = at.dmatrix("x"), at.dscalar("s")
    f = aesara.function([x, s], [at.reshape(x, (2, 2, 0)), at.flatten(x), at.reshape(s, (1, 1)),
                                 at.reshape(at.reshape(s, (1,)), ())])
    a, b, c, d = f(np.zeros((4, 0)), 3.0)
    assert a.shape == (2, 2, 0) and b.shape == (0,) and c.shape == (1, 1) and d.shape == ()
    assert c[0, 0] == 3.0 and d == 3.0


def test_run_time_size_checks():
    x, n = at.dmatrix("x"), at.lscalar("n")
    f = aesara.function([x, n], [at.reshape(x, (n, -1)), at.specify_shape(x, (n, None)), at.reshape(x, (1, -1))])
    f(np.zeros((2, 3)), 2)
    g = aesara.function([x], at.reshape(x, (0, -1)))  # numpy refuses a -1 among zero sizes too
    with pytest.raises(Exception, match="incompatible shapes"):
        g(np.zeros((0, 4)))
    for bad in (4, 0, -1):
        with pytest.raises(Exception, match="incompatible shapes|negative shape"):
            f(np.zeros((2, 3)), bad)


def test_bad_input_names_the_argument():
    x = at.matrix("x")
    with pytest.raises(ValueError, match="at most one -1"):
        at.reshape(x, (-1, -1))
    with pytest.raises(TypeError, match="newshape entry 1 must be an integer scalar"):
        at.reshape(x, (2, 1.5))
    with pytest.raises(TypeError, match="length is known"):
        at.reshape(x, at.lvector("s"))
    with pytest.raises(ValueError, match="ndim=3"):
        at.reshape(x, (2, 3), ndim=3)
    with pytest.raises(ValueError, match="flatten: ndim"):
        at.flatten(x, 3)
    with pytest.raises(ValueError, match="axis 0 .* not broadcastable"):
        at.squeeze(x, 0)
    with pytest.raises(ValueError, match="axis1 5 is out of range"):
        at.swapaxes(x, 5, 0)
    with pytest.raises(ValueError, match="not a permutation"):
        at.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="shape has 1 entries"):
        at.specify_shape(x, (2,))


def test_gradients_against_finite_differences(rng):
    x = at.dmatrix("x")
    w = rng.standard_normal((3, 4))
    cost = at.sum(at.reshape(x, (4, 3)) ** 2 * w.reshape(4, 3)) + at.sum(at.swapaxes(x, 0, 1) * w.T) \
        + at.sum(at.specify_shape(x, (3, 4)) ** 3) + at.sum(at.flatten(at.shape_padleft(x)) * w.ravel())
    f = aesara.function([x], [cost, aesara.grad(cost, x)])
    xv = rng.standard_normal((3, 4))
    expected = numeric_grad(lambda v: float(f(v)[0]), xv)
    np.testing.assert_allclose(f(xv)[1], expected, rtol=1e-6, atol=1e-6)


def test_reshape_inside_a_scan(rng):
    seq = at.dmatrix("seq")

    def step(row, acc):
        return acc + at.reshape(row, (2, 3)).T

    out, _ = aesara.scan(step, sequences=[seq], outputs_info=[at.zeros((3, 2), "float64")])
    f = aesara.function([seq], out[-1])
    sv = rng.standard_normal((4, 6))
    assert_close(f(sv), sum(r.reshape(2, 3).T for r in sv))


def test_shape_ops_compile_for_cuda(tmp_path):
    x = at.fmatrix("x")
    y = at.flatten(at.swapaxes(at.reshape(x, (-1, 2)), 0, 1)) * 2
    art = aesara.compile([x], y, name="shape_ops", target="cuda", out_dir=tmp_path)
    assert art is not None
