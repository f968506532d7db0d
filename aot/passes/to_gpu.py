"""The CUDA target's lowering, from the memref stage to the LLVM dialect with device code.

Design: the scan loop runs on the host; each step's tensor work becomes GPU kernels.
Every linalg op becomes `scf.parallel` loops, tiled 256 wide and mapped to blocks
and threads, outlined into one `gpu.module` (merged here: one module means one
`ptxas` run and one module load per library), then the upstream NVVM pipeline
turns kernels into PTX and the host side into LLVM calls of the `mgpu*` entry
points (provided by runtime/cuda_shim.c, linked into every cuda library).

Memory model: every buffer a kernel touches is CUDA managed memory. Host code
still reads and writes some buffers directly (rank-0 inputs such as `n_steps`,
scalar states kept in registers, `until` conditions), so internal allocations are
routed to the shim's managed allocator (`route_allocations`) and the runtime
passes managed buffers. `host_accessed_arguments` records in the manifest which
arguments host code dereferences: a caller's plain device pointer can be passed
straight to the kernel only for the others.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlir import ir
from mlir.dialects import gpu

from ..pipeline import CompileError, run_pipeline
from .allocators import MANAGED_ALLOCATORS, route_allocations
from .lower_scan import ops_named

DEFAULT_ARCH = "sm_90"
TILE = 256
TO_GPU = (
    "builtin.module(convert-linalg-to-parallel-loops,canonicalize,"
    f"func.func(scf-parallel-loop-tiling{{parallel-loop-tile-sizes={TILE} no-min-max-bounds=1}},"
    "gpu-map-parallel-loops,convert-parallel-loops-to-gpu),"
    "gpu-kernel-outlining,canonicalize,cse)"
)
# PTX ISA 8.0 is the oldest that knows sm_90; the pipeline's default (+ptx60) aborts on it
_NVVM = ("builtin.module(func.func(gpu-async-region),gpu-lower-to-nvvm-pipeline{{cubin-chip={arch} "
         "cubin-features=+ptx80 cubin-format=isa opt-level=3}},"
         "convert-math-to-funcs{{convert-ctlz=0}},convert-math-to-libm,convert-to-llvm,"
         "reconcile-unrealized-casts,canonicalize)")
_VIEWS = ("memref.subview", "memref.reinterpret_cast", "memref.cast", "memref.collapse_shape",
          "memref.expand_shape", "memref.view", "memref.transpose")
_HOST_MEMORY_OPS = ("memref.load", "memref.store", "memref.atomic_rmw", "memref.copy",
                    "vector.load", "vector.store", "vector.transfer_read", "vector.transfer_write")


def check_arch(arch: str) -> str:
    """`sm_XY` with XY >= 70 (Volta; the oldest the NVPTX backend's PTX 8.0 still targets)."""
    digits = arch[3:].rstrip("a")
    if not (arch.startswith("sm_") and digits.isdigit() and int(digits) >= 70):
        raise ValueError(f"arch {arch!r}: expected an NVIDIA architecture such as 'sm_90' (sm_70 or newer)")
    return arch


def to_gpu(module: ir.Module) -> None:
    """memref-stage module -> host functions launching the kernels of one `gpu.module`."""
    run_pipeline(module, TO_GPU, "gpu")
    merge_gpu_modules(module)


def merge_gpu_modules(module: ir.Module) -> None:
    """Move every outlined kernel into the first `gpu.module`, renamed after its old module."""
    gpu_modules = [op.operation for op in module.body.operations if op.operation.name == "gpu.module"]
    if len(gpu_modules) <= 1:
        return
    first = gpu_modules[0]
    first_name = ir.StringAttr(first.attributes["sym_name"]).value
    renames: dict[tuple[str, str], str] = {}
    anchor = list(first.regions[0].blocks[0].operations)[-1].operation
    for other in gpu_modules[1:]:
        mod_name = ir.StringAttr(other.attributes["sym_name"]).value
        for fn in list(other.regions[0].blocks[0].operations):
            fn = fn.operation
            if fn.name != "gpu.func":
                continue
            fn_name = ir.StringAttr(fn.attributes["sym_name"]).value
            renames[(mod_name, fn_name)] = mod_name
            fn.attributes["sym_name"] = ir.StringAttr.get(mod_name)
            fn.move_after(anchor)
            anchor = fn
        other.erase()

    for launch in ops_named(module.operation, "gpu.launch_func"):
        ref = str(launch.attributes["kernel"])  # @module::@kernel
        mod_name, fn_name = (p.lstrip("@") for p in ref.split("::"))
        if (mod_name, fn_name) in renames:
            launch.attributes["kernel"] = ir.SymbolRefAttr.get([first_name, renames[(mod_name, fn_name)]])


def host_accessed_arguments(module: ir.Module, function: str) -> set[int]:
    """Indices of `function`'s arguments that host code loads from or stores to."""
    func_op = next((op.operation for op in module.body.operations
                    if op.operation.name == "func.func"
                    and ir.StringAttr(op.operation.attributes["sym_name"]).value == function), None)
    if func_op is None:
        return set()
    entry = func_op.regions[0].blocks[0]
    n_args = len(entry.arguments)
    found: set[int] = set()

    def root(value: ir.Value) -> int | None:
        """The argument a memref value views, -1 for an allocation, None when unknown."""
        while True:
            if isinstance(value.owner, ir.Block):
                if value.owner == entry:
                    return ir.BlockArgument(value).arg_number
                return None
            owner = value.owner.operation if hasattr(value.owner, "operation") else value.owner
            if owner.name in _VIEWS:
                value = owner.operands[0]
                continue
            if owner.name in ("memref.alloc", "memref.alloca", "memref.get_global"):
                return -1
            return None

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name in _HOST_MEMORY_OPS:  # kernels are outlined: every op here runs on the host
            for operand in op.operands:
                if isinstance(operand.type, ir.MemRefType):
                    r = root(operand)
                    if r is None:  # unknown provenance: assume every argument
                        found.update(range(n_args))
                    elif r >= 0:
                        found.add(r)
        return ir.WalkResult.ADVANCE
    func_op.walk(visit)
    return found


def to_llvm(module: ir.Module, arch: str) -> None:
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
