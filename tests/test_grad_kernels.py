"""Gradient kernels exported by the .so (`grad_wrt`), against finite differences in float64."""
import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from conftest import numeric_grad
from test_grad import rand


@pytest.fixture(scope="module")
def rnn_lib(tmp_path_factory):
    x, h0, W, U, b = at.dmatrix("x"), at.dvector("h0"), at.dmatrix("W"), at.dmatrix("U"), at.dvector("b")
    hs, _ = scanaot.scan(lambda xt, h, W, U, b: at.tanh(scanaot.dot(h, W) + scanaot.dot(xt, U) + b),
                         sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    art = scanaot.compile([x, h0, W, U, b], [hs, hs[-1].sum()], name="rnn", grad_wrt=[W, U, b, h0, x],
                          out_dir=tmp_path_factory.mktemp("grad"))
    return rt.load(art.library)


def test_vjp_kernel_matches_finite_differences(rnn_lib):
    args = [rand(6, 2), rand(3), rand(3, 3), rand(2, 3), rand(3)]
    hs, total = rnn_lib.rnn(*args)
    cot_hs = rand(*hs.shape)
    grads = rnn_lib.rnn.vjp(*args, cotangents=[cot_hs, np.float64(2.0)])

    def scalar(*a):
        hs, total = rnn_lib.rnn(*a)
        return (hs * cot_hs).sum() + 2.0 * total

    for g, position in zip(grads, [2, 3, 4, 1, 0]):
        np.testing.assert_allclose(g, numeric_grad(scalar, args, position), rtol=1e-6, atol=1e-8)


def test_vjp_cotangents_by_name_and_errors(rnn_lib):
    args = [rand(4, 2), rand(3), rand(3, 3), rand(2, 3), rand(3)]
    by_list = rnn_lib.rnn.vjp(*args, cotangents=[np.ones((4, 3)), np.float64(1)])
    by_name = rnn_lib.rnn.vjp(*args, cotangents={"out0": np.ones((4, 3)), "out1": np.float64(1)})
    for a, c in zip(by_list, by_name):
        np.testing.assert_array_equal(a, c)
    with pytest.raises(rt.ArgumentError, match="expected 2 cotangent"):
        rnn_lib.rnn.vjp(*args, cotangents=[np.ones((4, 3))])
    with pytest.raises(rt.ArgumentError, match="cotangents= is required"):
        rnn_lib.rnn.vjp(*args)
    with pytest.raises(rt.ShapeError):
        rnn_lib.rnn.vjp(*args, cotangents=[np.ones((5, 3)), np.float64(1)])


def test_manifest_and_header_declare_the_vjp(rnn_lib):
    spec = rnn_lib.manifest["functions"][0]
    assert spec["vjp"] == {"function": "rnn_vjp", "wrt": ["W", "U", "b", "h0", "x"],
                           "cotangents": ["cot_out0", "cot_out1"]}
    header = (rnn_lib.path.parent / "rnn.h").read_text()
    assert "scanaot_rnn__rnn_vjp(" in header


def test_power_gradient_kernel(tmp_path):
    k, A = at.iscalar("k"), at.dvector("A")
    result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    lib = rt.load(scanaot.compile([A, k], result[-1], name="power", grad_wrt=[A], out_dir=tmp_path).library)
    a = rand(4) + 1.5
    g = lib.power.vjp(a, 5, cotangents=np.ones(4))
    np.testing.assert_allclose(g, 5 * a ** 4, rtol=1e-12)
    no_grad = rt.load(scanaot.compile([A, k], result[-1], name="plain", out_dir=tmp_path).library)
    with pytest.raises(rt.ArgumentError, match="no gradient kernel"):
        no_grad.plain.vjp(a, 5, cotangents=np.ones(4))


def test_grad_wrt_must_be_float_inputs(tmp_path):
    k, A = at.iscalar("k"), at.dvector("A")
    with pytest.raises(TypeError, match="not a float input"):
        scanaot.compile([A, k], A * k, name="f", grad_wrt=[k], out_dir=tmp_path)
    with pytest.raises(ValueError, match="neither one of the inputs nor a shared variable"):
        scanaot.compile([A], A * 2, name="f", grad_wrt=[at.dvector("B")], out_dir=tmp_path)
