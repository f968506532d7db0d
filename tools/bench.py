"""The benchmark workloads (W1-W7) and their implementations: scanaot and its peers.

Each implementation is built once (compile excluded from timings) and checked
against a numpy reference before it is timed. Peers that are not installed are
skipped: JAX (`jax`), PyTensor (`pytensor`, numba mode), and hand-written C (needs
`gcc`). `SCANAOT_BENCH_SIZE=short` gives tiny sizes for CI's correctness run.
"""
from __future__ import annotations

import ctypes
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

FULL = {"power": (1000, 10**5), "triangular": 10**6, "polynomial": 10**5, "rnn": (1000, 32, 256, 64),
        "until": 45.0, "call": 4}
SHORT = {"power": (16, 50), "triangular": 1000, "polynomial": 100, "rnn": (12, 4, 16, 8),
         "until": 45.0, "call": 4}


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
    seq = at.arange(up_to)
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


def scanaot_rnn_grad():
    import scanaot
    import scanaot.tensor as at
    inputs, hs = _rnn_graph()
    g = at.ftensor3("g")
    grads = scanaot.grad((hs * g).sum(), [inputs[2], inputs[3], inputs[4], inputs[1]])
    return "rnn_grad", inputs + [g], grads


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


def scanaot_impls(build: Callable) -> dict:
    """scanaot at each target; the loaded kernel is what is timed (as users call it).

    "scanaot" is the default portable library (its best variant runs: x86-64-v4 on an
    AVX-512 machine); "scanaot-native" is built for this machine's own features."""
    def at_level(cpu, target="cpu"):
        return lambda: _scanaot(build, cpu, target)
    return {"scanaot": at_level(None), "scanaot-native": at_level("native"),
            "scanaot-x86-64-v2": at_level("x86-64-v2"), "scanaot-cuda": at_level(None, "cuda")}


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


# ---------------------------------------------------------------- hand-written C
_C_LIB = None


def c_library() -> ctypes.CDLL:
    global _C_LIB
    if _C_LIB is None:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise Unavailable("no C compiler")
        source = PEERS_C.read_bytes()
        from scanaot.cache import cache_dir
        target = cache_dir() / f"peers-{hashlib.sha256(source).hexdigest()[:16]}.so"
        if not target.exists():
            tmp = target.with_suffix(".tmp.so")
            subprocess.run([cc, "-O3", "-march=native", "-shared", "-fPIC", str(PEERS_C), "-o", str(tmp), "-lm"],
                           check=True)
            os.replace(tmp, target)
        _C_LIB = ctypes.CDLL(str(target))
    return _C_LIB


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


def jax_rnn():
    jax = _jax()
    f = jax.jit(_jax_rnn(jax))
    return lambda *a: np.asarray(f(*a))


def jax_rnn_grad():
    jax = _jax()
    forward = _jax_rnn(jax)
    f = jax.jit(jax.grad(lambda W, U, b, h0, x, g: (forward(x, h0, W, U, b) * g).sum(), argnums=(0, 1, 2, 3)))
    return lambda x, h0, W, U, b, g: [np.asarray(v) for v in f(W, U, b, h0, x, g)]


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
             {**scanaot_impls(scanaot_rnn), "numpy": lambda: numpy_rnn, "c": c_rnn, "jax": jax_rnn,
              "pytensor": pytensor_fn(_pt_rnn)}, rtol=2e-3),
    Workload("W5", "rnn gradient (BPTT)", rnn_grad_data, rnn_grad_ref,
             {**scanaot_impls(scanaot_rnn_grad), "c": c_rnn_grad, "jax": jax_rnn_grad,
              "pytensor": pytensor_fn(_pt_rnn_grad)}, rtol=5e-3),
    Workload("W6", "until (powers of two, per call)", until_data, until_ref,
             {**scanaot_impls(scanaot_until), "c": c_until, "jax": jax_until, "pytensor": pytensor_fn(_pt_until)}),
    Workload("W7", "call overhead (one step, length {call})", call_data, call_ref,
             {**scanaot_impls(scanaot_call), "scanaot-function": scanaot_function_call,
              "scanaot-keyword": scanaot_keyword_call, "scanaot-out": scanaot_out_call,
              "bare-ctypes": bare_ctypes_call, "c": c_call, "jax": jax_call, "pytensor": pytensor_fn(_pt_call)}),
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
