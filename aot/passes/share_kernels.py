"""share-kernels (cpu, libraries of several CPU variants): the code every variant
would compile alike is compiled once.

Source and target: memref (the end of the front end the variants share: pipeline.py).

A portable library holds one copy of each kernel per CPU variant (targets/dispatch.py
binds one at load), yet only some of a kernel's ops differ between variants: the
matrix products (tile-matmuls) and the loops vectorize-generics writes at the
variant's vector width. The rest (the shape checks, allocations, the scan loops,
copies, address arithmetic) was lowered, optimized and compiled once per variant:
on the GRU gradient 60% of each variant's LLVM IR. Here:

1. each variant-specific op (`is_part`; a zero fill travels with the product after
   it, so the tile still drops it) moves into a private function `scanaot_part_N`
   (outline_tiles.outline_ops); parts that print the same are one (the GRU
   gradient's 66 ops are 32 parts: one op a part merges more of them than runs of
   ops did, 12% less LLVM IR a variant);
2. the module splits in two. The *shared* module holds each kernel's body as
   `scanaot_shared_FUNCTION`, which calls its parts through function arguments
   (`func.call_indirect`); it is lowered and compiled once, for the least capable
   variant (whose instructions every variant's CPU has). The *variant* module keeps
   the parts and, in place of each kernel's body, a call of the shared body passing
   the parts' addresses; each variant lowers and compiles its copy, so the parts
   get its tiles and vector width and the entry points its name (dispatch.py).

A part runs a whole loop nest per call (an elementwise op over a batch, a matrix
product), and `MIN_PARTS` keeps small kernels, whose copies cost little to compile
and whose steps may be short, as they were.
"""
from __future__ import annotations

from typing import Callable

from mlir import ir
from mlir.dialects import func

from .outline_tiles import outline_ops, same_as
from .upstream import run_pipeline

PART_PREFIX = "scanaot_part_"
# below this many variant-specific ops in a module its variants' copies are compiled
# as before: the split saves each variant the shared code (W10, the GRU gradient: 66
# ops; W5, the RNN gradient: 19; the suite's other kernels at most 6) and costs a
# call per part (docs/dialect.md)
MIN_PARTS = 8
_C_INTERFACE = "llvm.emit_c_interface"


def share_kernels(module: ir.Module, is_part: Callable[[ir.Operation], bool],
                  shared_name: Callable[[str], str]) -> ir.Operation | None:
    """The pass: outline the parts of every public kernel of `module` (turned into the
    variant module in place) and return the shared module (a builtin.module op in
    the same context); None, and `module` untouched, where the kernels have fewer
    than MIN_PARTS parts. `shared_name(kernel)`: the symbol of a kernel's shared body."""
    kernels = [op.operation for op in module.body.operations
               if op.operation.name == "func.func" and _C_INTERFACE in op.operation.attributes]
    parts = [part for kernel in kernels for part in _parts(kernel, is_part)]
    if len(parts) < MIN_PARTS or any(len(k.regions[0].blocks) != 1 for k in kernels):
        return None
    made: dict[str, str] = {}  # a part's text (its name left out) -> its name
    for number, ops in enumerate(parts):
        fn, call = outline_ops(module, ops, f"{PART_PREFIX}{number}")
        same = same_as(fn, made)
        if same is not None:
            call.attributes["callee"] = ir.FlatSymbolRefAttr.get(same)
            fn.erase()
    shared = module.operation.clone()
    for op in shared.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and _C_INTERFACE in op.operation.attributes:
            _as_shared_body(op.operation, shared_name)
    run_pipeline(shared, "builtin.module(symbol-dce)", "memref")  # the parts go
    for kernel in kernels:
        _as_call_of_shared_body(module, kernel, shared_name)
    run_pipeline(module, "builtin.module(symbol-dce)", "memref")  # what only the bodies used goes
    return shared


def _parts(fn: ir.Operation, is_part: Callable[[ir.Operation], bool]) -> list[list[ir.Operation]]:
    """The ops of `fn` for which `is_part` holds (ops without results, searched in
    every block; others are searched inside), one part each, except that a fill joins
    the part right after it (a product's tile drops the zero fill of its output)."""
    parts: list[list[ir.Operation]] = []

    def search(block: ir.Block) -> None:
        fill: list[ir.Operation] = []
        for op in block.operations:
            op = op.operation
            if not len(op.results) and is_part(op):
                if op.name == "linalg.fill":
                    parts.extend([fill] if fill else [])
                    fill = [op]
                else:
                    parts.append(fill + [op])
                    fill = []
                continue
            parts.extend([fill] if fill else [])
            fill = []
            for region in op.regions:
                for inner in region.blocks:
                    search(inner)
        parts.extend([fill] if fill else [])

    search(fn.regions[0].blocks[0])
    return parts


def _as_shared_body(kernel: ir.Operation, shared_name: Callable[[str], str]) -> None:
    """The kernel renamed `shared_name(its name)`, with one function argument per part
    it calls, each call made through it."""
    kernel.attributes["sym_name"] = ir.StringAttr.get(shared_name(ir.StringAttr(kernel.attributes["sym_name"]).value))
    del kernel.attributes[_C_INTERFACE]
    if "arg_attrs" in kernel.attributes:
        del kernel.attributes["arg_attrs"]
    entry = kernel.regions[0].blocks[0]
    parts: dict[str, ir.Value] = {}
    for call in _part_calls(kernel):
        callee = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
        if callee not in parts:
            parts[callee] = entry.add_argument(_callee_type(call), call.location)
        with ir.InsertionPoint(call), call.location:
            func.CallIndirectOp([], parts[callee], list(call.operands))
        call.erase()
    old = ir.FunctionType(ir.TypeAttr(kernel.attributes["function_type"]).value)
    kernel.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([a.type for a in entry.arguments], old.results))


def _as_call_of_shared_body(module: ir.Module, kernel: ir.Operation, shared_name: Callable[[str], str]) -> None:
    """The kernel's body replaced by a call of its shared body passing the addresses of
    the parts it called, in the order `_as_shared_body` added them (of first call)."""
    name = ir.StringAttr(kernel.attributes["sym_name"]).value
    entry = kernel.regions[0].blocks[0]
    first_calls: dict[str, ir.Type] = {}
    for call in _part_calls(kernel):
        first_calls.setdefault(ir.FlatSymbolRefAttr(call.attributes["callee"]).value, _callee_type(call))
    for op in reversed(list(entry.operations)):
        op.operation.erase()
    old = ir.FunctionType(ir.TypeAttr(kernel.attributes["function_type"]).value)
    shared_type = ir.FunctionType.get([*old.inputs, *first_calls.values()], old.results)
    with ir.InsertionPoint(module.body), kernel.location:
        func.FuncOp(shared_name(name), shared_type, visibility="private")
    with ir.InsertionPoint(entry), kernel.location:
        addresses = [func.ConstantOp(t, ir.FlatSymbolRefAttr.get(p)).result for p, t in first_calls.items()]
        result = func.CallOp(list(old.results), ir.FlatSymbolRefAttr.get(shared_name(name)),
                             [*entry.arguments, *addresses])
        func.ReturnOp(list(result.results))


def _part_calls(kernel: ir.Operation) -> list[ir.Operation]:
    found = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == "func.call" and ir.FlatSymbolRefAttr(op.attributes["callee"]).value.startswith(PART_PREFIX):
            found.append(op)
        return ir.WalkResult.ADVANCE

    kernel.walk(visit)
    return found


def _callee_type(call: ir.Operation) -> ir.FunctionType:
    return ir.FunctionType.get([v.type for v in call.operands], [r.type for r in call.results])
