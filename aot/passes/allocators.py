"""route-allocations: the kernel's malloc/aligned_alloc/free calls go to an allocator
compiled into the library.

Source and target: LLVM dialect. cpu libraries use runtime/cpu_alloc.c (large
temporaries on transparent huge pages); cuda libraries use the driver shim's
managed memory (runtime/cuda_shim.c). Every allocation function is renamed
together, so no block is ever freed by an allocator that did not make it.
"""
from __future__ import annotations

from mlir import ir


HUGE_PAGE_ALLOCATORS = {"malloc": "scanaot_alloc", "aligned_alloc": "scanaot_aligned_alloc",
                        "free": "scanaot_free"}
MANAGED_ALLOCATORS = {"malloc": "scanaot_cuda_alloc", "aligned_alloc": "scanaot_cuda_aligned_alloc",
                      "free": "scanaot_cuda_free"}


def route_allocations(module: ir.Module, allocators: dict[str, str]) -> None:
    """Rename the declarations and calls of libc's allocation functions (the calls by
    the symbol table, in C++: a walk calling Python for each of a kernel's ops cost
    more than the rest of the pass)."""
    for op in module.body.operations:
        op = op.operation
        if op.name == "llvm.func":
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name in allocators:
                op.attributes["sym_name"] = ir.StringAttr.get(allocators[name])
                ir.SymbolTable.replace_all_symbol_uses(name, allocators[name], module.operation)
