"""The cuda target: the scan loop runs on the host, each step's tensor work as GPU
kernels (passes/to_gpu.py); here the NVVM lowering, ptxas, and the device code
embedded in the library (docs/cuda.md). Same names as targets/cpu.py.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from mlir import ir
from mlir.dialects import gpu

from .symbols import kernel_symbol
from ..passes import to_gpu
from ..passes.allocators import MANAGED_ALLOCATORS, route_allocations
from ..passes.copies import copies_to_linalg
from ..passes.upstream import CompileError, run_pipeline
from . import cpu_features

DISPATCH_BY_CPU = False
TILED_MATMULS = False  # products are linalg.generic contractions, (i, j) mapped to GPU threads
RUNTIME_SOURCES = ("cuda_shim.c",)
EXTRA_EXPORTS = ("scanaot_cuda_*",)
DEFAULT_ARCH = "sm_90"
# PTX ISA 8.0 is the oldest that knows sm_90; the pipeline's default (+ptx60) aborts on it
_NVVM = ("builtin.module(func.func(gpu-async-region),gpu-lower-to-nvvm-pipeline{{cubin-chip={arch} "
         "cubin-features=+ptx80 cubin-format=isa opt-level=3}},"
         "convert-math-to-funcs{{convert-ctlz=0}},convert-math-to-libm,convert-to-llvm,"
         "reconcile-unrealized-casts,canonicalize)")

def check_arch(arch: str) -> str:
    """`sm_XY` with XY >= 70 (Volta; the oldest the NVPTX backend's PTX 8.0 still targets)."""
    digits = arch[3:].rstrip("a")
    if not (arch.startswith("sm_") and digits.isdigit() and int(digits) >= 70):
        raise ValueError(f"arch {arch!r}: expected an NVIDIA architecture such as 'sm_90' (sm_70 or newer)")
    return arch


def lower_to_nvvm(module: ir.Module, arch: str) -> None:
    """GPU-stage module -> LLVM dialect; the kernels become one PTX object."""
    run_pipeline(module, _NVVM.format(arch=arch), "llvm")
    # host-side memref allocations -> managed memory from the shim (see the module docstring)
    route_allocations(module, MANAGED_ALLOCATORS)


def device_objects(module: ir.Module) -> list[tuple[ir.Operation, str]]:
    """(gpu.binary op, PTX text) for each binary in the module."""
    found = []
    for op in module.body.operations:
        op = op.operation
        if op.name == "gpu.binary":
            for attr in op.attributes["objects"]:
                obj = gpu.ObjectAttr(attr)
                data = obj.object
                found.append((op, data.decode() if isinstance(data, bytes) else data))
    return found


def ptxas_path() -> str | None:
    """ptxas: $SCANAOT_PTXAS (a path, or "none" to embed PTX), else $CUDA_HOME/bin,
    /usr/local/cuda/bin or PATH; None when absent."""
    chosen = os.environ.get("SCANAOT_PTXAS")
    if chosen:
        if chosen == "none":
            return None
        if not Path(chosen).exists():
            raise CompileError(f"SCANAOT_PTXAS={chosen!r}: no such file")
        return chosen
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "ptxas").exists():
            return str(Path(root) / "bin" / "ptxas")
    return shutil.which("ptxas")


def ptxas_version() -> str | None:
    """ptxas's release line (recorded in the manifest and the cache key), None without ptxas."""
    path = ptxas_path()
    return None if path is None else _version_of(path)


@functools.lru_cache(maxsize=None)
def _version_of(path: str) -> str | None:
    proc = subprocess.run([path, "--version"], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    release = [line for line in lines if "release" in line]
    return (release or lines)[-1] if proc.returncode == 0 and lines else None


def assemble(ptx: str, arch: str, ptxas: str) -> bytes:
    """PTX -> cubin with ptxas (which also validates the PTX)."""
    with tempfile.TemporaryDirectory(prefix="scanaot-ptx-") as tmp:
        src, out = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        proc = subprocess.run([ptxas, f"-arch={arch}", "-O3", str(src), "-o", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"ptxas rejected the generated PTX for {arch}:\n{proc.stderr.strip()[-4000:]}")
        return out.read_bytes()


def embed_device_code(module: ir.Module, arch: str, use_ptxas: bool = True) -> dict:
    """Replace each PTX object by a cubin when ptxas is found; returns the manifest's record."""
    objects = device_objects(module)
    ptxas = ptxas_path() if use_ptxas else None
    if not objects:
        return {"format": "none", "arch": arch, "kernels": 0}
    if ptxas is None:
        return {"format": "ptx", "arch": arch, "kernels": _kernel_count(objects)}
    for op, ptx in objects:
        cubin = assemble(ptx, arch, ptxas)
        old = gpu.ObjectAttr(op.attributes["objects"][0])
        new = gpu.ObjectAttr.get(old.target, gpu.CompilationTarget.Binary, cubin, old.properties)
        op.attributes["objects"] = ir.ArrayAttr.get([new])
    return {"format": "cubin", "arch": arch, "kernels": _kernel_count(objects)}


def _kernel_count(objects) -> int:
    return sum(ptx.count(".entry ") for _, ptx in objects)


def record(cpu: str | Sequence[str] | None, arch: str | None, default_cpu: str) -> dict:
    """The host code's CPU level, the GPU architecture and the ptxas that checks the PTX."""
    found = cpu_features.variants(cpu, default=default_cpu, cuda=True)
    label = cpu if isinstance(cpu, str) else ",".join(cpu) if cpu else found[0]["cpu"]
    return {"cpu": label, "variants": found, "arch": check_arch(arch or DEFAULT_ARCH),
            "ptxas": ptxas_version()}


def front_end_keys(module: ir.Module, variants: Sequence[dict]) -> list[None]:
    return [None] * len(variants)  # one front end


def before_lowering(module: ir.Module, variant: dict) -> None:
    pass


def before_bufferization(module: ir.Module) -> None:
    pass  # products are linalg.generic contractions already: (i, j) map to GPU threads


def share(module: ir.Module, variants: Sequence[dict]) -> None:
    return None  # one host variant


def specialize(module: ir.Module, variant: dict) -> None:
    pass  # one variant


def after_bufferization(module: ir.Module) -> None:
    copies_to_linalg(module)  # every copy a GPU kernel


def to_llvm(module: ir.Module, variant: dict, manifest: dict, stages: dict) -> None:
    """GPU kernels outlined (the `gpu` stage), which arguments host code reads into the
    manifest, then NVVM/PTX and the device code embedded."""
    to_gpu.to_gpu(module)
    stages["gpu"] = module.operation.clone()
    target = manifest["target"]
    for f in manifest["functions"]:
        accessed = to_gpu.host_accessed_arguments(module, kernel_symbol(f["name"]))
        for i, a in enumerate(f["args"]):
            a["host_access"] = i in accessed
        for j, o in enumerate(f["outputs"]):
            o["host_access"] = len(f["args"]) + j in accessed
    lower_to_nvvm(module, target["arch"])
    target["device_code"] = embed_device_code(module, target["arch"])
