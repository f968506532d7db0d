"""Join family (join, concatenate, stack, split, repeat, tile, roll, trace) against numpy,
bad input, gradients against finite differences, inside a scan, and a cuda compile."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import DTYPES, assert_close, sample
from test_ops_shape import numeric_grad


@pytest.mark.parametrize("dtype", DTYPES)
def test_join_family_matches_numpy(dtype, rng):
    x, v, n = at.tensor(dtype, (False, False), name="x"), at.tensor(dtype, (False,), name="v"), at.lscalar("n")
    outs = [at.concatenate([x, x], axis=1), at.join(-2, x, x[:1]), at.stack([v, v]), at.stack(v, v, axis=-1),
            *at.split(v, [1, n, 2], 3), at.repeat(x, 2, axis=1), at.repeat(x, n), x.repeat(3, axis=0),
            at.tile(v, (2, 2)), at.tile(x, (n,)), at.roll(v, n), at.roll(x, -1, axis=0), at.roll(x, 5), at.trace(x)]
    f = aesara.function([x, v, n], outs)
    xv, vv = sample(rng, (3, 4), dtype), sample(rng, (5,), dtype)
    expected = [np.concatenate([xv, xv], 1), np.concatenate([xv, xv[:1]], 0), np.stack([vv, vv]),
                np.stack([vv, vv], -1), vv[:1], vv[1:3], vv[3:], np.repeat(xv, 2, 1), np.repeat(xv, 2),
                np.repeat(xv, 3, 0), np.tile(vv, (2, 2)), np.tile(xv, 2), np.roll(vv, 2), np.roll(xv, -1, 0),
                np.roll(xv, 5), np.trace(xv)]
    for got, want in zip(f(xv, vv, 2), expected):
        assert_close(got, want.astype(got.dtype) if got.ndim == 0 else want)


def test_typing_and_upcast():
    assert at.concatenate([at.ivector(), at.dvector()]).dtype == "float64"
    assert at.stack([at.iscalar(), at.lscalar()]).broadcastable == (False,)
    assert at.stack([at.fmatrix(), at.fmatrix()], axis=1).ndim == 3
    s = at.lscalar("s")
    assert at.as_tensor_variable([s, s]).ndim == 1


def test_edge_shapes():
    x, n = at.dmatrix("x"), at.lscalar("n")
    f = aesara.function([x, n], [at.concatenate([x, x]), at.repeat(x, n, axis=1), at.tile(x, (n, 1)),
                                 at.roll(x, n, axis=1), *at.split(x, [0, 0], 2, axis=0)])
    xv = np.zeros((0, 3))
    for got, want in zip(f(xv, 2), [np.zeros((0, 3)), np.zeros((0, 6)), np.zeros((0, 3)), xv, xv, xv]):
        assert got.shape == want.shape
    assert f(np.zeros((0, 3)), 0)[1].shape == (0, 0)


def test_run_time_checks():
    x, y, n = at.dmatrix("x"), at.dmatrix("y"), at.lscalar("n")
    f = aesara.function([x, y], at.concatenate([x, y], axis=1))
    with pytest.raises(Exception, match="incompatible shapes"):
        f(np.zeros((2, 3)), np.zeros((3, 3)))
    g = aesara.function([x, n], at.split(x, [n, 1], 2)[0])
    with pytest.raises(Exception, match="incompatible shapes|negative shape"):
        g(np.zeros((4, 2)), 1)


def test_bad_input_names_the_argument():
    v, m = at.vector("v"), at.matrix("m")
    with pytest.raises(TypeError, match="tensor 1 is"):
        at.concatenate([v, m])
    with pytest.raises(TypeError, match="tensor_list must be a list"):
        at.concatenate(v)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        at.concatenate([v, v], axis=2)
    with pytest.raises(ValueError, match="n_splits=2 but splits_size has 3"):
        at.split(v, [1, 1, 1], 2)
    with pytest.raises(TypeError, match="repeats must be an integer scalar"):
        at.repeat(v, at.lvector())
    with pytest.raises(ValueError, match="repeats must be >= 0"):
        at.repeat(v, -1)
    with pytest.raises(TypeError, match="shift must be an integer scalar"):
        at.roll(v, 1.5)
    with pytest.raises(TypeError, match="scalars cannot be joined"):
        at.join(0, at.scalar(), at.scalar())


def test_gradients_against_finite_differences(rng):
    x, v = at.dmatrix("x"), at.dvector("v")
    w = at.constant(rng.standard_normal((3, 8)))
    cost = (at.sum(at.concatenate([x, x ** 2], axis=1) * w) + at.sum(at.split(v, [2, 3], 2)[1] ** 2)
            + at.sum(at.tile(v, (2,)) * at.arange(10.)) + at.sum(at.repeat(x, 2, axis=1) ** 2 * w)
            + at.sum(at.roll(x, 1, axis=1) * x[::-1]) + at.trace(x) ** 2 + at.sum(at.stack([v, v * 2]) ** 2))
    f = aesara.function([x, v], [cost, *aesara.grad(cost, [x, v])])
    xv, vv = rng.standard_normal((3, 4)), rng.standard_normal(5)
    np.testing.assert_allclose(f(xv, vv)[1], numeric_grad(lambda a: float(f(a, vv)[0]), xv), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f(xv, vv)[2], numeric_grad(lambda a: float(f(xv, a)[0]), vv), rtol=1e-6, atol=1e-6)


def test_concatenate_inside_a_scan(rng):
    seq = at.dmatrix("seq")

    def step(row, acc):
        return at.concatenate([acc[2:], row[:2]]) + at.roll(row, 1)

    out, _ = aesara.scan(step, sequences=[seq], outputs_info=[at.zeros((4,), "float64")])
    f = aesara.function([seq], out[-1])
    sv = rng.standard_normal((3, 4))
    acc = np.zeros(4)
    for r in sv:
        acc = np.concatenate([acc[2:], r[:2]]) + np.roll(r, 1)
    assert_close(f(sv), acc)


def test_join_family_compiles_for_cuda(tmp_path):
    x = at.fmatrix("x")
    y = at.concatenate([at.repeat(x, 2, axis=1), at.tile(x, (1, 2))]) + at.roll(at.stack([x, x]), 1).sum(axis=0)[:1]
    assert aesara.compile([x], y, name="join_ops", target="cuda", out_dir=tmp_path) is not None
