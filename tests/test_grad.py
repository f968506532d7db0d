"""Gradients against central finite differences in float64."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import check_grads
from scanaot.gradient import DisconnectedInputError, NullGradientError


rng = np.random.default_rng(42)


def rand(*shape):
    return rng.uniform(-0.9, 0.9, size=shape)


def test_elementwise_and_reductions():
    x, y = at.dmatrix("x"), at.dvector("y")
    cost = (at.tanh(x * y) + at.exp(x) / (1.5 + at.sin(y)) + at.sqrt(x * x + 1) * at.log(y * y + 2)).sum() \
        + at.maximum(x, 0.1).prod(axis=0).sum() + at.sigmoid(x).max(axis=1).sum() + (x ** 2).mean() \
        + at.switch(x > 0, x, -2 * x).sum() + at.abs(x - 0.2).sum()
    check_grads([x, y], cost, [rand(3, 4), rand(4)], [0, 1])


def test_dot_indexing_and_updates():
    A, v = at.dmatrix("A"), at.dvector("v")
    z = at.set_subtensor(A[1, ::-1], v) + at.inc_subtensor(A[:, 1:3], 2.0)
    cost = aesara.dot(aesara.dot(z, v), aesara.dot(v, z.T)) + A[::-1, -1].sum() + aesara.dot(v, v) \
        + aesara.dot(A.T, A)[0, 1] + z.dimshuffle(1, "x", 0).sum()
    check_grads([A, v], cost, [rand(4, 4), rand(4)], [0, 1])


def test_grad_of_power_wrt_A():
    k, A = at.iscalar("k"), at.dvector("A")
    result, _ = aesara.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    check_grads([A, k], result[-1].sum(), [rand(5) + 1.2, 4], [0])


def test_grad_wrt_sequence_initial_state_and_non_sequence():
    x, h0, W = at.dmatrix("x"), at.dvector("h0"), at.dmatrix("W")
    hs, _ = aesara.scan(lambda xt, h, W: at.tanh(aesara.dot(h, W) + xt), sequences=x, outputs_info=h0,
                        non_sequences=W)
    cost = (hs ** 2).sum() + hs[-1].sum()
    check_grads([x, h0, W], cost, [rand(6, 3), rand(3), rand(3, 3)], [0, 1, 2])


def test_grad_with_sequence_taps_and_multi_tap_initial_block():
    u, x0, w = at.dvector("u"), at.dvector("x0"), at.dscalar("w")
    xs, _ = aesara.scan(lambda um2, u0, up1, xm3, xm1, w: at.tanh(w * xm1 + 0.5 * xm3 + um2 * u0 - up1),
                        sequences=dict(input=u, taps=[-2, 0, 1]),
                        outputs_info=dict(initial=x0, taps=[-3, -1]), non_sequences=w)
    cost = (xs * at.arange(xs.shape[0])).sum()
    check_grads([u, x0, w], cost, [rand(10), rand(4), 0.7], [0, 1, 2])


def test_grad_free_variable_captured():
    x, c = at.dvector("x"), at.dvector("c")
    scale = c * 2
    out, _ = aesara.scan(lambda a, s: s * at.tanh(a * scale), sequences=x, outputs_info=at.zeros_like(c))
    check_grads([x, c], out[-1].sum(), [rand(5), rand(3)], [0, 1])


def test_grad_several_outputs_only_some_in_cost():
    x, a0, b0 = at.dvector("x"), at.dscalar("a0"), at.dscalar("b0")

    def step(xt, a, b):
        return a * xt + b, b * 0.9 + xt, xt * xt
    (A, B, C), _ = aesara.scan(step, sequences=x, outputs_info=[a0, b0, None])
    check_grads([x, a0, b0], A.sum(), [rand(6), 0.3, -0.2], [0, 1, 2])
    check_grads([x, a0, b0], A[-1] + C.sum(), [rand(6), 0.3, -0.2], [0, 1, 2])


def test_grad_go_backwards():
    x, h0 = at.dvector("x"), at.dscalar("h0")
    out, _ = aesara.scan(lambda a, b, h: at.sin(h) * a + b, sequences=dict(input=x, taps=[-1, 0]),
                         outputs_info=h0, go_backwards=True)
    check_grads([x, h0], (out * out).sum(), [rand(7), 0.4], [0, 1])


def test_grad_nested_scan():
    X, w = at.dmatrix("X"), at.dscalar("w")

    def outer(row, acc, w):
        inner, _ = aesara.scan(lambda v, s, w: s * w + at.tanh(v), sequences=row, outputs_info=acc,
                               non_sequences=w)
        return inner[-1]
    out, _ = aesara.scan(outer, sequences=X, outputs_info=at.as_tensor_variable(np.float64(0.1)),
                         non_sequences=w)
    check_grads([X, w], out.sum(), [rand(3, 4), 0.8], [0, 1])


def test_grad_until_with_state_and_sequence():
    """The case the maintained fork of Aesara gets wrong: until + a sequence + a state."""
    x, h0, lim = at.dvector("x"), at.dscalar("h0"), at.dscalar("lim")

    def step(xt, h, lim):
        new = h * 1.3 + xt * xt
        return new, aesara.scan.utils.until(new > lim)
    out, _ = aesara.scan(step, sequences=x, outputs_info=h0, non_sequences=lim)
    f = aesara.function([x, h0, lim], out)
    args = [np.array([0.5, 0.2, 0.9, 0.4, 0.3, 0.8]), 0.3, 2.0]
    n_run = len(f(*args))
    assert 1 < n_run < 6  # stops early: the gradient must cover exactly the steps that ran
    check_grads([x, h0, lim], (out * out).sum() + out[-1], args, [0, 1])


def test_truncate_gradient():
    x, h0 = at.dvector("x"), at.dscalar("h0")
    out, _ = aesara.scan(lambda xt, h: h * 0.5 + xt, sequences=x, outputs_info=h0, truncate_gradient=2)
    g_x, g_h0 = aesara.grad(out[-1], [x, h0])
    gx, gh = aesara.function([x, h0], [g_x, g_h0])(np.ones(5), 1.0)
    np.testing.assert_allclose(gx, [0, 0, 0, 0.5, 1.0])  # only the last two steps contribute
    assert gh == 0.0


def test_rnn_of_the_guide_all_weights():
    def one_step(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):
        x_t = at.tanh(aesara.dot(x_tm1, W) + aesara.dot(u_t, W_in_1) + aesara.dot(u_tm4, W_in_2)
                      + aesara.dot(y_tm1, W_feedback))
        return [x_t, aesara.dot(x_tm3, W_out)]
    mats = [at.dmatrix(n) for n in ("W", "W_in_1", "W_in_2", "W_feedback", "W_out")]
    u, x0, y0 = at.dmatrix("u"), at.dmatrix("x0"), at.dvector("y0")
    (xs, ys), _ = aesara.scan(one_step, sequences=dict(input=u, taps=[-4, 0]),
                              outputs_info=[dict(initial=x0, taps=[-3, -1]), y0], non_sequences=mats, strict=True)
    cost = (xs ** 2).sum() + (ys * ys).sum()
    n_in, n_hid, n_out = 2, 3, 2
    args = [rand(9, n_in), rand(3, n_hid), rand(n_out)] + [
        rand(*s) for s in [(n_hid, n_hid), (n_in, n_hid), (n_in, n_hid), (n_out, n_hid), (n_hid, n_out)]]
    check_grads([u, x0, y0, *mats], cost, args, list(range(8)))


def test_grad_errors():
    x = at.dvector("x")
    with pytest.raises(TypeError, match="must be a scalar"):
        aesara.grad(x * 2, x)
    with pytest.raises(DisconnectedInputError, match="with respect to 'y'"):
        aesara.grad(x.sum(), at.dvector("y"))
    with pytest.raises(TypeError, match="not a float"):
        aesara.grad(x.sum(), at.ivector("i"))
    assert aesara.grad(x.sum(), at.dvector("y"), disconnected_inputs="ignore") is not None


def test_missing_vjp_rule_names_the_op():
    from scanaot.graph.basic import Apply, Op, TensorType

    class Mystery(Op):
        def make_node(self, v):
            return Apply(self, [v], [TensorType("float64", v.broadcastable)])
    x = at.dvector("x")
    with pytest.raises(NullGradientError, match="no gradient \\(VJP\\) rule for op Mystery"):
        aesara.grad(Mystery()(x).sum(), x)


@pytest.mark.parametrize("every", [1, 3, 10])
def test_scan_checkpoints_matches_scan_and_its_gradient(every):
    x, h0, W = at.dmatrix("x"), at.dvector("h0"), at.dmatrix("W")

    def step(xt, h, W):
        return at.tanh(aesara.dot(h, W) + xt)
    plain, _ = aesara.scan(step, sequences=x, outputs_info=h0, non_sequences=W)
    ckpt, _ = aesara.scan_checkpoints(step, sequences=[x], outputs_info=[h0], non_sequences=[W],
                                      save_every_N=every)
    args = [rand(7, 3), rand(3), rand(3, 3)]
    f = aesara.function([x, h0, W], [plain[-1], ckpt[-1]])
    a, c = f(*args)
    np.testing.assert_allclose(c, a, rtol=1e-12)
    check_grads([x, h0, W], (ckpt[-1] ** 2).sum(), args, [0, 1, 2])


def test_scan_checkpoints_n_steps_shorter_than_sequences():
    x, h0 = at.dvector("x"), at.dscalar("h0")
    out, _ = aesara.scan_checkpoints(lambda xt, h: h * 0.9 + xt, sequences=x, outputs_info=h0,
                                     n_steps=5, save_every_N=2)
    f = aesara.function([x, h0], out[-1])
    xv = np.arange(9.0)
    h = 1.0
    for t in range(5):
        h = h * 0.9 + xv[t]
    np.testing.assert_allclose(f(xv, 1.0), h)
    check_grads([x, h0], out[-1] * 2, [rand(9), 0.5], [0, 1])


def test_scan_checkpoints_limits_are_clear_errors():
    x, h0 = at.dvector(), at.dscalar()
    with pytest.raises(ValueError, match="only \\[0\\]"):
        aesara.scan_checkpoints(lambda a, b, h: h, sequences=dict(input=x, taps=[-1, 0]), outputs_info=h0)
    with pytest.raises(ValueError, match="singly recurrent"):
        aesara.scan_checkpoints(lambda a, h, g: h, sequences=x, outputs_info=dict(initial=x, taps=[-2, -1]))
    with pytest.raises(ValueError, match="positive int"):
        aesara.scan_checkpoints(lambda a, h: h, sequences=x, outputs_info=h0, save_every_N=0)
