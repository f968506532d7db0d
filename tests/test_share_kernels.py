"""share-kernels: a library of several CPU variants compiles each kernel's code outside
its products and vector loops once (passes/share_kernels.py).

Checked: the numbers of the split library against numpy, with each kind of part
running (this machine runs the most capable variant it has: the parts of x86-64-v4,
of x86-64-v3 and of x86-64-v2 in the three builds; and the portable library from C
under qemu-user's Nehalem and Haswell), gradients against finite differences, the
shared body compiled once and hidden, the same bytes from two builds, two kernels in
one library, a repeat-until loop, and which builds stay whole."""
import shutil
import subprocess
import textwrap

import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot.passes import share_kernels

BUILDS = ["portable", ("x86-64-v2", "x86-64-v3"), ("x86-64", "x86-64-v2")]


def _gated_rnn(dtype="float32"):
    """Three products and elementwise ops between them in each step: parts apart."""
    x = at.tensor3("x", dtype=dtype)
    W, U, V, h0 = (at.matrix(n, dtype=dtype) for n in ("W", "U", "V", "h0"))

    def step(x_t, h, W, U, V):
        a = at.tanh(at.dot(x_t, W) + at.dot(h, U))
        g = at.sigmoid(at.dot(a, V))
        return g * a + (1 - g) * h
    hs, _ = scanaot.scan(step, sequences=x, outputs_info=h0, non_sequences=[W, U, V])
    return [x, W, U, V, h0], hs


def _gated_rnn_numpy(x, W, U, V, h):
    out = []
    for x_t in x:
        a = np.tanh(x_t @ W + h @ U)
        g = 1 / (1 + np.exp(-(a @ V)))
        h = g * a + (1 - g) * h
        out.append(h)
    return np.array(out)


def _data(rng, dtype, steps=5, batch=3, inputs=7, hidden=37):
    """Sizes that are no multiple of any vector width (masked tails, partial tiles)."""
    shapes = [(steps, batch, inputs), (inputs, hidden), (hidden, hidden), (hidden, hidden), (batch, hidden)]
    return [(rng.standard_normal(s) * 0.4).astype(dtype) for s in shapes]


@pytest.fixture
def split_always(monkeypatch):
    monkeypatch.setattr(share_kernels, "MIN_PARTS", 1)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("cpu", BUILDS, ids=["portable", "v2-v3", "x86-64-v2"])
def test_the_split_library_computes_what_numpy_does(split_always, cache, tmp_path, cpu):
    inputs, hs = _gated_rnn()
    art = scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path / "out", cpu=cpu)
    assert "scanaot_shared_rnn" in art.ir("llvm")
    data = _data(np.random.default_rng(0), "float32")
    got = scanaot.runtime.load(art.library)["rnn"](*data)
    np.testing.assert_allclose(got, _gated_rnn_numpy(*[d.astype("float64") for d in data]), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("cpu", [BUILDS[0], BUILDS[2]], ids=["portable", "x86-64-v2"])
def test_gradients_through_the_split_library_match_finite_differences(split_always, cache, tmp_path, cpu):
    inputs, hs = _gated_rnn("float64")
    cost = (hs ** 2).sum()
    grads = scanaot.grad(cost, inputs[1:4])
    art = scanaot.compile(inputs, grads, name="rnn_grad", out_dir=tmp_path / "out", cpu=cpu)
    assert "scanaot_shared_rnn_grad" in art.ir("llvm")
    data = _data(np.random.default_rng(1), "float64", hidden=9)
    got = scanaot.runtime.load(art.library)["rnn_grad"](*data)

    def loss(values):
        return float((_gated_rnn_numpy(*values) ** 2).sum())
    eps = 1e-6
    for which, grad in zip((1, 2, 3), got):
        expected = np.zeros_like(data[which])
        for index in np.ndindex(*data[which].shape):
            up, down = [d.copy() for d in data], [d.copy() for d in data]
            up[which][index] += eps
            down[which][index] -= eps
            expected[index] = (loss(up) - loss(down)) / (2 * eps)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def test_the_shared_body_is_compiled_once_and_stays_inside_the_library(split_always, cache, tmp_path):
    inputs, hs = _gated_rnn()
    art = scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path / "out")
    llvm_ir = art.ir("llvm")
    assert llvm_ir.count("llvm.func hidden @scanaot_shared_rnn(") == 1
    assert "llvm.func internal @scanaot_part_" in llvm_ir  # the last variant's parts
    memref_ir = art.ir("memref")
    assert "func.call_indirect" in memref_ir and "constant @scanaot_part_" in memref_ir
    assert "linalg.fill" not in memref_ir  # each product's zero fill went into its part, dropped by its tile
    dynamic = subprocess.run(["nm", "-D", "--defined-only", str(art.library)], capture_output=True, text=True,
                             check=True).stdout
    assert "scanaot_shared" not in dynamic and "scanaot_part" not in dynamic
    assert "scanaot_rnn__rnn" in dynamic


def test_a_split_library_is_the_same_bytes_each_build(split_always, monkeypatch, tmp_path):
    built = []
    for n in range(2):
        monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / f"cache{n}"))
        inputs, hs = _gated_rnn()
        built.append(scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path / f"out{n}").library.read_bytes())
    assert built[0] == built[1]


def test_kernels_with_few_parts_and_single_variant_builds_stay_whole(cache, tmp_path, monkeypatch):
    inputs, hs = _gated_rnn()
    assert "scanaot_shared" not in scanaot.compile(inputs, hs, name="few", out_dir=tmp_path / "few").ir("llvm")
    monkeypatch.setattr(share_kernels, "MIN_PARTS", 1)
    single = scanaot.compile(inputs, hs, name="one", out_dir=tmp_path / "one", cpu="x86-64-v3")
    assert "scanaot_shared" not in single.ir("llvm")


def test_a_variant_list_without_a_least_capable_member_stays_whole(split_always):
    from scanaot.targets import cpu
    variants = [{"features": ["sse4.2", "popcnt"]}, {"features": ["avx2", "fma"]}]
    assert cpu.share(None, variants) is None  # neither has the other's features


def test_a_library_of_two_kernels_splits_each(split_always, cache, tmp_path):
    """Parts are numbered across the library and merged across kernels."""
    inputs, hs = _gated_rnn()
    art = scanaot.compile_many([("states", inputs, hs), ("last", inputs, hs[-1] * 2)], name="two",
                               out_dir=tmp_path / "out")
    llvm_ir = art.ir("llvm")
    assert "scanaot_shared_states" in llvm_ir and "scanaot_shared_last" in llvm_ir
    data = _data(np.random.default_rng(2), "float32")
    lib = scanaot.runtime.load(art.library)
    want = _gated_rnn_numpy(*[d.astype("float64") for d in data])
    np.testing.assert_allclose(lib["states"](*data), want, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(lib["last"](*data), want[-1] * 2, rtol=2e-5, atol=2e-6)


def test_an_until_loop_runs_its_parts_inside_its_while(split_always, cache, tmp_path):
    """Parts inside an scf.while (a repeat-until scan) stop where the condition does."""
    x, W = at.fmatrix("x"), at.fmatrix("W")

    def step(h, W):
        new = at.tanh(at.dot(h, W)) + 1
        return new, scanaot.scan.utils.until(new.sum() > 40)
    hs, _ = scanaot.scan(step, outputs_info=x, non_sequences=W, n_steps=50)
    art = scanaot.compile([x, W], hs, name="until", out_dir=tmp_path / "out", cpu=BUILDS[2])
    assert "scanaot_shared_until" in art.ir("llvm")
    rng = np.random.default_rng(3)
    h, w = rng.standard_normal((2, 5)).astype("float32"), (rng.standard_normal((5, 5)) * 0.3).astype("float32")
    got = scanaot.runtime.load(art.library)["until"](h, w)
    want = []
    for _ in range(50):
        h = np.tanh(h.astype("float64") @ w) + 1
        want.append(h)
        if h.sum() > 40:
            break
    np.testing.assert_allclose(got, np.array(want), rtol=2e-5, atol=2e-6)


QEMU = shutil.which("qemu-x86_64")
# numpy itself needs more than qemu's Nehalem has: the library is called from C
_C_CALLER = textwrap.dedent("""
    #include <stdio.h>
    #include <stdlib.h>
    #include "rnn.h"

    static float *read_all(const char *path, long count) {
        float *data = malloc(count * sizeof(float));
        FILE *f = fopen(path, "rb");
        if (!data || !f || fread(data, sizeof(float), count, f) != (size_t)count) exit(2);
        fclose(f);
        return data;
    }

    int main(int argc, char **argv) {
        (void)argc;
        long T = atol(argv[1]), B = atol(argv[2]), I = atol(argv[3]), H = atol(argv[4]);
        float *x = read_all(argv[5], T * B * I), *w = read_all(argv[6], I * H), *u = read_all(argv[7], H * H);
        float *v = read_all(argv[8], H * H), *h0 = read_all(argv[9], B * H), *out = malloc(T * B * H * sizeof(float));
        int64_t dims[3];
        scanaot_memref_float32_3d X = {x, x, 0, {T, B, I}, {B * I, I, 1}}, OUT = {out, out, 0, {T, B, H}, {B * H, H, 1}};
        scanaot_memref_float32_2d W = {w, w, 0, {I, H}, {H, 1}}, U = {u, u, 0, {H, H}, {H, 1}};
        scanaot_memref_float32_2d V = {v, v, 0, {H, H}, {H, 1}}, H0 = {h0, h0, 0, {B, H}, {H, 1}};
        scanaot_memref_int64_1d DIMS = {dims, dims, 0, {3}, {1}};
        int32_t status = rnn_run(&X, &W, &U, &V, &H0, &OUT, &DIMS);
        FILE *f = fopen(argv[10], "wb");
        fwrite(out, sizeof(float), T * B * H, f);
        fclose(f);
        printf("%d\\n", status);
        return 0;
    }
""")


@pytest.mark.skipif(QEMU is None, reason="qemu-user (qemu-x86_64) is not installed")
@pytest.mark.parametrize("model", ["Nehalem", "Haswell"])
def test_an_older_cpu_runs_the_shared_body_with_its_own_parts(split_always, cache, tmp_path, model):
    """On a CPU of each older level (qemu-user's models: x86-64-v2, -v3) a C program
    calls the portable library: the shared body, compiled for x86-64-v2, runs with that
    level's parts, with no instruction the CPU lacks (SIGILL) and numpy's numbers."""
    inputs, hs = _gated_rnn()
    art = scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path)
    assert "scanaot_shared_rnn" in art.ir("llvm")
    (tmp_path / "main.c").write_text(_C_CALLER)
    subprocess.run(["cc", "-std=c11", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"), f"-I{tmp_path}",
                    f"-L{tmp_path}", "-lrnn", f"-Wl,-rpath,{tmp_path}"], check=True)
    data = _data(np.random.default_rng(4), "float32")
    paths = []
    for i, d in enumerate(data):
        paths.append(str(tmp_path / f"in{i}.bin"))
        d.tofile(paths[-1])
    steps, batch, width = data[0].shape
    hidden = data[1].shape[1]
    proc = subprocess.run([QEMU, "-cpu", model, str(tmp_path / "main"), str(steps), str(batch), str(width),
                           str(hidden), *paths, str(tmp_path / "out.bin")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["0"], proc.stdout + proc.stderr[-2000:]
    got = np.fromfile(tmp_path / "out.bin", dtype="float32").reshape(steps, batch, hidden)
    want = _gated_rnn_numpy(*[d.astype("float64") for d in data])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_a_library_named_like_a_shared_body_keeps_its_entry_points(split_always, cache, tmp_path):
    """Entry symbols of a library called shared_x start like shared bodies do
    (scanaot_shared_x__f): they stay exported entry points, the body hidden."""
    inputs, hs = _gated_rnn()
    art = scanaot.compile_many([("f", inputs, hs)], name="shared_x", out_dir=tmp_path)
    dynamic = subprocess.run(["nm", "-D", "--defined-only", str(art.library)], capture_output=True, text=True,
                             check=True).stdout
    assert "scanaot_shared_x__f" in dynamic and "scanaot_shared_f" not in dynamic
    data = _data(np.random.default_rng(5), "float32")
    got = scanaot.runtime.load(art.library)["f"](*data)
    np.testing.assert_allclose(got, _gated_rnn_numpy(*[d.astype("float64") for d in data]), rtol=2e-5, atol=2e-6)


def _noisy_rnn_training():
    """A scan drawing from a random stream each step, and an SGD update of a shared
    weight: the stream's state and the weight are the function's shared variables."""
    import scanaot.tensor.random  # noqa: F401  (at.random)
    from scanaot.tensor.random.utils import RandomStream
    srng = RandomStream(seed=7)
    x = at.ftensor3("x")
    W = scanaot.shared(np.full((7, 37), 0.05, "float32"), name="W")
    U = scanaot.shared((np.eye(37) * 0.5).astype("float32"), name="U")

    def step(x_t, h, W, U):
        noise = srng.normal(0.0, 0.1, size=(3, 37)).astype("float32")
        return at.tanh(at.dot(x_t, W) + at.dot(h, U) + noise)
    hs, updates = scanaot.scan(step, sequences=x, outputs_info=at.zeros((3, 37), "float32"), non_sequences=[W, U])
    loss = (hs ** 2).mean()
    updates[W] = W - 0.5 * scanaot.grad(loss, W)
    return srng, W, x, loss, updates


def test_random_streams_and_updates_through_the_split_library_match_the_whole_one(split_always, cache):
    """A seed gives the same draws, and the same updated weights, whether the kernel is
    split (portable) or whole (one variant)."""
    results = {}
    for cpu in ("portable", "x86-64-v4"):
        srng, W, x, loss, updates = _noisy_rnn_training()
        train = scanaot.function([x], loss, updates=updates, cpu=cpu)
        if cpu == "portable":
            assert "scanaot_shared_" in train.ir("llvm")
        data = np.random.default_rng(6).standard_normal((5, 3, 7)).astype("float32")
        losses = [float(train(data)) for _ in range(3)]
        results[cpu] = losses, W.get_value()
    np.testing.assert_allclose(results["portable"][0], results["x86-64-v4"][0], rtol=1e-6)
    np.testing.assert_allclose(results["portable"][1], results["x86-64-v4"][1], rtol=1e-6, atol=1e-7)
    assert len(set(results["portable"][0])) == 3  # the stream advanced and the weight moved
