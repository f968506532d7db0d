"""Loop programs written the way Aesara users write them (only the two imports
changed), each checked against a plain numpy loop."""
from __future__ import annotations

import numpy as np

import scanaot as aesara
import scanaot.tensor as at

RNG = np.random.default_rng(7)


def test_lstm_merged_gates():
    x, h0, c0 = at.dtensor3("x"), at.dmatrix("h0"), at.dmatrix("c0")
    W, U = at.dmatrices("W", "U")
    b = at.dvector("b")
    n_hid = 3

    def step(x_t, h, c, W, U, b):
        gates = at.dot(x_t, W) + at.dot(h, U) + b
        i = at.nnet.sigmoid(gates[:, :n_hid])
        f = at.nnet.sigmoid(gates[:, n_hid:2 * n_hid])
        o = at.nnet.sigmoid(gates[:, 2 * n_hid:3 * n_hid])
        g = at.tanh(gates[:, 3 * n_hid:])
        c_new = f * c + i * g
        return o * at.tanh(c_new), c_new

    (hs, cs), _ = aesara.scan(step, sequences=x, outputs_info=[h0, c0], non_sequences=[W, U, b])
    f = aesara.function([x, h0, c0, W, U, b], hs[-1])
    xs, hv, cv = RNG.normal(size=(5, 2, 4)), RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    Wv, Uv, bv = RNG.normal(size=(4, 12)), RNG.normal(size=(3, 12)), RNG.normal(size=12)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, c = hv, cv
    for t in range(5):
        gates = xs[t] @ Wv + h @ Uv + bv
        i, fg, o, g = sig(gates[:, :3]), sig(gates[:, 3:6]), sig(gates[:, 6:9]), np.tanh(gates[:, 9:])
        c = fg * c + i * g
        h = o * np.tanh(c)
    np.testing.assert_allclose(f(xs, hv, cv, Wv, Uv, bv), h, rtol=1e-10)


def test_gru():
    x, h0 = at.dmatrix("x"), at.dvector("h0")
    Wz, Wr, Wh, Uz, Ur, Uh = at.dmatrices("Wz", "Wr", "Wh", "Uz", "Ur", "Uh")

    def step(x_t, h, Wz, Wr, Wh, Uz, Ur, Uh):
        z = at.nnet.sigmoid(at.dot(x_t, Wz) + at.dot(h, Uz))
        r = at.nnet.sigmoid(at.dot(x_t, Wr) + at.dot(h, Ur))
        h_tilde = at.tanh(at.dot(x_t, Wh) + at.dot(r * h, Uh))
        return (1 - z) * h + z * h_tilde

    hs, _ = aesara.scan(step, sequences=x, outputs_info=h0, non_sequences=[Wz, Wr, Wh, Uz, Ur, Uh])
    f = aesara.function([x, h0, Wz, Wr, Wh, Uz, Ur, Uh], hs)
    xs, hv = RNG.normal(size=(6, 3)), RNG.normal(size=4)
    Ws = [RNG.normal(size=(3, 4)) for _ in range(3)] + [RNG.normal(size=(4, 4)) for _ in range(3)]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, out = hv, []
    for t in range(6):
        z = sig(xs[t] @ Ws[0] + h @ Ws[3])
        r = sig(xs[t] @ Ws[1] + h @ Ws[4])
        h = (1 - z) * h + z * np.tanh(xs[t] @ Ws[2] + (r * h) @ Ws[5])
        out.append(h)
    np.testing.assert_allclose(f(xs, hv, *Ws), np.array(out), rtol=1e-10)


def test_hmm_forward_in_log_space():
    log_obs, log_A, log_pi = at.dmatrix("log_obs"), at.dmatrix("log_A"), at.dvector("log_pi")

    def step(lo_t, log_alpha, log_A):
        return lo_t + at.logsumexp(log_alpha[:, None] + log_A, axis=0)

    alphas, _ = aesara.scan(step, sequences=log_obs[1:], outputs_info=log_pi + log_obs[0],
                            non_sequences=log_A)
    loglik = at.logsumexp(alphas[-1])
    f = aesara.function([log_obs, log_A, log_pi], loglik)
    T, K = 20, 4
    A = RNG.dirichlet(np.ones(K), size=K)
    pi = RNG.dirichlet(np.ones(K))
    obs = RNG.uniform(0.1, 1.0, size=(T, K))
    alpha = pi * obs[0]
    for t in range(1, T):
        alpha = obs[t] * (alpha @ A)
    np.testing.assert_allclose(f(np.log(obs), np.log(A), np.log(pi)), np.log(alpha.sum()), rtol=1e-10)


def test_viterbi():
    log_obs, log_A, log_pi = at.dmatrix("log_obs"), at.dmatrix("log_A"), at.dvector("log_pi")

    def step(lo_t, delta, log_A):
        scores = delta[:, None] + log_A
        return lo_t + at.max(scores, axis=0), at.argmax(scores, axis=0)

    (deltas, back), _ = aesara.scan(step, sequences=log_obs[1:],
                                    outputs_info=[log_pi + log_obs[0], None], non_sequences=log_A)
    f = aesara.function([log_obs, log_A, log_pi], [deltas[-1], back])
    T, K = 12, 3
    A, pi, obs = RNG.dirichlet(np.ones(K), size=K), RNG.dirichlet(np.ones(K)), RNG.uniform(0.1, 1, (T, K))
    delta, backs = np.log(pi) + np.log(obs[0]), []
    for t in range(1, T):
        scores = delta[:, None] + np.log(A)
        backs.append(scores.argmax(axis=0))
        delta = np.log(obs[t]) + scores.max(axis=0)
    got_delta, got_back = f(np.log(obs), np.log(A), np.log(pi))
    np.testing.assert_allclose(got_delta, delta, rtol=1e-12)
    np.testing.assert_array_equal(got_back, np.array(backs))


def test_kalman_filter():
    ys = at.dmatrix("ys")
    F, H, Q, R = at.dmatrices("F", "H", "Q", "R")
    m0, P0 = at.dvector("m0"), at.dmatrix("P0")

    def step(y, m, P, F, H, Q, R):
        m_pred = at.dot(F, m)
        P_pred = at.dot(at.dot(F, P), F.T) + Q
        S = at.dot(at.dot(H, P_pred), H.T) + R
        K = at.dot(at.dot(P_pred, H.T), at.nlinalg.matrix_inverse(S))
        m_new = m_pred + at.dot(K, y - at.dot(H, m_pred))
        P_new = at.dot(at.eye(m.shape[0]) - at.dot(K, H), P_pred)
        return m_new, P_new

    (ms, Ps), _ = aesara.scan(step, sequences=ys, outputs_info=[m0, P0], non_sequences=[F, H, Q, R])
    f = aesara.function([ys, F, H, Q, R, m0, P0], ms)
    n = 2
    Fv, Hv = np.array([[1.0, 0.1], [0.0, 1.0]]), np.eye(n)
    Qv, Rv = 0.01 * np.eye(n), 0.1 * np.eye(n)
    yv = RNG.normal(size=(8, n))
    m, P, out = np.zeros(n), np.eye(n), []
    for y in yv:
        mp, Pp = Fv @ m, Fv @ P @ Fv.T + Qv
        K = Pp @ Hv.T @ np.linalg.inv(Hv @ Pp @ Hv.T + Rv)
        m, P = mp + K @ (y - Hv @ mp), (np.eye(n) - K @ Hv) @ Pp
        out.append(m)
    np.testing.assert_allclose(f(yv, Fv, Hv, Qv, Rv, np.zeros(n), np.eye(n)), np.array(out), rtol=1e-9)


def test_jacobian_by_scan():
    x = at.dvector("x")
    y = x ** 2 * at.sin(x).sum()
    J, _ = aesara.scan(lambda i, y, x: aesara.grad(y[i], x), sequences=at.arange(y.shape[0]),
                       non_sequences=[y, x])
    f = aesara.function([x], J)
    xv = RNG.normal(size=3)
    s = np.sin(xv).sum()
    expected = np.diag(2 * xv * s) + np.outer(xv ** 2, np.cos(xv))
    np.testing.assert_allclose(f(xv), expected, rtol=1e-10)
    np.testing.assert_allclose(aesara.function([x], aesara.gradient.jacobian(y, x))(xv), expected, rtol=1e-10)


def test_newton_with_until():
    x0, a = at.dvector("x0"), at.dvector("a")

    def step(x, a):
        fx = x ** 3 - a
        x_new = x - fx / (3 * x ** 2)
        return x_new, aesara.scan.utils.until(at.all(at.abs(x_new - x) < 1e-12))

    xs, _ = aesara.scan(step, outputs_info=x0, non_sequences=a, n_steps=100)
    f = aesara.function([x0, a], xs[-1])
    av = np.array([2.0, 27.0, 5.0])
    np.testing.assert_allclose(f(np.ones(3), av), np.cbrt(av), rtol=1e-12)


def test_matrix_power_recurrence():
    A = at.dmatrix("A")
    k = at.iscalar("k")
    powers, _ = aesara.scan(lambda P, A: at.dot(P, A), outputs_info=at.identity_like(A), non_sequences=A,
                            n_steps=k)
    f = aesara.function([A, k], powers[-1])
    Av = RNG.normal(size=(3, 3)) / 2
    np.testing.assert_allclose(f(Av, 5), np.linalg.matrix_power(Av, 5), rtol=1e-10)


def test_rk4():
    y0, h = at.dvector("y0"), at.dscalar("h")

    def f(y):
        return at.stack([y[1], -y[0]])

    def step(y, h):
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    ys, _ = aesara.scan(step, outputs_info=y0, non_sequences=h, n_steps=100)
    run = aesara.function([y0, h], ys[-1])
    np.testing.assert_allclose(run(np.array([1.0, 0.0]), 0.01), [np.cos(1.0), -np.sin(1.0)], rtol=1e-8)


def test_rbm_gibbs_sampling_in_function_and_in_a_compiled_library(tmp_path):
    """The Aesara tutorial's Gibbs sampler: shared weights, a random stream inside scan,
    its updates applied by function; the compiled library ships the same state, so its
    first call draws the same numbers as the function's first call."""
    import scanaot.runtime as rt
    from scanaot.tensor.random.utils import RandomStream

    W = aesara.shared(RNG.normal(size=(6, 4)) * 0.5, name="W")
    bvis, bhid = aesara.shared(np.zeros(6), name="bvis"), aesara.shared(np.zeros(4), name="bhid")
    trng = RandomStream(1234)

    def one_step(vsample):
        hmean = at.sigmoid(at.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = at.sigmoid(at.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=aesara.config.floatX)

    sample = at.dvector("sample")
    values, updates = aesara.scan(one_step, outputs_info=sample, n_steps=10)
    lib = rt.load(aesara.compile([sample], values[-1], name="gibbs", out_dir=tmp_path, updates=updates).library)
    gibbs10 = aesara.function([sample], values[-1], updates=updates)
    v0 = np.ones(6)
    first = gibbs10(v0)
    assert set(np.unique(first)) <= {0.0, 1.0} and first.dtype == np.float64
    state = lib.state()
    np.testing.assert_array_equal(lib.gibbs(v0, state=state), first)
    assert not all(np.array_equal(gibbs10(v0), first) for _ in range(5))  # the stream advances
    np.testing.assert_array_equal(lib.gibbs(v0, state=lib.state()), first)  # a fresh state starts over
