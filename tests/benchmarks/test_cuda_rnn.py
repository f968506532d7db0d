"""The guide's RNN on an NVIDIA GPU: scanaot's cuda target against PyTorch's nn.RNN (cuDNN)
and JAX's lax.scan on the same GPU, forward and gradient (w.r.t. W, U, b, h0).

    pytest -m benchmark tests/benchmarks/test_cuda_rnn.py     # needs a GPU; torch / jax optional

Inputs live on the GPU for every implementation (scanaot takes torch CUDA tensors
through __cuda_array_interface__, no copies), and each result is checked against
the numpy reference before it is timed. Skipped where there is no GPU.
"""
import numpy as np
import pytest

from scanaot.runtime.cuda import gpu_available
from scanaot.tools import bench

pytestmark = [pytest.mark.benchmark, pytest.mark.cuda,
              pytest.mark.skipif(not gpu_available(), reason="needs an NVIDIA GPU and its driver")]

# (steps, batch, hidden, input)
SIZES = {"h256-b32": (1000, 32, 256, 64), "h1024-b256": (1000, 256, 1024, 256)}
IMPLS = ["scanaot-cuda", "torch-cudnn", "jax-gpu"]


def data(size, grad):
    T, B, H, I = SIZES[size]
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((T, B, I)).astype("float32") * 0.1, np.zeros((B, H), "float32"),
            (rng.standard_normal((H, H)) / np.sqrt(H)).astype("float32"),
            (rng.standard_normal((I, H)) / np.sqrt(I)).astype("float32"), np.zeros(H, "float32")]
    if grad:
        args.append(rng.standard_normal((T, B, H)).astype("float32"))
    return args


def scanaot_cuda(grad, tmp_path):
    import torch

    import scanaot
    import scanaot.runtime as rt
    inputs, hs = bench._rnn_graph()
    wrt = [inputs[2], inputs[3], inputs[4], inputs[1]]
    art = scanaot.compile(inputs, hs, name="rnn", target="cuda", out_dir=tmp_path, grad_wrt=wrt if grad else ())
    kernel = rt.load(art.library).rnn

    def run(*args):
        on_gpu = [torch.from_numpy(a).cuda() for a in args]
        if grad:
            *xs, g = on_gpu
            return lambda: kernel.vjp(*xs, cotangents=[g])
        return lambda: kernel(*on_gpu)
    return run


def torch_cudnn(grad, tmp_path):
    import torch

    def run(x, h0, W, U, b, g=None):
        T, B, I = x.shape
        H = W.shape[0]
        rnn = torch.nn.RNN(I, H, nonlinearity="tanh").cuda()
        with torch.no_grad():
            rnn.weight_hh_l0.copy_(torch.from_numpy(W.T.copy()))
            rnn.weight_ih_l0.copy_(torch.from_numpy(U.T.copy()))
            rnn.bias_ih_l0.copy_(torch.from_numpy(b))
            rnn.bias_hh_l0.zero_()
        xs, h = torch.from_numpy(x).cuda(), torch.from_numpy(h0).cuda()[None]
        if g is None:
            def forward():
                with torch.no_grad():
                    out = rnn(xs, h)[0]
                torch.cuda.synchronize()
                return out
            return forward
        gs = torch.from_numpy(g).cuda()
        h.requires_grad_(True)

        def gradient():
            rnn.zero_grad()
            h.grad = None
            out = rnn(xs, h)[0]
            out.backward(gs)
            torch.cuda.synchronize()
            return [rnn.weight_hh_l0.grad.T, rnn.weight_ih_l0.grad.T, rnn.bias_ih_l0.grad, h.grad[0]]
        return gradient
    return run


def jax_gpu(grad, tmp_path):
    import jax
    import jax.numpy as jnp

    def forward(x, h0, W, U, b):
        def step(h, xt):
            h = jnp.tanh(h @ W + xt @ U + b)
            return h, h
        return jax.lax.scan(step, h0, x)[1]
    if grad:
        def loss(W, U, b, h0, x, g):
            return jnp.sum(forward(x, h0, W, U, b) * g)
        fn = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))
    else:
        fn = jax.jit(forward)

    def run(*args):
        device = jax.devices("gpu")[0]
        on_gpu = [jax.device_put(a, device) for a in args]
        if grad:
            x, h0, W, U, b, g = on_gpu
            return lambda: jax.block_until_ready(fn(W, U, b, h0, x, g))
        return lambda: jax.block_until_ready(fn(*on_gpu))
    return run


MAKERS = {"scanaot-cuda": scanaot_cuda, "torch-cudnn": torch_cudnn, "jax-gpu": jax_gpu}
NEEDS = {"scanaot-cuda": "torch", "torch-cudnn": "torch", "jax-gpu": "jax"}


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "gradient"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", IMPLS)
def test_rnn_on_gpu(benchmark, impl, size, grad, tmp_path):
    peer = pytest.importorskip(NEEDS[impl])
    if impl == "jax-gpu" and not any(d.platform == "gpu" for d in peer.devices()):
        pytest.skip("jax without a CUDA backend (pip install 'jax[cuda12]')")
    if NEEDS[impl] == "torch" and not peer.cuda.is_available():
        pytest.skip("torch without CUDA")
    args = data(size, grad)
    call = MAKERS[impl](grad, tmp_path)(*args)
    result = call()
    expected = bench.rnn_grad_ref(*args) if grad else bench.rnn_ref(*args)
    got = [np.asarray(r.cpu() if hasattr(r, "cpu") else r) for r in result] if grad else \
        np.asarray(result.cpu() if hasattr(result, "cpu") else result)
    bench.check(got, expected, 5e-3 if grad else 2e-3)
    benchmark.group = f"rnn {size} {'gradient' if grad else 'forward'} (GPU)"
    benchmark.extra_info.update({"implementation": impl, "size": size, "grad": grad})
    benchmark(call)
