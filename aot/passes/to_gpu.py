"""to-gpu: the CUDA target's lowering from the memref stage to host functions that
launch GPU kernels (the NVVM lowering and device code follow in targets/cuda.py).

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

from mlir import ir

from .lower_scan import ops_named
from .upstream import run_pipeline

TILE = 256
TO_GPU = (
    "builtin.module(convert-linalg-to-parallel-loops,canonicalize,"
    f"func.func(scf-parallel-loop-tiling{{parallel-loop-tile-sizes={TILE} no-min-max-bounds=1}},"
    "gpu-map-parallel-loops,convert-parallel-loops-to-gpu),"
    "gpu-kernel-outlining,canonicalize,cse)"
)
_VIEWS = ("memref.subview", "memref.reinterpret_cast", "memref.cast", "memref.collapse_shape",
          "memref.expand_shape", "memref.view", "memref.transpose")
_HOST_MEMORY_OPS = ("memref.load", "memref.store", "memref.atomic_rmw", "memref.copy",
                    "vector.load", "vector.store", "vector.transfer_read", "vector.transfer_write")


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
