"""merge-shared-operand-dots (aot/scan/rewrites.py): the four-matmul LSTM compiles to
the merged-weight loop, with the same numbers."""
from __future__ import annotations

import numpy as np

import scanaot as aesara
import scanaot.tensor as at
from scanaot.ops.linalg import Dot


def _dots_in_step(outputs) -> int:
    """How many products the (first) scan's step graph holds."""
    from scanaot.graph.basic import toposort
    from scanaot.scan.op import ScanOp
    scan_node = next(n for n in toposort(outputs) if isinstance(n.op, ScanOp))
    return sum(isinstance(n.op, Dot) for n in toposort(scan_node.op.inner_outputs))


def _lstm(merged: bool, kind: str = "f"):
    tensor3, matrix, matrices = (getattr(at, kind + name) for name in ("tensor3", "matrix", "matrices"))
    x, h0, c0 = tensor3("x"), matrix("h0"), matrix("c0")
    if merged:
        W, U = matrices("W", "U")
        params = [W, U]

        def gates(x_t, h, W, U):
            z = at.dot(x_t, W) + at.dot(h, U)
            n = h.shape[1]
            return z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    else:
        params = [*matrices("Wi", "Wf", "Wo", "Wg"), *matrices("Ui", "Uf", "Uo", "Ug")]

        def gates(x_t, h, *p):
            return tuple(at.dot(x_t, p[k]) + at.dot(h, p[4 + k]) for k in range(4))

    def step(x_t, h, c, *p):
        zi, zf, zo, zg = gates(x_t, h, *p)
        c_new = at.sigmoid(zf) * c + at.sigmoid(zi) * at.tanh(zg)
        return at.sigmoid(zo) * at.tanh(c_new), c_new

    (hs, _), _ = aesara.scan(step, sequences=x, outputs_info=[h0, c0], non_sequences=params)
    return [x, h0, c0, *params], hs


def test_the_four_matmul_lstm_becomes_the_merged_one():
    inputs4, hs4 = _lstm(merged=False)
    inputs1, hs1 = _lstm(merged=True)
    assert _dots_in_step([hs4]) == _dots_in_step([hs1]) == 2
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 3, 4, 5
    x, h0, c0 = (rng.normal(size=s).astype("f4") for s in ((T, B, I), (B, H), (B, H)))
    Ws = [rng.normal(size=(I, H)).astype("f4") * 0.4 for _ in range(4)]
    Us = [rng.normal(size=(H, H)).astype("f4") * 0.4 for _ in range(4)]
    four = aesara.function(inputs4, hs4)(x, h0, c0, *Ws, *Us)
    merged = aesara.function(inputs1, hs1)(x, h0, c0, np.concatenate(Ws, 1), np.concatenate(Us, 1))
    np.testing.assert_allclose(four, merged, rtol=1e-5, atol=1e-6)


def test_products_with_varying_or_different_operands_stay_apart():
    x, h0 = at.fmatrix("x"), at.fvector("h0")
    W, U = at.fmatrices("W", "U")
    # W's rows vary by step (a sequence): not invariant, so not merged with U
    hs, _ = aesara.scan(lambda w_t, h, U: at.tanh(at.dot(h, w_t[None, :].T * 1.0).sum() + at.dot(h, U)),
                        sequences=x, outputs_info=h0, non_sequences=U)
    assert _dots_in_step([hs]) == 2


def test_gradients_through_the_merged_products():
    inputs, hs = _lstm(merged=False, kind="d")
    cost = hs[-1].sum()
    grads = aesara.function(inputs, aesara.grad(cost, inputs[3:5]))
    rng = np.random.default_rng(1)
    T, B, I, H = 3, 2, 3, 4
    vals = [rng.normal(size=(T, B, I)), rng.normal(size=(B, H)), rng.normal(size=(B, H))]
    vals += [rng.normal(size=(I, H)) * 0.4 for _ in range(4)] + [rng.normal(size=(H, H)) * 0.4 for _ in range(4)]
    run = aesara.function(inputs, cost)
    eps, got = 1e-6, grads(*vals)
    for k in (3, 4):
        d = np.zeros_like(vals[k])
        d[0, 0] = eps
        up = [v + d if j == k else v for j, v in enumerate(vals)]
        down = [v - d if j == k else v for j, v in enumerate(vals)]
        fd = (run(*up) - run(*down)) / (2 * eps)
        np.testing.assert_allclose(got[k - 3][0, 0], fd, rtol=1e-6, atol=1e-9)

