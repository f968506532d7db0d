"""scan semantics Aesara programs rely on: until loops with tensor states, taps in any
order, non-sequences the step differentiates through, broadcast patterns of states,
and gradients of gradients through scan. Checked against numpy."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from scanaot.scan import ScanError


def _fd_jacobian(f, x, eps=1e-6):
    """Central finite differences of a vector function, in float64."""
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e.flat[k] = eps
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))).ravel() / (2 * eps))
    return np.stack(cols, axis=-1)


def test_until_newton_on_a_vector():
    x0, a = at.dvector("x0"), at.dvector("a")

    def newton(x, a):
        new = x - (x * x - a) / (2 * x)
        return new, aesara.scan.until(at.sqrt(((new - x) ** 2).sum()) < 1e-12)
    out, _ = aesara.scan(newton, outputs_info=x0, non_sequences=a, n_steps=100)
    f = aesara.function([x0, a], [out, out[-1]])
    av = np.array([2.0, 3.0, 5.0, 7.0])
    stack, last = f(np.ones(4), av)
    x, ref = np.ones(4), []
    for _ in range(100):
        new = x - (x * x - av) / (2 * x)
        ref.append(new)
        if np.sqrt(((new - x) ** 2).sum()) < 1e-12:
            break
        x = new
    np.testing.assert_allclose(stack, np.array(ref), rtol=1e-12)
    np.testing.assert_allclose(last, np.sqrt(av), rtol=1e-12)


def test_until_power_iteration_on_a_matrix_with_a_per_step_output():
    A, Q0 = at.dmatrix("A"), at.dmatrix("Q0")

    def step(Q, A):
        Z = at.dot(A, Q)
        new = Z / at.sqrt((Z ** 2).sum(axis=0))
        return [new, (new * at.dot(A, new)).sum(axis=0)], aesara.scan.until(abs(new - Q).max() < 1e-10)
    (Qs, lams), _ = aesara.scan(step, outputs_info=[Q0, None], non_sequences=A, n_steps=1000)
    f = aesara.function([A, Q0], [Qs, lams])
    rng = np.random.default_rng(0)
    M = rng.standard_normal((5, 5))
    M = M @ M.T + np.diag([20.0, 0, 0, 0, 0])
    q, lam = f(M, np.ones((5, 1)))
    Q, ref_q, ref_l = np.ones((5, 1)), [], []
    for _ in range(1000):
        Z = M @ Q
        new = Z / np.sqrt((Z ** 2).sum(axis=0))
        ref_q.append(new)
        ref_l.append((new * (M @ new)).sum(axis=0))
        if np.abs(new - Q).max() < 1e-10:
            break
        Q = new
    assert q.shape == (len(ref_q), 5, 1) and lam.shape == (len(ref_q), 1)
    np.testing.assert_allclose(q, np.array(ref_q), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lam[-1, 0], np.linalg.eigvalsh(M)[-1], rtol=1e-9)


def test_until_map_without_states():
    x = at.dmatrix("x")
    out, _ = aesara.scan(lambda row: (row * 2, aesara.scan.until(row.sum() > 5)), sequences=x)
    xv = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(aesara.function([x], out)(xv), xv[:2] * 2)


def test_output_taps_in_any_order_keep_the_users_argument_order():
    x0 = at.dvector("x0")
    # the step receives x[t-1] then x[t-2], as listed
    out, _ = aesara.scan(lambda prev, prev2: prev - 2 * prev2,
                         outputs_info=dict(initial=x0, taps=[-1, -2]), n_steps=6)
    hist = [1.0, 3.0]
    for _ in range(6):
        hist.append(hist[-1] - 2 * hist[-2])
    np.testing.assert_allclose(aesara.function([x0], out)(np.array([1.0, 3.0])), hist[2:])


def test_sequence_taps_in_any_order():
    s = at.dvector("s")
    out, _ = aesara.scan(lambda ahead, behind, now: ahead * 100 + behind * 10 + now,
                         sequences=dict(input=s, taps=[2, -1, 0]))
    sv = np.arange(1.0, 8.0)
    ref = [sv[t + 2] * 100 + sv[t - 1] * 10 + sv[t] for t in range(1, len(sv) - 2)]
    np.testing.assert_allclose(aesara.function([s], out)(sv), ref)


def test_repeated_taps_are_an_error():
    with pytest.raises(ScanError, match=r"sequences\[0\]: taps must be distinct"):
        aesara.scan(lambda a, b: a + b, sequences=dict(input=at.dvector(), taps=[0, 0]))
    with pytest.raises(ScanError, match=r"outputs_info\[0\]: taps must be distinct"):
        aesara.scan(lambda a, b: a + b, outputs_info=dict(initial=at.dvector(), taps=[-1, -1]), n_steps=2)


def test_jacobian_as_in_the_tutorial():
    x = at.dvector("x")
    y = x ** 2 * at.sin(x).sum()
    J, _ = aesara.scan(lambda i, y, x: aesara.grad(y[i], x), sequences=at.arange(y.shape[0]),
                       non_sequences=[y, x])
    f = aesara.function([x], J)
    xv = np.array([0.3, 1.2, -0.7, 2.0])
    np.testing.assert_allclose(f(xv), _fd_jacobian(lambda v: v ** 2 * np.sin(v).sum(), xv), rtol=1e-6, atol=1e-8)


def test_non_sequence_given_twice_and_as_a_constant():
    x = at.dvector("x")
    out, _ = aesara.scan(lambda t, a, b, c: t * a + b * c, sequences=x, non_sequences=[x.sum(), x.sum(), 2.0])
    xv = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(aesara.function([x], out)(xv), xv * 6 + 12)


def test_broadcast_pattern_mismatch_names_output_and_patterns():
    v, s0 = at.dvector("v"), at.tensor("float64", shape=(1,), name="s0")
    with pytest.raises(ScanError, match=r"output 0 of <lambda>.*\(False,\).*\(True,\)"):
        aesara.scan(lambda s, v: s + v, outputs_info=s0, non_sequences=v, n_steps=3)


def test_broadcastable_step_output_fits_a_state_of_any_length():
    s0 = at.dvector("s0")
    out, _ = aesara.scan(lambda s: s + s.sum().dimshuffle("x"), outputs_info=s0, n_steps=2)
    s = np.array([1.0, 2.0])
    ref = []
    for _ in range(2):
        s = s + s.sum()
        ref.append(s)
    np.testing.assert_allclose(aesara.function([s0], out)(np.array([1.0, 2.0])), ref)


def _rnn_cost():
    """A loop whose gradient is a reversed scan: the cost, its inputs and sample values."""
    x, W, u = at.dvector("x"), at.dmatrix("W"), at.dmatrix("u")

    def step(u_t, h, W, x):
        return at.tanh(at.dot(W, h) * x + u_t)
    hs, _ = aesara.scan(step, sequences=u, outputs_info=x, non_sequences=[W, x])
    rng = np.random.default_rng(1)
    values = [rng.standard_normal(3) * 0.5, rng.standard_normal((3, 3)) * 0.4, rng.standard_normal((4, 3)) * 0.3]
    return (hs ** 2).sum() + hs[-1].sum(), [x, W, u], values


def test_hessian_vector_product_through_scan():
    cost, (x, W, u), (xv, Wv, uv) = _rnn_cost()
    v = at.dvector("v")
    g = aesara.grad(cost, x)
    hv = aesara.grad((g * v).sum(), x)
    grad_f = aesara.function([x, W, u], g)
    hv_f = aesara.function([x, W, u, v], hv)
    vv = np.array([0.3, -1.0, 0.5])
    eps = 1e-6
    ref = (grad_f(xv + eps * vv, Wv, uv) - grad_f(xv - eps * vv, Wv, uv)) / (2 * eps)
    np.testing.assert_allclose(hv_f(xv, Wv, uv, vv), ref, rtol=1e-6, atol=1e-8)


def test_hessian_via_scan_matches_finite_differences_of_the_gradient():
    cost, (x, W, u), (xv, Wv, uv) = _rnn_cost()
    g = aesara.grad(cost, x)
    H, _ = aesara.scan(lambda i, g, x: aesara.grad(g[i], x), sequences=at.arange(g.shape[0]),
                       non_sequences=[g, x])
    grad_f = aesara.function([x, W, u], g)
    H_f = aesara.function([x, W, u], H)
    ref = _fd_jacobian(lambda xx: grad_f(xx, Wv, uv), xv)
    got = H_f(xv, Wv, uv)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got, got.T, rtol=1e-9, atol=1e-12)


def test_second_derivative_through_until_and_several_taps():
    x0, a = at.dvector("x0"), at.dscalar("a")

    def step(p2, p1, a):
        new = at.sin(p1 * a) + 0.5 * p2
        return new, aesara.scan.until(new.sum() > 50)
    out, _ = aesara.scan(step, outputs_info=dict(initial=x0, taps=[-2, -1]), non_sequences=a, n_steps=5)
    cost = (out ** 2).sum()
    ga = aesara.grad(cost, a)
    gaa = aesara.grad(ga, a)
    f_ga = aesara.function([x0, a], ga)
    f_gaa = aesara.function([x0, a], gaa)
    xv, av, eps = np.array([0.2, -0.4]), 0.7, 1e-6
    ref = (f_ga(xv, av + eps) - f_ga(xv, av - eps)) / (2 * eps)
    np.testing.assert_allclose(f_gaa(xv, av), ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("steps", [0, 3])
def test_hessian_vector_product_after_zero_steps(steps):
    x, v, n = at.dvector("x"), at.dvector("v"), at.iscalar("n")
    hs, _ = aesara.scan(lambda h, x: at.sin(h) * x, outputs_info=x, non_sequences=x, n_steps=n)
    g = aesara.grad((hs ** 2).sum() + (x ** 3).sum(), x)
    hv_f = aesara.function([x, v, n], aesara.grad((g * v).sum(), x))
    grad_f = aesara.function([x, n], g)
    xv, vv, eps = np.array([0.4, -0.9]), np.array([1.0, 2.0]), 1e-6
    ref = (grad_f(xv + eps * vv, steps) - grad_f(xv - eps * vv, steps)) / (2 * eps)
    np.testing.assert_allclose(hv_f(xv, vv, steps), ref, rtol=1e-6, atol=1e-8)
