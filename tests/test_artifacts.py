"""scanaot.compile: libraries, headers, the manifest, the cache, the CLI, a C program."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.runtime import manifest as manifest_mod



@pytest.fixture(scope="module", autouse=True)
def _float32(float32_programs):
    """This module's programs are written in float32, as deployed (floatX=float32),
    also those its module-scoped fixtures build."""


def power_graph():
    k = at.iscalar("k")
    A = at.vector("A")
    result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    return [A, k], result[-1]


@pytest.fixture(scope="module")
def power_artifact(tmp_path_factory):
    inputs, out = power_graph()
    return scanaot.compile(inputs, out, name="power", target="cpu", out_dir=tmp_path_factory.mktemp("b"))


def test_compile_writes_library_and_header(power_artifact):
    assert power_artifact.library.name == "libpower.so" and power_artifact.library.exists()
    assert power_artifact.header.name == "power.h" and power_artifact.header.exists()
    header = power_artifact.header.read_text()
    assert "scanaot_power__power(" in header and "Buffer ownership" in header
    assert "SCANAOT_STATUS_INDEX_OUT_OF_BOUNDS" in header


def test_runtime_calls_positionally_and_by_name(power_artifact):
    lib = rt.load(power_artifact.library)
    a = np.arange(10, dtype="float32")
    np.testing.assert_allclose(lib.power(a, 4), a ** 4)
    np.testing.assert_allclose(lib.power(A=a, k=2), a ** 2)
    np.testing.assert_allclose(lib["power"](a, np.int32(3)), a ** 3)


def test_manifest_contents(power_artifact):
    m = manifest_mod.read(power_artifact.library.read_bytes())
    assert m["abi_version"] == manifest_mod.ABI_VERSION and m["target"]["name"] == "cpu"
    f = m["functions"][0]
    assert f["name"] == "power" and f["symbol"] == "scanaot_power__power"
    assert [(a["name"], a["dtype"], a["ndim"]) for a in f["args"]] == [("A", "float32", 1), ("k", "int32", 0)]
    assert f["outputs"][0]["shape_text"] == ["A.shape[0]"]
    assert len(f["graph_hash"]) == 64 and f["workspace_bytes"] == 0
    assert m["compiler"]["scanaot"] == scanaot.__version__


def test_library_needs_only_libc_and_libm(power_artifact):
    out = subprocess.run(["readelf", "-d", str(power_artifact.library)], capture_output=True, text=True,
                         check=True).stdout
    needed = {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    assert needed <= {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}, needed  # glibc's own loader (TLS)
    assert "TEXTREL" not in out


def test_compile_many_puts_several_functions_in_one_library(tmp_path):
    x = at.dvector("x")
    s, _ = scanaot.scan(lambda v, acc: acc + v, sequences=x, outputs_info=at.as_tensor_variable(np.float64(0)))
    art = scanaot.compile_many([("cumsum", [x], s), ("double", [x], x * 2)], name="tools", out_dir=tmp_path)
    lib = rt.load(art.library)
    xv = np.arange(5.0)
    np.testing.assert_allclose(lib.cumsum(xv), np.cumsum(xv))
    np.testing.assert_allclose(lib.double(xv), xv * 2)
    assert set(lib.functions) == {"cumsum", "double"}


def test_until_result_has_the_length_run(tmp_path):
    m = at.dscalar("m")
    values, _ = scanaot.scan(lambda p, m: (p * 2, scanaot.scan.utils.until(p * 2 > m)),
                             outputs_info=at.constant(np.float64(1)), non_sequences=m, n_steps=1024)
    lib = rt.load(scanaot.compile([m], values, name="pow2", out_dir=tmp_path).library)
    np.testing.assert_array_equal(lib.pow2(45.0), [2, 4, 8, 16, 32, 64])


def test_second_compile_is_served_from_the_cache(tmp_path, monkeypatch):
    inputs, out = power_graph()
    scanaot.compile(inputs, out, name="cached", out_dir=tmp_path / "a")
    from scanaot.packaging import artifact

    def refuse(*_):
        raise AssertionError("the pass pipeline ran on a cache hit")
    monkeypatch.setattr(artifact, "lower_variants", refuse)
    inputs, out = power_graph()
    art = scanaot.compile(inputs, out, name="cached", out_dir=tmp_path / "b")
    assert (tmp_path / "a" / "libcached.so").read_bytes() == art.library.read_bytes()
    assert "scf.for" in art.ir("scf")


def test_compiling_twice_gives_the_same_bytes(tmp_path, monkeypatch):
    libraries = []
    for run in ("one", "two"):
        monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / f"cache-{run}"))
        inputs, out = power_graph()
        libraries.append(scanaot.compile(inputs, out, name="power", out_dir=tmp_path / run).library.read_bytes())
    assert libraries[0] == libraries[1]


def test_bad_names_and_targets(tmp_path):
    inputs, out = power_graph()
    with pytest.raises(ValueError, match="C identifier"):
        scanaot.compile(inputs, out, name="my-lib", out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown target 'tpu'"):
        scanaot.compile(inputs, out, name="p", target="tpu", out_dir=tmp_path)


def test_cli_compile_and_inspect(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(textwrap.dedent("""
        import scanaot, scanaot.tensor as at
        k = at.iscalar("k"); A = at.vector("A")
        result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
        EXPORTS = {"power": ([A, k], result[-1]), "square": ([A], A * A)}
    """))
    env = dict(os.environ)
    cli = [sys.executable, "-m", "scanaot.tools.cli"]
    proc = subprocess.run(cli + ["compile", str(model), "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lib = tmp_path / "out" / "libmodel.so"
    assert lib.exists() and (tmp_path / "out" / "model.h").exists()
    shown = subprocess.run(cli + ["inspect", str(lib)], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "power" in shown.stdout and "A.shape[0]" in shown.stdout
    bad = subprocess.run(cli + ["inspect", str(model)], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "not a shared library" in bad.stderr


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "power.h"

int main(void) {
    float a[5] = {0.5f, 1.0f, 1.5f, 2.0f, 2.5f};
    float out[5];
    int32_t k = 3;
    int64_t dims[1];
    scanaot_memref_float32_1d A = {a, a, 0, {5}, {1}};
    scanaot_memref_int32_0d K = {&k, &k, 0};
    scanaot_memref_float32_1d OUT = {out, out, 0, {5}, {1}};
    scanaot_memref_int64_1d DIMS = {dims, dims, 0, {1}, {1}};
    int32_t status = power_run(&A, &K, &OUT, &DIMS);
    printf("%d %lld", status, (long long)dims[0]);
    for (int i = 0; i < 5; i++) printf(" %.6f", out[i]);
    printf("\n");
    return status;
}
"""


def test_c_program_against_the_header(power_artifact, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "main.c"
    src.write_text(C_PROGRAM)
    exe = tmp_path / "main"
    build_dir = power_artifact.library.parent
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(build_dir), str(src), "-L", str(build_dir),
                    "-lpower", f"-Wl,-rpath,{build_dir}", "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["0", "5"]
    a = np.array([0.5, 1.0, 1.5, 2.0, 2.5], dtype="float32")
    np.testing.assert_allclose(np.array(out[2:], dtype="float32"), a ** 3, rtol=1e-6)


@pytest.mark.parametrize("tool, setting", [("opt", "OPT_OPTIONS"), ("llc", "LLC_OPTIONS")])
def test_a_failing_llvm_tool_is_a_compile_error_naming_it(tool, setting, tmp_path, monkeypatch):
    """Each variant's tools run in one shell: its exit status still names the tool that
    failed, with the tool's own message, and no variant's tools outlive the failed build."""
    import scanaot.targets.toolchain as toolchain
    from scanaot.passes.upstream import CompileError
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(toolchain, setting, getattr(toolchain, setting) + ("-no-such-flag",))
    started = []
    real = toolchain._ObjectBuild.__init__

    def record(self, *args, **kwargs):
        real(self, *args, **kwargs)
        started.append(self.proc)

    monkeypatch.setattr(toolchain._ObjectBuild, "__init__", record)
    inputs, output = power_graph()
    with pytest.raises(CompileError, match=rf"^{tool} failed \(exit 10[23]\):\n.*no-such-flag"):
        scanaot.compile(inputs, output, name="power", out_dir=tmp_path / "out")
    assert started and all(proc.poll() is not None for proc in started)


def test_llvm_dialect_is_translated_in_process_and_other_modules_by_mlir_translate():
    """A module all in the LLVM dialect becomes LLVM IR in process; one with any other op
    (the cuda host code's GPU binaries) goes to mlir-translate as bytecode, since the
    bindings' translation crashes on what it cannot translate; mlir-translate's refusal
    is a CompileError naming it."""
    from mlir import ir
    from scanaot.passes.upstream import CompileError
    from scanaot.targets import toolchain
    with ir.Context(), ir.Location.unknown():
        llvm_only = ir.Module.parse("llvm.func @f(%x: i32) -> i32 { llvm.return %x : i32 }")
        other = ir.Module.parse("func.func @f() { return }")
        text, bytecode = toolchain.translation_input(llvm_only), toolchain.translation_input(other)
        invalid = ir.Module.parse("llvm.func @f(%x: i32) -> i32 { llvm.return %x : i32 }")
        invalid.body.operations[0].regions[0].blocks[0].operations[0].erase()  # no terminator left
        with pytest.raises(CompileError, match="failed to verify before translation"):
            toolchain.translation_input(invalid)  # verified first: the bindings would crash
    assert isinstance(text, str) and "define i32 @f(i32" in text
    assert isinstance(bytecode, bytes) and bytecode.startswith(b"ML\xefR")
    with tempfile.TemporaryDirectory() as tmp:
        build = toolchain._ObjectBuild(bytecode, Path(tmp), "v0", ["-mcpu=x86-64"])
        with pytest.raises(CompileError, match=r"^mlir-translate failed \(exit 101\)"):
            build.result()
        assert toolchain._ObjectBuild(text, Path(tmp), "v1", ["-mcpu=x86-64"]).result().stat().st_size > 0


def test_a_variant_whose_back_end_fails_fails_the_build(tmp_path, monkeypatch):
    """The CPU variants' back ends run side by side in threads: a pass failing in one
    (here the second) is the build's CompileError, no variant's tools outlive it, and
    nothing is cached; the next build succeeds."""
    import scanaot.targets.cpu as cpu
    import scanaot.targets.toolchain as toolchain
    from scanaot.passes.upstream import CompileError
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    real_to_llvm, started = cpu.to_llvm, []

    def failing(module, variant, manifest, stages):
        if variant["cpu"] == "x86-64-v3":
            raise CompileError("stage llvm: injected")
        real_to_llvm(module, variant, manifest, stages)

    real_build = toolchain._ObjectBuild.__init__

    def record(self, *args, **kwargs):
        real_build(self, *args, **kwargs)
        started.append(self.proc)

    monkeypatch.setattr(cpu, "to_llvm", failing)
    monkeypatch.setattr(toolchain._ObjectBuild, "__init__", record)
    inputs, output = power_graph()
    with pytest.raises(CompileError, match="injected"):
        scanaot.compile(inputs, output, name="power", out_dir=tmp_path / "out", cpu="portable")
    assert all(proc.poll() is not None for proc in started)
    assert not list((tmp_path / "cache").glob("*.so"))
    monkeypatch.setattr(cpu, "to_llvm", real_to_llvm)
    art = scanaot.compile(inputs, output, name="power", out_dir=tmp_path / "out", cpu="portable")
    assert art.library.exists()
