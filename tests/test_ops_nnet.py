"""The nnet functions (ops/nnet.py) against numpy/scipy: values in float32/float64,
stability for large |x|, 0-size inputs, gradients against float64 finite differences,
inside a scan step, bad input, and a cuda compile."""
import numpy as np
import pytest
import scipy.special as sp

import scanaot as aesara
import scanaot.tensor as at
from conftest import check_grads
from test_ops_elemwise import TOL


def _softplus(v):
    return np.logaddexp(0, v)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_stability(dtype):
    x = at.tensor(dtype, shape=(None, None), name="x")
    f = aesara.function([x], [at.softplus(x), at.relu(x), at.relu(x, 0.1), at.softmax(x), at.log_softmax(x, axis=0),
                              at.logsumexp(x), at.logsumexp(x, axis=1, keepdims=True), at.logsumexp(x, axis=0),
                              at.sigmoid(x), at.nnet.softmax(x, axis=0)])
    v = np.array([[-1000.0, 0.0, 3.0, 80.0], [1000.0, -2.0, 0.5, -90.0], [0.1, 0.2, 0.3, 0.4]], dtype=dtype)
    w = v.astype("float64")
    expected = [_softplus(w), np.maximum(w, 0), np.where(w > 0, w, 0.1 * w), sp.softmax(w, axis=-1),
                sp.log_softmax(w, axis=0), sp.logsumexp(w), sp.logsumexp(w, axis=1, keepdims=True),
                sp.logsumexp(w, axis=0), sp.expit(w), sp.softmax(w, axis=0)]
    for k, (got, e) in enumerate(zip(f(v), expected)):
        assert got.dtype == dtype and np.isfinite(got).all(), k
        np.testing.assert_allclose(got, e, **TOL[dtype], err_msg=str(k))


def test_all_minus_inf_and_empty():
    x = at.dmatrix("x")
    f = aesara.function([x], [at.logsumexp(x, axis=1), at.softplus(x), at.relu(x)])
    lse, sp_, re = f(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]))
    np.testing.assert_array_equal(lse, [-np.inf, 0.0])
    assert all(r.shape == (0, 3) for r in f(np.zeros((0, 3)))[1:])


def test_crossentropies():
    p, t, y = at.dmatrix("p"), at.dmatrix("t"), at.ivector("y")
    f = aesara.function([p, t, y], [at.binary_crossentropy(p, t), at.categorical_crossentropy(p, t),
                                    at.categorical_crossentropy(p, y)])
    pv = np.array([[0.2, 0.7, 0.1], [0.5, 0.5, 0.0]])
    tv = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    yv = np.array([1, 0], dtype="int32")
    bce, cce, cce_idx = f(pv, tv, yv)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(bce[0], -(tv[0] * np.log(pv[0]) + (1 - tv[0]) * np.log(1 - pv[0])))
    np.testing.assert_allclose(cce_idx, -np.log([0.7, 0.5]), rtol=1e-14)
    assert np.isnan(cce[1])  # 0 * log(0), as Aesara's true_dist * log(coding_dist)
    np.testing.assert_allclose(cce[0], -np.log(0.7), rtol=1e-14)


def test_gradients():
    x, p = at.dmatrix("x"), at.dmatrix("p")
    y = at.constant(np.array([2, 0], dtype="int64"))
    w = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -0.7]])
    cost = (at.softplus(x) * w).sum() + (at.softmax(x) * w).sum() + (at.log_softmax(x, axis=0) * w).sum() \
        + at.logsumexp(x * w) + (at.logsumexp(x, axis=1) * [1.0, 2.0]).sum() + (at.relu(x, 0.2) * w).sum() \
        + at.categorical_crossentropy(at.softmax(p), y).sum() + at.binary_crossentropy(at.sigmoid(p), 0.3).sum()
    check_grads([x, p], cost, [np.array([[0.3, -1.2, 2.0], [0.05, 0.9, -0.4]]), w], rtol=1e-6)


def test_softplus_gradient_at_zero_and_far_out():
    x = at.dvector("x")
    g = aesara.function([x], aesara.grad(at.softplus(x).sum(), x))
    np.testing.assert_allclose(g(np.array([0.0, 800.0, -800.0])), [0.5, 1.0, 0.0])


def test_in_a_scan_step():
    seq = at.dmatrix("seq")

    def step(row, acc):
        return acc + at.logsumexp(row) - at.log_softmax(row)[0]

    outs, _ = aesara.scan(step, sequences=[seq], outputs_info=[at.as_tensor_variable(np.float64(0))])
    v = np.array([[0.1, 2.0, -1.0], [3.0, 0.5, 0.0]])
    f = aesara.function([seq], outs[-1])
    expected = sum(sp.logsumexp(r) - sp.log_softmax(r)[0] for r in v)
    np.testing.assert_allclose(f(v), expected, rtol=1e-12)
    check_grads([seq], outs[-1], [v])


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="class indices"):
        at.categorical_crossentropy(at.dmatrix(), at.dvector())
    with pytest.raises(TypeError, match="softmax: x must have at least one dimension"):
        at.softmax(at.dscalar())
    with pytest.raises(TypeError, match="axis must be"):
        at.logsumexp(at.dvector(), axis="rows")


def test_compiles_for_cuda(tmp_path):
    x = at.fmatrix("x")
    art = aesara.compile([x], [at.softmax(x), at.softplus(x), at.logsumexp(x, axis=1)], name="nnet_ops",
                         target="cuda", out_dir=tmp_path)
    assert art.manifest["target"]["device_code"]["kernels"] >= 1
