"""The cuda target on a machine without a GPU: every guide example compiles, the PTX
assembles with ptxas, the library links against libc only, and loading it fails
clearly. A stand-in driver (tests/fake_cuda) exercises the shim and the runtime's
buffer handling; tests/test_cuda_gpu.py runs the numerics where a GPU exists."""
import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.packaging.function import record_functions
from scanaot.targets import cuda as to_gpu
from scanaot.runtime import manifest as manifest_mod
from scanaot.runtime.cuda import can_run
from scanaot.tools import guide_examples



@pytest.fixture(scope="module", autouse=True)
def _float32(float32_programs):
    """This module's programs are written in float32, as deployed (floatX=float32),
    also those its module-scoped fixtures build."""

HAS_PTXAS = to_gpu.ptxas_path() is not None
HERE = Path(__file__).parent
# a scalar step and a final sum: nothing parallel is left once its arange is
# computed where it is read (fold-generator-reads), so no kernel is made
HOST_ONLY = {"polynomial"}


def guide_functions(name):
    with record_functions() as made, contextlib.redirect_stdout(io.StringIO()):
        guide_examples.EXAMPLES[name]()
    return made


def dynamic_symbols(library):
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(library)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if " GLOBAL " in line}


@pytest.mark.parametrize("name", sorted(guide_examples.EXAMPLES))
def test_guide_example_compiles_for_cuda(name, tmp_path):
    for k, f in enumerate(guide_functions(name)):
        art = scanaot.compile(f.spec.inputs, f.spec.outputs, name=f"{name}_{k}", target="cuda", out_dir=tmp_path)
        target = art.manifest["target"]
        assert target["name"] == "cuda" and target["arch"] == "sm_90"
        code = target["device_code"]
        if name in HOST_ONLY:
            assert code["kernels"] == 0 and code["format"] == "none"
            assert "gpu.launch_func" not in art.ir("gpu")
        else:
            assert code["kernels"] >= 1, "the step's tensor work should run as GPU kernels"
            assert code["format"] == ("cubin" if HAS_PTXAS else "ptx")
            assert "gpu.launch_func" in art.ir("gpu") and art.ir("gpu").count("gpu.module @") == 1
        out = subprocess.run(["readelf", "-d", str(art.library)], capture_output=True, text=True,
                             check=True).stdout
        needed = {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
        assert needed <= {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}, needed
        symbols = dynamic_symbols(art.library)
        assert {f"scanaot_{name}_{k}__{name}_{k}", "scanaot_cuda_alloc"} <= symbols
        assert not {"mgpuLaunchKernel", "mgpuModuleLoad"} & symbols, "the shim's mgpu* bind inside the library"
        # the sealed manifest is the one compile() reported
        assert manifest_mod.read(art.library.read_bytes()) == art.manifest


@pytest.mark.skipif(not HAS_PTXAS, reason="ptxas (CUDA toolkit) not installed")
def test_ptx_is_assembled_by_ptxas_for_other_architectures(tmp_path):
    f = guide_functions("power")[0]
    for arch in ("sm_80", "sm_90a"):
        art = scanaot.compile(f.spec.inputs, f.spec.outputs[0], name="p", target="cuda", arch=arch,
                              out_dir=tmp_path / arch)
        assert art.manifest["target"]["device_code"] == {"format": "cubin", "arch": arch, "kernels": 4}


def test_without_ptxas_the_library_embeds_ptx(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANAOT_PTXAS", "none")
    f = guide_functions("power")[0]
    art = scanaot.compile(f.spec.inputs, f.spec.outputs[0], name="p", target="cuda", out_dir=tmp_path)
    assert art.manifest["target"]["device_code"]["format"] == "ptx"
    assert art.manifest["target"]["ptxas"] is None
    assert 'assembly = "//' in art.ir("llvm") and 'bin = "' not in art.ir("llvm")


def test_gradient_kernels_compile_for_cuda(tmp_path):
    x, h0, W = at.dtensor3("x"), at.dmatrix("h0"), at.dmatrix("W")
    hs, _ = scanaot.scan(lambda xt, h, W: at.tanh(scanaot.dot(h, W) + xt), sequences=x, outputs_info=h0,
                         non_sequences=W)
    art = scanaot.compile([x, h0, W], hs, name="rnn", target="cuda", out_dir=tmp_path, grad_wrt=[W, h0])
    functions = {f["name"]: f for f in art.manifest["functions"]}
    assert functions["rnn"]["vjp"]["wrt"] == ["W", "h0"]
    assert "scanaot_rnn__rnn_vjp" in dynamic_symbols(art.library)
    assert "rnn_vjp(" in art.header.read_text()


def test_host_accessed_arguments_are_recorded(tmp_path):
    f = guide_functions("power")[0]
    art = scanaot.compile(f.spec.inputs, f.spec.outputs[0], name="p", target="cuda", out_dir=tmp_path)
    args = {a["name"]: a["host_access"] for a in art.manifest["functions"][0]["args"]}
    # n_steps is read by the host loop; A is only touched by kernels
    assert args == {"A": False, "k": True}


def test_bad_target_options_are_refused(tmp_path):
    v = at.vector("v")
    with pytest.raises(ValueError, match="arch 'sm_5'"):
        scanaot.compile([v], v * 2, name="f", target="cuda", arch="sm_5", out_dir=tmp_path)
    with pytest.raises(ValueError, match="arch= applies to target='cuda' only"):
        scanaot.compile([v], v * 2, name="f", target="cpu", arch="sm_90", out_dir=tmp_path)
    with pytest.raises(ValueError, match="expected one of cpu, cuda"):
        scanaot.compile([v], v * 2, name="f", target="rocm", out_dir=tmp_path)


def test_which_gpus_can_run_which_code():
    assert can_run("sm_90", "cubin", (9, 0)) and not can_run("sm_90", "cubin", (8, 9))
    assert not can_run("sm_80", "cubin", (9, 0)) and can_run("sm_80", "cubin", (8, 6))
    assert can_run("sm_80", "ptx", (9, 0)) and not can_run("sm_90", "ptx", (8, 0))
    assert can_run("sm_90a", "cubin", (9, 0)) and not can_run("sm_90a", "ptx", (10, 0))


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="this machine has an NVIDIA driver")
def test_loading_without_a_driver_is_a_clear_error(tmp_path):
    v = at.vector("v")
    art = scanaot.compile([v], v * 2, name="f", target="cuda", out_dir=tmp_path)
    with pytest.raises(rt.LibraryError, match=r"built for CUDA \(sm_90, .*no NVIDIA driver"):
        rt.load(art.library)


def test_cli_compiles_and_inspects_for_cuda(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent("""
        import scanaot, scanaot.tensor as at
        v = at.vector("v")
        EXPORTS = {"double": ([v], v * 2)}
    """))
    run = [sys.executable, "-m", "scanaot.tools.cli"]
    subprocess.run(run + ["compile", str(model), "--target", "cuda", "--arch", "sm_80", "-o", str(tmp_path)],
                   check=True, capture_output=True)
    out = subprocess.run(run + ["inspect", str(tmp_path / "libmodel.so")], check=True, capture_output=True,
                         text=True).stdout
    assert "target cuda" in out and "for sm_80" in out


# ---------------------------------------------------------------- with the stand-in driver
@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory):
    """Directory holding the stand-in libcuda.so.1."""
    root = tmp_path_factory.mktemp("fake_cuda")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(root / "libcuda.so.1"),
                    str(HERE / "fake_cuda" / "libcuda.c")], check=True)
    return root


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda_libs")
    f = guide_functions("power")[0]
    power = scanaot.compile(f.spec.inputs, f.spec.outputs[0], name="power", target="cuda", out_dir=out)
    x = at.dscalar("x")
    host_only = scanaot.compile([x], x * 2 + 1, name="affine", target="cuda", out_dir=out)
    k = scanaot.shared(0, name="k")
    counter = scanaot.compile([], k * 10, name="counter", target="cuda", out_dir=out, updates=[(k, k + 1)])
    return {"power": str(power.library), "affine": str(host_only.library), "counter": str(counter.library)}


RUNNER = """
import ctypes, json, sys
import numpy as np
import scanaot.runtime as rt
from scanaot.runtime.cuda import DeviceArray

class HostBackedDeviceArray:  # the stand-in driver's device memory is host memory
    def __init__(self, a):
        self.a = a
        self.__cuda_array_interface__ = {"version": 3, "shape": a.shape, "typestr": a.dtype.str,
                                         "data": (a.ctypes.data, False), "strides": None}

paths, case = json.loads(sys.argv[1]), sys.argv[2]
try:
    if case == "load":
        rt.load(paths["power"]); print(json.dumps({"ok": True}))
    elif case == "affine":
        lib = rt.load(paths["affine"])
        y = lib.affine(np.float64(2.5))
        d = lib.affine(HostBackedDeviceArray(np.array(4.0)))
        print(json.dumps({"numpy": float(y), "device_type": type(d).__name__, "device": float(np.asarray(d))}))
    elif case == "counter":
        lib = rt.load(paths["counter"])
        st = lib.state()
        got = [int(lib.counter(state=st)) for _ in range(3)]
        print(json.dumps({"got": got, "k": int(st.get("k")), "default": int(lib.default_state.get("k"))}))
    elif case == "power":
        lib = rt.load(paths["power"])
        r = lib.power(np.arange(5, dtype="float32"), 3)
        launches = ctypes.CDLL("libcuda.so.1").fake_cuda_launches()
        print(json.dumps({"shape": list(r.shape), "launches": launches}))
except Exception as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)}))
"""


def run_with_fake(fake_driver, libraries, mode, case):
    env = dict(os.environ, LD_LIBRARY_PATH=str(fake_driver), FAKE_CUDA=mode)
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(libraries), case], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_driver_without_a_gpu(fake_driver, libraries):
    got = run_with_fake(fake_driver, libraries, "nodevice", "load")
    assert got["error"] == "LibraryError"
    assert "finds no usable GPU (no CUDA-capable device is detected (CUDA error 100))" in got["message"]


def test_gpu_too_old_for_the_cubin(fake_driver, libraries):
    got = run_with_fake(fake_driver, libraries, "sm80", "load")
    assert got["error"] == "LibraryError" and "this GPU is sm_80" in got["message"]
    assert "arch='sm_80'" in got["message"]


def test_device_code_rejected_by_the_driver(fake_driver, libraries):
    got = run_with_fake(fake_driver, libraries, "badimage", "load")
    assert got["error"] == "LibraryError"
    assert "cuModuleLoadData): device kernel image is invalid (CUDA error 200)" in got["message"]


def test_failed_launch_raises_cuda_error(fake_driver, libraries):
    got = run_with_fake(fake_driver, libraries, "badlaunch", "power")
    assert got["error"] == "CudaError" and "cuLaunchKernel: unspecified launch failure" in got["message"]


def test_a_cuda_function_reads_and_updates_its_state(fake_driver, libraries):
    # the counter's work is host code: it runs on the stand-in driver
    got = run_with_fake(fake_driver, libraries, "ok", "counter")
    assert got == {"got": [0, 10, 20], "k": 3, "default": 0}


def test_host_side_code_runs_through_managed_buffers(fake_driver, libraries):
    # affine has no kernel: it runs on the host through the runtime's managed buffers
    got = run_with_fake(fake_driver, libraries, "ok", "affine")
    assert got == {"numpy": 6.0, "device_type": "DeviceArray", "device": 9.0}


def test_kernels_are_launched_for_each_step(fake_driver, libraries):
    got = run_with_fake(fake_driver, libraries, "ok", "power")
    assert got["shape"] == [5]
    assert got["launches"] >= 3  # one per step at least, for k = 3


def test_dlpack_tensors_are_read_without_copies():
    import numpy as np

    from scanaot.runtime.cuda import _from_dlpack
    a = np.arange(12, dtype="float32").reshape(3, 4)
    view = _from_dlpack(a)  # the parser is the same for CUDA tensors; numpy's are host ones
    assert (view.ptr, view.shape, view.dtype, view.contiguous) == (a.ctypes.data, (3, 4), np.float32, True)
    assert not _from_dlpack(a.T).contiguous
    assert _from_dlpack(np.zeros(3, bool)).dtype == np.bool_
