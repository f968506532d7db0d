"""The benchmark workloads (W1-W11) and their implementations: scanaot and its peers.

Each implementation is built once (compile excluded from timings) and checked
against a numpy reference before it is timed. Peers that are not installed are
skipped: JAX (`jax`), PyTensor (`pytensor`, numba mode), and hand-written C (needs
`gcc`). `SCANAOT_BENCH_SIZE=short` gives tiny sizes for CI's correctness run.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

PEERS_C = Path(__file__).parent / "peers" / "workloads.c"
PEERS_TANH_H = Path(__file__).parent / "peers" / "tanh_rational.h"  # included by both C peers

# rnn, lstm, gru: (T, batch, hidden, input); hmm: (T, states)
FULL = {"power": (1000, 10**5), "triangular": 10**6, "polynomial": 10**5, "rnn": (1000, 32, 256, 64),
        "until": 45.0, "call": 4, "lstm": (200, 32, 256, 64), "gru": (200, 32, 256, 64), "hmm": (1000, 16)}
SHORT = {"power": (16, 50), "triangular": 1000, "polynomial": 100, "rnn": (12, 4, 16, 8),
         "until": 45.0, "call": 4, "lstm": (7, 3, 8, 5), "gru": (7, 3, 8, 5), "hmm": (20, 4)}


def sizes() -> dict:
    return SHORT if os.environ.get("SCANAOT_BENCH_SIZE", "full") == "short" else FULL


class Unavailable(RuntimeError):
    """A peer that is not installed here."""


def _count(n: int) -> str:
    """10**6 for a large power of ten (as the docs write sizes), else the plain number."""
    digits = str(n)
    if n >= 10**4 and digits.strip("0") == "1":
        return f"10**{len(digits) - 1}"
    return digits


@dataclass
class Workload:
    name: str
    title_template: str  # may name a size: "{triangular}" is sizes()["triangular"]
    data: Callable[[], tuple]
    reference: Callable[..., Any]
    implementations: dict[str, Callable[[], Callable]]
    rtol: float = 1e-4

    @property
    def title(self) -> str:
        """The label in tables and plots, with the sizes of this run (short or full), never
        the full sizes on a short run."""
        return self.title_template.format(**{k: _count(v) for k, v in sizes().items() if isinstance(v, int)})


# ---------------------------------------------------------------- data and references
def power_data():
    n, k = sizes()["power"]
    return np.linspace(0.99999, 1.00001, n, dtype="float32"), k


def power_ref(a, k):
    return (a.astype("float64") ** k).astype("float32")


def triangular_data():
    return (sizes()["triangular"],)


def triangular_ref(n):
    return np.cumsum(np.arange(n, dtype="int64")).astype("int32")


def polynomial_data():
    n = sizes()["polynomial"]
    return np.random.default_rng(0).uniform(-1, 1, n).astype("float32"), np.float32(0.999)


def polynomial_ref(c, x):
    return float(np.sum(c.astype("float64") * np.float64(x) ** np.arange(len(c))))


def rnn_data():
    T, B, H, I = sizes()["rnn"]
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T, B, I)).astype("float32") * 0.1, np.zeros((B, H), "float32"),
            (rng.standard_normal((H, H)) / np.sqrt(H)).astype("float32"),
            (rng.standard_normal((I, H)) / np.sqrt(I)).astype("float32"), np.zeros(H, "float32"))


def rnn_ref(x, h0, W, U, b):
    h, out = h0.astype("float64"), []
    for t in range(x.shape[0]):
        h = np.tanh(h @ W + x[t] @ U + b)
        out.append(h)
    return np.array(out, dtype="float32")


def rnn_grad_data():
    x, h0, W, U, b = rnn_data()
    g = np.random.default_rng(1).standard_normal((x.shape[0],) + h0.shape).astype("float32")
    return x, h0, W, U, b, g


def rnn_grad_ref(x, h0, W, U, b, g):
    hs = rnn_ref(x, h0, W, U, b).astype("float64")
    gW, gU, gb = np.zeros(W.shape), np.zeros(U.shape), np.zeros(b.shape)
    dh = np.zeros(h0.shape)
    for t in range(x.shape[0] - 1, -1, -1):
        dz = (dh + g[t]) * (1 - hs[t] ** 2)
        hp = hs[t - 1] if t else h0
        gW += hp.T @ dz
        gU += x[t].T @ dz
        gb += dz.sum(0)
        dh = dz @ W.T
    return [a.astype("float32") for a in (gW, gU, gb, dh)]


def until_data():
    return (np.float32(sizes()["until"]),)


def until_ref(m):
    out, p = [], 1.0
    while True:
        p *= 2
        out.append(p)
        if p > m:
            break
    return np.array(out, dtype="float32")


def call_data():
    return (np.arange(sizes()["call"], dtype="float32"),)


def call_ref(v):
    return v * 2


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_data():
    """x, h0, c0 and the merged weights: W (input, 4H), U (H, 4H), b (4H), gates in the order
    i, f, o, g (the four-matmul form takes the four column blocks)."""
    T, B, H, I = sizes()["lstm"]
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T, B, I)).astype("float32"),
            (rng.standard_normal((B, H)) * 0.1).astype("float32"), (rng.standard_normal((B, H)) * 0.1).astype("float32"),
            (rng.standard_normal((I, 4 * H)) / np.sqrt(I)).astype("float32"),
            (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype("float32"),
            (rng.standard_normal(4 * H) * 0.1).astype("float32"))


def lstm_ref(x, h0, c0, W, U, b):
    """All hidden states h_1..h_T, float64 inside."""
    H = h0.shape[1]
    h, c, out = h0.astype("float64"), c0.astype("float64"), []
    for t in range(x.shape[0]):
        z = x[t] @ W.astype("float64") + h @ U.astype("float64") + b
        i, f, o, g = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 2 * H:3 * H]), np.tanh(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out, dtype="float32")


def gru_data():
    """x, h0 and the weights stacked per gate (z, r, candidate) as in the Theano GRU tutorials:
    W (3, input, H), U (3, H, H), b (3, H)."""
    T, B, H, I = sizes()["gru"]
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T, B, I)).astype("float32"), (rng.standard_normal((B, H)) * 0.1).astype("float32"),
            (rng.standard_normal((3, I, H)) / np.sqrt(I)).astype("float32"),
            (rng.standard_normal((3, H, H)) / np.sqrt(H)).astype("float32"),
            (rng.standard_normal((3, H)) * 0.1).astype("float32"))


def _gru_forward(x, h0, W, U, b, dtype):
    """h_1..h_T and what the backward pass needs (z, r, candidate per step)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    x, h, W, U, b = (a.astype(dtype) for a in (x, h0, W, U, b))
    xp = (x.reshape(T * B, -1) @ np.concatenate(list(W), axis=1) + b.reshape(-1)).reshape(T, B, 3 * H)
    Uzr = np.concatenate([U[0], U[1]], axis=1)
    hs, zs, rs, cs = (np.empty((T, B, H), dtype) for _ in range(4))
    for t in range(T):
        zr = _sigmoid(xp[t, :, :2 * H] + h @ Uzr)
        z, r = zr[:, :H], zr[:, H:]
        c = np.tanh(xp[t, :, 2 * H:] + (r * h) @ U[2])
        h = (1 - z) * c + z * h
        hs[t], zs[t], rs[t], cs[t] = h, z, r, c
    return hs, zs, rs, cs


def gru_ref(x, h0, W, U, b):
    return _gru_forward(x, h0, W, U, b, "float64")[0].astype("float32")


def gru_grad_data():
    x, h0, W, U, b = gru_data()
    g = np.random.default_rng(1).standard_normal((x.shape[0],) + h0.shape).astype("float32")
    return x, h0, W, U, b, g


def gru_bptt(x, h0, W, U, b, g, dtype="float32"):
    """Hand-written BPTT of sum(hs * g) for the GRU: gradients w.r.t. W, U, b, h0. The weight
    gradients are one GEMM each after the loop (the per-step pre-activation gradients are kept)."""
    T, B, I = x.shape
    H = h0.shape[1]
    hs, zs, rs, cs = _gru_forward(x, h0, W, U, b, dtype)
    x, h0, U, g = (a.astype(dtype) for a in (x, h0, U, g))
    Uzr_T = np.concatenate([U[0], U[1]], axis=1).T.copy()
    U2_T = U[2].T.copy()
    da = np.empty((T, B, 3 * H), dtype)  # d(pre-activation) of z, r, candidate
    rh = np.empty((T, B, H), dtype)      # r * h_{t-1}, the candidate's matmul input
    dh = np.zeros((B, H), dtype)
    for t in range(T - 1, -1, -1):
        hp = hs[t - 1] if t else h0
        z, r, c = zs[t], rs[t], cs[t]
        dh = dh + g[t]
        dac = dh * (1 - z) * (1 - c * c)
        drh = dac @ U2_T
        da[t, :, :H] = dh * (hp - c) * z * (1 - z)
        da[t, :, H:2 * H] = drh * hp * r * (1 - r)
        da[t, :, 2 * H:] = dac
        rh[t] = r * hp
        dh = dh * z + drh * r + da[t, :, :2 * H] @ Uzr_T
    hprev = np.concatenate([h0[None], hs[:-1]]).reshape(T * B, H)
    daf = da.reshape(T * B, 3 * H)
    gW = (x.reshape(T * B, I).T @ daf).reshape(I, 3, H).transpose(1, 0, 2)
    gU = np.stack([hprev.T @ daf[:, :H], hprev.T @ daf[:, H:2 * H], rh.reshape(T * B, H).T @ daf[:, 2 * H:]])
    gb = daf.sum(0).reshape(3, H)
    return [np.ascontiguousarray(a, dtype="float32") for a in (gW, gU, gb, dh)]


def gru_grad_ref(x, h0, W, U, b, g):
    return gru_bptt(x, h0, W, U, b, g, "float64")


def hmm_data():
    """log p(observation_t | state) for one observed sequence (T, S), log transition matrix
    log_A[i, j] = log p(j | i), log initial distribution."""
    T, S = sizes()["hmm"]
    rng = np.random.default_rng(0)
    A = rng.dirichlet(np.ones(S), size=S)
    return (np.log(rng.uniform(0.01, 1, (T, S))).astype("float32"), np.log(A).astype("float32"),
            np.log(rng.dirichlet(np.ones(S))).astype("float32"))


def _logsumexp0(z):
    m = z.max(0)
    return m + np.log(np.exp(z - m).sum(0))


def hmm_ref(log_obs, log_A, log_pi):
    """alpha_1..alpha_{T-1} (alpha_0 = log_pi + log_obs[0] is the initial state), float64."""
    alpha, log_A, out = (log_pi + log_obs[0]).astype("float64"), log_A.astype("float64"), []
    for t in range(1, log_obs.shape[0]):
        alpha = log_obs[t] + _logsumexp0(alpha[:, None] + log_A)
        out.append(alpha)
    return np.array(out, dtype="float32")


# ---------------------------------------------------------------- scanaot
def _scanaot(build: Callable, cpu: str | None, target: str = "cpu") -> Callable:
    import scanaot
    import scanaot.runtime as rt
    import tempfile
    name, inputs, outputs = build()
    out_dir = Path(tempfile.mkdtemp(prefix="scanaot-bench-"))
    art = scanaot.compile(inputs, outputs, name=name, out_dir=out_dir, cpu=cpu, target=target)
    try:
        return rt.load(art.library)[name]
    except rt.LibraryError as err:  # the cuda target on a machine without a GPU
        raise Unavailable(str(err)) from None


def scanaot_power():
    import scanaot
    import scanaot.tensor as at
    k, A = at.iscalar("k"), at.fvector("A")
    result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    return "power", [A, k], result[-1]


def scanaot_triangular():
    import scanaot
    import scanaot.tensor as at
    up_to = at.iscalar("up_to")
    seq = at.arange(up_to, dtype="int32")  # int32 as its peers (at.arange of ints is int64, as in Aesara)
    out, _ = scanaot.scan(lambda v, s: s + v, sequences=seq,
                          outputs_info=at.as_tensor_variable(np.asarray(0, seq.dtype)))
    return "triangular", [up_to], out


def scanaot_polynomial():
    import scanaot
    import scanaot.tensor as at
    c, x = at.fvector("coefficients"), at.fscalar("x")
    comps, _ = scanaot.scan(lambda ci, p, xv: ci * (xv ** p), sequences=[c, at.arange(sizes()["polynomial"])],
                            non_sequences=x)
    return "polynomial", [c, x], comps.sum()


def _rnn_graph():
    import scanaot
    import scanaot.tensor as at
    x, h0, W, U, b = at.ftensor3("x"), at.fmatrix("h0"), at.fmatrix("W"), at.fmatrix("U"), at.fvector("b")
    hs, _ = scanaot.scan(lambda xt, h, W, U, b: at.tanh(scanaot.dot(h, W) + scanaot.dot(xt, U) + b),
                         sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    return [x, h0, W, U, b], hs


def scanaot_rnn():
    inputs, hs = _rnn_graph()
    return "rnn", inputs, hs


def _bptt(name: str, graph: Callable) -> tuple:
    """The gradient of sum(hs * g) w.r.t. W, U, b and h0 of a recurrent `graph`."""
    import scanaot
    import scanaot.tensor as at
    inputs, hs = graph()
    x, h0, W, U, b = inputs
    g = at.ftensor3("g")
    return name, inputs + [g], scanaot.grad((hs * g).sum(), [W, U, b, h0])


def scanaot_rnn_grad():
    return _bptt("rnn_grad", _rnn_graph)


def scanaot_until():
    import scanaot
    import scanaot.tensor as at
    m = at.fscalar("max_value")
    values, _ = scanaot.scan(lambda p, m: (p * 2, scanaot.scan.utils.until(p * 2 > m)),
                             outputs_info=at.constant(np.float32(1)), non_sequences=m, n_steps=1024)
    return "until", [m], values


def scanaot_call():
    import scanaot
    import scanaot.tensor as at
    v = at.fvector("v")
    out, _ = scanaot.scan(lambda s: s * 2, outputs_info=v, n_steps=1)
    return "call", [v], out[-1]


# W8-W11 as Aesara users write them: `import scanaot as aesara`, float32 inputs named as such.
def scanaot_lstm():
    """LSTM with merged weights: one dot(x_t, W) and one dot(h, U) of width 4H, sliced into the
    gates (i, f, o, g); all hidden states out. H is a Python int, as in the Theano LSTM tutorial."""
    import scanaot as aesara
    import scanaot.tensor as at
    H = sizes()["lstm"][2]
    x, h0, c0 = at.ftensor3("x"), at.fmatrix("h0"), at.fmatrix("c0")
    W, U, b = at.fmatrix("W"), at.fmatrix("U"), at.fvector("b")

    def step(x_t, h, c, W, U, b):
        z = aesara.dot(x_t, W) + aesara.dot(h, U) + b
        i = at.nnet.sigmoid(z[:, :H])
        f = at.nnet.sigmoid(z[:, H:2 * H])
        o = at.nnet.sigmoid(z[:, 2 * H:3 * H])
        g = at.tanh(z[:, 3 * H:])
        c_new = f * c + i * g
        return o * at.tanh(c_new), c_new
    (hs, _), _ = aesara.scan(step, sequences=x, outputs_info=[h0, c0], non_sequences=[W, U, b])
    return "lstm", [x, h0, c0, W, U, b], hs


def scanaot_lstm_four_matmul():
    """The same LSTM with a weight matrix per gate: four dot(x_t, W_*) and four dot(h, U_*)."""
    import scanaot as aesara
    import scanaot.tensor as at
    x, h0, c0 = at.ftensor3("x"), at.fmatrix("h0"), at.fmatrix("c0")
    Ws = [at.fmatrix(f"W_{k}") for k in "ifog"]
    Us = [at.fmatrix(f"U_{k}") for k in "ifog"]
    bs = [at.fvector(f"b_{k}") for k in "ifog"]

    def step(x_t, h, c, W_i, W_f, W_o, W_g, U_i, U_f, U_o, U_g, b_i, b_f, b_o, b_g):
        i = at.nnet.sigmoid(aesara.dot(x_t, W_i) + aesara.dot(h, U_i) + b_i)
        f = at.nnet.sigmoid(aesara.dot(x_t, W_f) + aesara.dot(h, U_f) + b_f)
        o = at.nnet.sigmoid(aesara.dot(x_t, W_o) + aesara.dot(h, U_o) + b_o)
        g = at.tanh(aesara.dot(x_t, W_g) + aesara.dot(h, U_g) + b_g)
        c_new = f * c + i * g
        return o * at.tanh(c_new), c_new
    (hs, _), _ = aesara.scan(step, sequences=x, outputs_info=[h0, c0], non_sequences=Ws + Us + bs)
    return "lstm_four_matmul", [x, h0, c0] + Ws + Us + bs, hs


def _split_gates(W, U, b):
    """The merged weights as four contiguous blocks each (i, f, o, g)."""
    H = U.shape[0]
    return ([np.ascontiguousarray(W[:, k * H:(k + 1) * H]) for k in range(4)]
            + [np.ascontiguousarray(U[:, k * H:(k + 1) * H]) for k in range(4)]
            + [np.ascontiguousarray(b[k * H:(k + 1) * H]) for k in range(4)])


def scanaot_lstm_four_matmul_impl():
    """W8's four-matmul kernel on W8's data: the merged weights are split per gate in the call
    (copying 1.3 MB at full size, timed with it)."""
    kernel = _scanaot(scanaot_lstm_four_matmul, None)
    return lambda x, h0, c0, W, U, b: kernel(x, h0, c0, *_split_gates(W, U, b))


def _gru_graph():
    import scanaot as aesara
    import scanaot.tensor as at
    x, h0 = at.ftensor3("x"), at.fmatrix("h0")
    W, U, b = at.ftensor3("W"), at.ftensor3("U"), at.fmatrix("b")

    def step(x_t, h, W, U, b):
        z = at.nnet.sigmoid(aesara.dot(x_t, W[0]) + aesara.dot(h, U[0]) + b[0])
        r = at.nnet.sigmoid(aesara.dot(x_t, W[1]) + aesara.dot(h, U[1]) + b[1])
        c = at.tanh(aesara.dot(x_t, W[2]) + aesara.dot(r * h, U[2]) + b[2])
        return (1 - z) * c + z * h
    hs, _ = aesara.scan(step, sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    return [x, h0, W, U, b], hs


def scanaot_gru():
    inputs, hs = _gru_graph()
    return "gru", inputs, hs


def scanaot_gru_grad():
    return _bptt("gru_grad", _gru_graph)


def scanaot_hmm():
    """The forward algorithm in log space: alpha_t = log_obs_t + logsumexp(alpha_{t-1}[:, None] + log_A, 0)."""
    import scanaot as aesara
    import scanaot.tensor as at
    log_obs, log_A, log_pi = at.fmatrix("log_obs"), at.fmatrix("log_A"), at.fvector("log_pi")

    def step(log_obs_t, alpha, log_A):
        return log_obs_t + at.logsumexp(alpha[:, None] + log_A, axis=0)
    alphas, _ = aesara.scan(step, sequences=log_obs[1:], outputs_info=log_pi + log_obs[0], non_sequences=log_A)
    return "hmm", [log_obs, log_A, log_pi], alphas


def scanaot_impls(build: Callable, x86_64_v2: bool = True) -> dict:
    """scanaot at each target; the loaded kernel is what is timed (as users call it).

    "scanaot" is the default portable library (its best variant runs: x86-64-v4 on an
    AVX-512 machine); "scanaot-native" is built for this machine's own features. W8-W11
    leave out the single-variant x86-64-v2 build (W1-W7 show what it costs) to keep the
    short run's compiles within CI's minute."""
    def at_level(cpu, target="cpu"):
        return lambda: _scanaot(build, cpu, target)
    impls = {"scanaot": at_level(None), "scanaot-native": at_level("native"),
             "scanaot-x86-64-v2": at_level("x86-64-v2"), "scanaot-cuda": at_level(None, "cuda")}
    if not x86_64_v2:
        del impls["scanaot-x86-64-v2"]
    return impls


def scanaot_keyword_call():
    """W7's kernel called by keyword (`lib.call(v=...)`)."""
    kernel = _scanaot(scanaot_call, None)
    return lambda v: kernel(v=v)


def scanaot_out_call():
    """W7's kernel writing into a caller-owned buffer (`out=`), reused across calls."""
    kernel = _scanaot(scanaot_call, None)
    buffers = [np.empty(sizes()["call"], "float32")]
    return lambda v: kernel(v, out=buffers)


def scanaot_function_call():
    """W7 through `scanaot.function`, as most users call a compiled function."""
    import scanaot
    _, inputs, outputs = scanaot_call()
    return scanaot.function(inputs, outputs)


def bare_ctypes_call():
    """The same kernel as scanaot's W7, called through ctypes with prebuilt descriptors."""
    from scanaot.runtime.memref import descriptor_for
    kernel = _scanaot(scanaot_call, None)
    fn = kernel._fn
    v = call_data()[0]
    out, dims = np.empty(4, "float32"), np.zeros(1, "int64")
    refs = [ctypes.byref(descriptor_for(a)) for a in (v, out, dims)]
    keep = (v, out, dims, refs)

    def call(_v):
        fn(*keep[3])
        return keep[1]
    return call


# ---------------------------------------------------------------- numpy loops
def numpy_power(a, k):
    result = np.ones_like(a)
    for _ in range(k):
        result = result * a
    return result


def numpy_triangular(n):
    out = np.empty(n, dtype="int32")
    acc = np.int32(0)
    for i in range(n):
        acc = acc + np.int32(i)
        out[i] = acc
    return out


def numpy_polynomial(c, x):
    total = 0.0
    for i in range(len(c)):
        total += float(c[i]) * float(x) ** i
    return total


def numpy_rnn(x, h0, W, U, b):
    h, out = h0, np.empty((x.shape[0],) + h0.shape, "float32")
    for t in range(x.shape[0]):
        h = np.tanh(h @ W + x[t] @ U + b)
        out[t] = h
    return out


def numpy_lstm(x, h0, c0, W, U, b):
    """The input projection of all steps hoisted into one GEMM; one GEMM per step."""
    T, B, I = x.shape
    H = h0.shape[1]
    xp = (x.reshape(T * B, I) @ W + b).reshape(T, B, 4 * H)
    h, c, out = h0, c0, np.empty((T, B, H), "float32")
    for t in range(T):
        z = xp[t] + h @ U
        ifo = 1 / (1 + np.exp(-z[:, :3 * H]))
        c = ifo[:, H:2 * H] * c + ifo[:, :H] * np.tanh(z[:, 3 * H:])
        h = ifo[:, 2 * H:] * np.tanh(c)
        out[t] = h
    return out


def numpy_gru(x, h0, W, U, b):
    """Input projections hoisted into one GEMM; z and r share one GEMM per step."""
    return _gru_forward(x, h0, W, U, b, "float32")[0]


def numpy_hmm(log_obs, log_A, log_pi):
    T, S = log_obs.shape
    alpha, out = log_pi + log_obs[0], np.empty((T - 1, S), "float32")
    for t in range(1, T):
        z = alpha[:, None] + log_A
        m = z.max(0)
        alpha = log_obs[t] + m + np.log(np.exp(z - m).sum(0))
        out[t - 1] = alpha
    return out


# ---------------------------------------------------------------- hand-written C
def _peer_library(source: Path, stem: str, libraries: tuple[str, ...] = (), missing: str | None = None) -> Path:
    """`source` (with the shared tanh_rational.h) built once per content into the cache:
    gcc -O3 -march=native, as a good C programmer builds it. A build failure is
    Unavailable naming `missing` when given (an optional system library), else an error."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise Unavailable("no C compiler")
    from scanaot.cache import cache_dir
    text = source.read_bytes() + PEERS_TANH_H.read_bytes()
    target = cache_dir() / f"{stem}-{hashlib.sha256(text).hexdigest()[:16]}.so"
    if not target.exists():
        tmp = target.with_suffix(".tmp.so")
        built = subprocess.run([cc, "-O3", "-march=native", "-shared", "-fPIC", str(source), "-o", str(tmp),
                                *(f"-l{lib}" for lib in libraries), "-lm"], capture_output=True, text=True)
        if built.returncode and missing is not None:
            why = (built.stderr.strip().splitlines() or [""])[0]
            raise Unavailable(f"{missing}: {why}")
        built.check_returncode()
        os.replace(tmp, target)
    return target


@functools.lru_cache(maxsize=None)
def c_library() -> ctypes.CDLL:
    return ctypes.CDLL(str(_peer_library(PEERS_C, "peers")))


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def c_power():
    fn = c_library().power

    def run(a, k):
        out = np.empty_like(a)
        fn(_p(a), ctypes.c_int64(len(a)), ctypes.c_int32(k), _p(out))
        return out
    return run


def c_triangular():
    fn = c_library().triangular

    def run(n):
        out = np.empty(n, "int32")
        fn(ctypes.c_int32(n), _p(out))
        return out
    return run


def c_polynomial():
    fn = c_library().polynomial
    fn.restype = ctypes.c_double

    def run(c, x):
        return fn(_p(c), ctypes.c_int64(len(c)), ctypes.c_float(x))
    return run


def c_rnn():
    fn = c_library().rnn_forward

    def run(x, h0, W, U, b):
        T, B, I = x.shape
        H = h0.shape[1]
        hs = np.empty((T, B, H), "float32")
        fn(_p(x), _p(h0), _p(W), _p(U), _p(b), *[ctypes.c_int64(v) for v in (T, B, I, H)], _p(hs))
        return hs
    return run


def c_rnn_grad():
    lib = c_library()

    def run(x, h0, W, U, b, g):
        T, B, I = x.shape
        H = h0.shape[1]
        dims = [ctypes.c_int64(v) for v in (T, B, I, H)]
        hs = np.empty((T, B, H), "float32")
        lib.rnn_forward(_p(x), _p(h0), _p(W), _p(U), _p(b), *dims, _p(hs))
        gW, gU, gb, gh0 = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(h0)
        work = np.empty(2 * B * H, "float32")
        lib.rnn_backward(_p(x), _p(h0), _p(W), _p(U), _p(hs), _p(g), *dims, _p(gW), _p(gU), _p(gb),
                         _p(gh0), _p(work))
        return [gW, gU, gb, gh0]
    return run


PEERS_CBLAS_C = Path(__file__).parent / "peers" / "workloads_cblas.c"
@functools.lru_cache(maxsize=None)
def c_blas_library() -> ctypes.CDLL:
    """W4/W5 with CBLAS sgemm from OpenBLAS (`apt-get install libopenblas-dev`); Unavailable
    without a C compiler or without OpenBLAS's header and library."""
    target = _peer_library(PEERS_CBLAS_C, "peers-cblas", ("openblas",),
                           missing="OpenBLAS is not installed (apt-get install libopenblas-dev)")
    try:
        return ctypes.CDLL(str(target))
    except OSError as err:  # built here before, libopenblas removed since
        raise Unavailable(f"OpenBLAS is not installed: {err}") from None


def _c_rnn_variant(library: Callable[[], ctypes.CDLL], suffix: str):
    """W4 through rnn_forward_<suffix> (the blocked and the CBLAS C peers)."""
    def build():
        fn = getattr(library(), f"rnn_forward_{suffix}")

        def run(x, h0, W, U, b):
            T, B, I = x.shape
            H = h0.shape[1]
            hs = np.empty((T, B, H), "float32")
            fn(_p(x), _p(h0), _p(W), _p(U), _p(b), *[ctypes.c_int64(v) for v in (T, B, I, H)], _p(hs))
            return hs
        return run
    return build


def _c_rnn_grad_variant(library: Callable[[], ctypes.CDLL], suffix: str):
    """W5 through rnn_forward_<suffix> then rnn_backward_<suffix> (as c_rnn_grad: forward included)."""
    def build():
        lib = library()
        forward, backward = getattr(lib, f"rnn_forward_{suffix}"), getattr(lib, f"rnn_backward_{suffix}")

        def run(x, h0, W, U, b, g):
            T, B, I = x.shape
            H = h0.shape[1]
            dims = [ctypes.c_int64(v) for v in (T, B, I, H)]
            hs = np.empty((T, B, H), "float32")
            forward(_p(x), _p(h0), _p(W), _p(U), _p(b), *dims, _p(hs))
            gW, gU, gb, gh0 = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(h0)
            backward(_p(x), _p(h0), _p(W), _p(U), _p(hs), _p(g), *dims, _p(gW), _p(gU), _p(gb), _p(gh0))
            return [gW, gU, gb, gh0]
        return run
    return build


def c_until():
    fn = c_library().power_of_2
    fn.restype = ctypes.c_int32

    def run(m):
        out = np.empty(1024, "float32")
        count = fn(ctypes.c_float(m), _p(out), ctypes.c_int32(1024))
        return out[:count]
    return run


def c_call():
    fn = c_library().call

    def run(v):
        out = np.empty(4, "float32")
        fn(_p(v), _p(out))
        return out
    return run


# ---------------------------------------------------------------- JAX
def _jax():
    if importlib.util.find_spec("jax") is None:
        raise Unavailable("jax is not installed (pip install scanaot[bench])")
    import jax
    jax.config.update("jax_platforms", "cpu")
    return jax


def jax_power():
    jax = _jax()
    from jax import lax
    f = jax.jit(lambda a, k: lax.fori_loop(0, k, lambda i, p: p * a, jax.numpy.ones_like(a)))
    return lambda a, k: np.asarray(f(a, k))


def jax_triangular():
    jax = _jax()
    from jax import lax
    jnp = jax.numpy
    f = jax.jit(lambda n_arr: lax.scan(lambda s, v: (s + v, s + v), jnp.int32(0), n_arr)[1])
    return lambda n: np.asarray(f(np.arange(n, dtype="int32")))


def jax_polynomial():
    jax = _jax()
    from jax import lax
    jnp = jax.numpy
    jax.config.update("jax_enable_x64", True)

    def poly(c, x):
        powers = jnp.arange(c.shape[0])
        comps = lax.scan(lambda _, cp: (None, cp[0].astype(jnp.float64) * jnp.float64(x) ** cp[1]), None,
                         (c, powers))[1]
        return comps.sum()
    f = jax.jit(poly)
    return lambda c, x: float(f(c, x))


def _jax_rnn(jax):
    from jax import lax
    jnp = jax.numpy

    def forward(x, h0, W, U, b):
        return lax.scan(lambda h, xt: ((hn := jnp.tanh(h @ W + xt @ U + b)), hn), h0, x)[1]
    return forward


def _jax_forward(make: Callable) -> Callable:
    """A recurrent model's forward pass (`make(jax)` builds it) under jax.jit."""
    jax = _jax()
    f = jax.jit(make(jax))
    return lambda *a: np.asarray(f(*a))


def _jax_bptt(make: Callable) -> Callable:
    """The gradient of sum(hs * g) w.r.t. W, U, b, h0 of a model `make(jax)` builds."""
    jax = _jax()
    forward = make(jax)
    f = jax.jit(jax.grad(lambda W, U, b, h0, x, g: (forward(x, h0, W, U, b) * g).sum(), argnums=(0, 1, 2, 3)))
    return lambda x, h0, W, U, b, g: [np.asarray(v) for v in f(W, U, b, h0, x, g)]


def jax_rnn():
    return _jax_forward(_jax_rnn)


def jax_rnn_grad():
    return _jax_bptt(_jax_rnn)


def jax_until():
    jax = _jax()
    from jax import lax
    jnp = jax.numpy

    def run(m):
        def cond(state):
            i, p, _ = state
            return (i < 1024) & ((i == 0) | (p <= m))

        def body(state):
            i, p, out = state
            p = p * 2
            return i + 1, p, out.at[i].set(p)
        i, _, out = lax.while_loop(cond, body, (0, jnp.float32(1), jnp.zeros(1024, jnp.float32)))
        return out, i
    f = jax.jit(run)

    def call(m):
        out, count = f(m)
        return np.asarray(out)[:int(count)]
    return call


def jax_call():
    jax = _jax()
    from jax import lax
    f = jax.jit(lambda v: lax.scan(lambda s, _: (s * 2, None), v, None, length=1)[0])
    return lambda v: np.asarray(f(v))


def _jax_lstm(jax):
    from jax import lax
    jnp = jax.numpy

    def forward(x, h0, c0, W, U, b):
        H = h0.shape[1]

        def step(carry, x_t):
            h, c = carry
            z = x_t @ W + h @ U + b
            i, f, o = (jax.nn.sigmoid(z[:, k * H:(k + 1) * H]) for k in range(3))
            c = f * c + i * jnp.tanh(z[:, 3 * H:])
            h = o * jnp.tanh(c)
            return (h, c), h
        return lax.scan(step, (h0, c0), x)[1]
    return forward


def jax_lstm():
    jax = _jax()
    f = jax.jit(_jax_lstm(jax))
    return lambda *a: np.asarray(f(*a))


def _jax_gru(jax):
    from jax import lax
    jnp = jax.numpy

    def forward(x, h0, W, U, b):
        def step(h, x_t):
            z = jax.nn.sigmoid(x_t @ W[0] + h @ U[0] + b[0])
            r = jax.nn.sigmoid(x_t @ W[1] + h @ U[1] + b[1])
            c = jnp.tanh(x_t @ W[2] + (r * h) @ U[2] + b[2])
            h = (1 - z) * c + z * h
            return h, h
        return lax.scan(step, h0, x)[1]
    return forward


def jax_gru():
    return _jax_forward(_jax_gru)


def jax_gru_grad():
    return _jax_bptt(_jax_gru)


def jax_hmm():
    jax = _jax()
    from jax import lax

    def forward(log_obs, log_A, log_pi):
        def step(alpha, log_obs_t):
            alpha = log_obs_t + jax.nn.logsumexp(alpha[:, None] + log_A, axis=0)
            return alpha, alpha
        return lax.scan(step, log_pi + log_obs[0], log_obs[1:])[1]
    f = jax.jit(forward)
    return lambda *a: np.asarray(f(*a))


# ---------------------------------------------------------------- PyTensor (numba)
def _pytensor():
    if importlib.util.find_spec("pytensor") is None or importlib.util.find_spec("numba") is None:
        raise Unavailable("pytensor/numba are not installed (pip install scanaot[bench])")
    import pytensor
    return pytensor


def pytensor_fn(build):
    def make():
        pytensor = _pytensor()
        inputs, outputs = build(pytensor)
        f = pytensor.function(inputs, outputs, mode="NUMBA")
        return lambda *a: f(*a)
    return make


def _pt_power(pytensor):
    import pytensor.tensor as pt
    k, A = pt.iscalar("k"), pt.fvector("A")
    result, _ = pytensor.scan(lambda p, A: p * A, outputs_info=pt.ones_like(A), non_sequences=A, n_steps=k)
    return [A, k], result[-1]


def _pt_triangular(pytensor):
    import pytensor.tensor as pt
    up_to = pt.iscalar("up_to")
    seq = pt.arange(up_to, dtype="int32")  # as scanaot and the guide: int32, wrapping on overflow
    out, _ = pytensor.scan(lambda v, s: s + v, sequences=seq, outputs_info=pt.as_tensor(np.asarray(0, seq.dtype)))
    return [up_to], out


def _pt_polynomial(pytensor):
    import pytensor.tensor as pt
    c, x = pt.fvector("c"), pt.fscalar("x")
    comps, _ = pytensor.scan(lambda ci, p, xv: ci * (xv ** p), sequences=[c, pt.arange(sizes()["polynomial"])],
                             non_sequences=x)
    return [c, x], comps.sum()


def _pt_rnn_graph(pytensor):
    import pytensor.tensor as pt
    x, h0, W, U, b = pt.ftensor3("x"), pt.fmatrix("h0"), pt.fmatrix("W"), pt.fmatrix("U"), pt.fvector("b")
    hs, _ = pytensor.scan(lambda xt, h, W, U, b: pt.tanh(pt.dot(h, W) + pt.dot(xt, U) + b), sequences=x,
                          outputs_info=h0, non_sequences=[W, U, b])
    return [x, h0, W, U, b], hs


def _pt_rnn(pytensor):
    return _pt_rnn_graph(pytensor)


def _pt_rnn_grad(pytensor):
    import pytensor.tensor as pt
    inputs, hs = _pt_rnn_graph(pytensor)
    g = pt.ftensor3("g")
    grads = pytensor.grad((hs * g).sum(), [inputs[2], inputs[3], inputs[4], inputs[1]])
    return inputs + [g], grads


def _pt_until(pytensor):
    import pytensor.tensor as pt
    from pytensor.scan.utils import until
    m = pt.fscalar("m")
    values, _ = pytensor.scan(lambda p, m: (p * 2, until(p * 2 > m)), outputs_info=pt.constant(np.float32(1)),
                              non_sequences=m, n_steps=1024)
    return [m], values


def _pt_call(pytensor):
    import pytensor.tensor as pt
    v = pt.fvector("v")
    out, _ = pytensor.scan(lambda s: s * 2, outputs_info=v, n_steps=1)
    return [v], out[-1]


# ---------------------------------------------------------------- the table
WORKLOADS = [
    Workload("W1", "power (A**k, last value)", power_data, power_ref,
             {**scanaot_impls(scanaot_power), "numpy": lambda: numpy_power, "c": c_power, "jax": jax_power,
              "pytensor": pytensor_fn(_pt_power)}, rtol=1e-3),
    Workload("W2", "triangular ({triangular} steps)", triangular_data, triangular_ref,
             {**scanaot_impls(scanaot_triangular), "numpy": lambda: numpy_triangular, "c": c_triangular,
              "jax": jax_triangular, "pytensor": pytensor_fn(_pt_triangular)}),
    Workload("W3", "polynomial", polynomial_data, polynomial_ref,
             {**scanaot_impls(scanaot_polynomial), "numpy": lambda: numpy_polynomial, "c": c_polynomial,
              "jax": jax_polynomial, "pytensor": pytensor_fn(_pt_polynomial)}, rtol=1e-5),
    Workload("W4", "rnn forward", rnn_data, rnn_ref,
             {**scanaot_impls(scanaot_rnn), "numpy": lambda: numpy_rnn, "c": c_rnn,
              "c-blocked": _c_rnn_variant(c_library, "blocked"),
              "c-openblas": _c_rnn_variant(c_blas_library, "cblas"), "jax": jax_rnn, "pytensor": pytensor_fn(_pt_rnn)}, rtol=2e-3),
    Workload("W5", "rnn gradient (BPTT)", rnn_grad_data, rnn_grad_ref,
             {**scanaot_impls(scanaot_rnn_grad), "c": c_rnn_grad,
              "c-blocked": _c_rnn_grad_variant(c_library, "blocked"),
              "c-openblas": _c_rnn_grad_variant(c_blas_library, "cblas"), "jax": jax_rnn_grad,
              "pytensor": pytensor_fn(_pt_rnn_grad)}, rtol=5e-3),
    Workload("W6", "until (powers of two, per call)", until_data, until_ref,
             {**scanaot_impls(scanaot_until), "c": c_until, "jax": jax_until, "pytensor": pytensor_fn(_pt_until)}),
    Workload("W7", "call overhead (one step, length {call})", call_data, call_ref,
             {**scanaot_impls(scanaot_call), "scanaot-function": scanaot_function_call,
              "scanaot-keyword": scanaot_keyword_call, "scanaot-out": scanaot_out_call,
              "bare-ctypes": bare_ctypes_call, "c": c_call, "jax": jax_call, "pytensor": pytensor_fn(_pt_call)}),
    Workload("W8", "lstm forward (merged and four-matmul weights)", lstm_data, lstm_ref,
             {**scanaot_impls(scanaot_lstm, x86_64_v2=False), "scanaot-four-matmul": scanaot_lstm_four_matmul_impl,
              "numpy": lambda: numpy_lstm, "jax": jax_lstm}, rtol=2e-3),
    Workload("W9", "gru forward", gru_data, gru_ref,
             {**scanaot_impls(scanaot_gru, x86_64_v2=False), "numpy": lambda: numpy_gru, "jax": jax_gru}, rtol=2e-3),
    Workload("W10", "gru gradient (BPTT)", gru_grad_data, gru_grad_ref,
             {**scanaot_impls(scanaot_gru_grad, x86_64_v2=False), "numpy": lambda: gru_bptt, "jax": jax_gru_grad}, rtol=5e-3),
    Workload("W11", "hmm forward (log space)", hmm_data, hmm_ref,
             {**scanaot_impls(scanaot_hmm, x86_64_v2=False), "numpy": lambda: numpy_hmm, "jax": jax_hmm}, rtol=1e-4),
]


def check(result: Any, expected: Any, rtol: float) -> None:
    """Raise AssertionError unless `result` matches the numpy reference."""
    results = result if isinstance(result, (list, tuple)) else [result]
    expecteds = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(results) == len(expecteds), (len(results), len(expecteds))
    for r, e in zip(results, expecteds):
        r, e = np.asarray(r), np.asarray(e)
        assert r.shape == e.shape, (r.shape, e.shape)
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        np.testing.assert_allclose(r, e, rtol=rtol, atol=rtol * scale)
