"""The cuda target on a GPU: results against numpy and the CPU target, gradients against
finite differences, device arrays in and out. Skipped where no NVIDIA GPU is present."""
import contextlib
import io
import threading

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.packaging.function import record_functions
from scanaot.runtime.cuda import DeviceArray, gpu_available
from scanaot.tools import bench, guide_examples

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not gpu_available(), reason="needs an NVIDIA GPU and its driver")]


def cuda_kernel(inputs, outputs, name, tmp_path, **kw):
    art = scanaot.compile(inputs, outputs, name=name, target="cuda", out_dir=tmp_path, **kw)
    return rt.load(art.library)


@pytest.mark.parametrize("name", sorted(guide_examples.EXAMPLES))
def test_guide_example_matches_the_cpu_target(name, tmp_path):
    with record_functions() as made, contextlib.redirect_stdout(io.StringIO()):
        guide_examples.EXAMPLES[name]()
    for k, f in enumerate(made):
        lib = cuda_kernel(f.spec.inputs, f.spec.outputs, f"{name}_{k}", tmp_path)
        for arrays, expected in f.calls:
            got = lib[f"{name}_{k}"](*arrays)
            got = list(got) if isinstance(got, tuple) else [got]
            for g, e in zip(got, expected):
                assert isinstance(g, np.ndarray) and g.shape == e.shape and g.dtype == e.dtype
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_rnn_forward_against_numpy(tmp_path):
    inputs, hs = bench._rnn_graph()
    lib = cuda_kernel(inputs, hs, "rnn", tmp_path)
    x, h0, W, U, b = args = bench.rnn_data()
    np.testing.assert_allclose(lib.rnn(*args), bench.rnn_ref(x, h0, W, U, b), rtol=2e-3, atol=2e-4)


def test_rnn_gradient_against_finite_differences(tmp_path):
    x, h0, W = at.dtensor3("x"), at.dmatrix("h0"), at.dmatrix("W")
    hs, _ = scanaot.scan(lambda xt, h, W: at.tanh(scanaot.dot(h, W) + xt), sequences=x, outputs_info=h0,
                         non_sequences=W)
    lib = cuda_kernel([x, h0, W], hs, "rnn", tmp_path, grad_wrt=[W, h0])
    rng = np.random.default_rng(0)
    xv, h0v, Wv = (rng.standard_normal(s) * 0.3 for s in ((6, 3, 4), (3, 4), (4, 4)))
    g = rng.standard_normal((6, 3, 4))
    gW, gh0 = lib.rnn.vjp(xv, h0v, Wv, cotangents=[g])

    def cost(W_, h0_):
        return float((lib.rnn(xv, h0_, W_) * g).sum())
    eps = 1e-6
    for wrt, grad in ((0, gW), (1, gh0)):
        base = [Wv, h0v]
        fd = np.zeros_like(base[wrt])
        for i in np.ndindex(fd.shape):
            plus, minus = [b.copy() for b in base], [b.copy() for b in base]
            plus[wrt][i] += eps
            minus[wrt][i] -= eps
            fd[i] = (cost(*plus) - cost(*minus)) / (2 * eps)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_rnn_gradient_kernel_matches_the_cpu_target(tmp_path):
    inputs, hs = bench._rnn_graph()
    wrt = [inputs[2], inputs[3], inputs[4], inputs[1]]
    gpu = cuda_kernel(inputs, hs, "rnn", tmp_path / "gpu", grad_wrt=wrt)
    cpu = rt.load(scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path / "cpu", grad_wrt=wrt).library)
    *args, g = bench.rnn_grad_data()
    for a, b in zip(gpu.rnn.vjp(*args, cotangents=[g]), cpu.rnn.vjp(*args, cotangents=[g])):
        np.testing.assert_allclose(a, b, rtol=5e-3, atol=5e-4)


def test_runtime_checks_report_on_the_gpu(tmp_path):
    v, i = at.vector("v"), at.iscalar("i")
    lib = cuda_kernel([v, i], v[i] * 2, "pick", tmp_path)
    assert float(lib.pick(np.arange(4, dtype="float32"), 3)) == 6.0
    with pytest.raises(rt.StatusError, match="out of bounds"):
        lib.pick(np.arange(4, dtype="float32"), 7)


def test_until_results_are_cut_to_the_steps_run(tmp_path):
    m = at.scalar("m")
    values, _ = scanaot.scan(lambda p, m: (p * 2, scanaot.scan.utils.until(p * 2 > m)),
                             outputs_info=at.constant(np.float32(1)), non_sequences=m, n_steps=1024)
    lib = cuda_kernel([m], values, "until", tmp_path)
    np.testing.assert_array_equal(lib.until(np.float32(45)), [2, 4, 8, 16, 32, 64])


def test_concurrent_calls_from_threads(tmp_path):
    inputs, hs = bench._rnn_graph()
    lib = cuda_kernel(inputs, hs, "rnn", tmp_path)
    args = bench.rnn_data()
    expected = lib.rnn(*args)
    errors = []

    def worker():
        for _ in range(3):
            if not np.allclose(lib.rnn(*args), expected, rtol=1e-6, atol=1e-6):
                errors.append("different result")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_device_arrays_in_and_out_without_copies(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    inputs, hs = bench._rnn_graph()
    lib = cuda_kernel(inputs, hs, "rnn", tmp_path)
    args = bench.rnn_data()
    expected = lib.rnn(*args)
    on_gpu = [torch.from_numpy(a).cuda() for a in args]
    result = lib.rnn(*on_gpu)
    assert isinstance(result, DeviceArray)
    as_torch = torch.as_tensor(result, device="cuda")
    assert as_torch.data_ptr() == result.__cuda_array_interface__["data"][0]
    np.testing.assert_allclose(as_torch.cpu().numpy(), expected, rtol=1e-6, atol=1e-6)
    out = torch.empty(expected.shape, dtype=torch.float32, device="cuda")
    before = out.data_ptr()
    lib.rnn.call_checked(*on_gpu, out=[out])
    assert out.data_ptr() == before
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-6, atol=1e-6)
