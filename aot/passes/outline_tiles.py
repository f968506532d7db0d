"""outline-tiles (cpu): each matrix product's register-tiled loop nest becomes a call
of a function holding the nest, one function for all the products whose nests are
the same code.

Source and target: memref (after bufferization and output-in-place).

tile-matmuls expands every product in place (passes/tile_matmuls.py) and marks the
outermost loop of its nest `scan.tile`. Inline, each product is its own copy of the
tile's code: with eight rows of accumulators about 200 lines of LLVM dialect, which
every CPU variant sends through the LLVM lowering, opt and llc again; the GRU
gradient has eleven products. Here each nest moves into a private function whose
arguments are the values the nest reads from outside it (buffers, sizes, the
enclosing loops' indices; constants are made again inside); a buffer whose strides
are all dynamic but the inner unit stride is cast to that layout (so products over
an allocation and over a subview share a function); then functions that print the
same (but for their names) are merged. A product runs thousands of multiply-adds
per call: the call costs nothing measurable, and LLVM sees the same loops (the
inner stride stays 1, a static stride stays static).

A nest that yields values (not one here: the tile writes through its buffers) stays
where it is.
"""
from __future__ import annotations

from typing import Callable

from mlir import ir
from mlir.dialects import func, memref

from .lower_scan import ops_named
from .tile_matmuls import TILE_NEST


def outline_tiles(module: ir.Module) -> None:
    """The pass."""
    nests = [op for op in ops_named(module.operation, "scf.for") if TILE_NEST in op.attributes]
    made: dict[str, str] = {}  # the function's text (its name left out) -> its name
    for number, nest in enumerate(nests):
        if len(nest.results):
            continue
        fn, call = outline_ops(module, [nest], f"scanaot_tile_{number}", lambda v: _as_tile_argument(v, nest))
        same = same_as(fn, made)
        if same is not None:
            call.attributes["callee"] = ir.FlatSymbolRefAttr.get(same)
            fn.erase()


def outline_ops(module: ir.Module, run: list[ir.Operation], name: str,
                argument: Callable[[ir.Value], ir.Value] = lambda v: v) -> tuple[ir.Operation, ir.Operation]:
    """Move `run` (consecutive ops of one block, without results) into a new private
    function `name` whose arguments are `argument(v)` of each value v the ops read from
    outside them (constants are made again inside); a call of it takes their place."""
    ops = [inner for op in run for inner in ops_named(op, None)]  # the same ops once moved: walked once
    constants, free = _values_read_from_outside(ops)
    free_args = [argument(v) for v in free]
    first = run[0]
    with ir.InsertionPoint(module.body), first.location:
        fn = func.FuncOp(name, ([a.type for a in free_args], []), visibility="private")
        entry = fn.add_entry_block()
    with ir.InsertionPoint(entry), first.location:
        local = {hash(c.results[0]): c.clone().results[0] for c in constants}
        ret = func.ReturnOp([])
    with ir.InsertionPoint(first), first.location:
        call = func.CallOp([], ir.FlatSymbolRefAttr.get(name), free_args)
    for op in run:
        op.move_before(ret.operation)
    local.update({hash(v): arg for v, arg in zip(free, entry.arguments)})
    for op in ops:
        for i, operand in enumerate(op.operands):
            if hash(operand) in local:
                op.operands[i] = local[hash(operand)]
    return fn.operation, call.operation


def same_as(fn: ir.Operation, made: dict[str, str]) -> str | None:
    """The name of the function in `made` (text without the name -> name) that prints
    like `fn`; None, and `fn` added to `made`, if there is none."""
    text = _text_without_name(fn)
    if text in made:
        return made[text]
    made[text] = ir.StringAttr(fn.attributes["sym_name"]).value
    return None


def _values_read_from_outside(ops: list[ir.Operation]) -> tuple[list[ir.Operation], list[ir.Value]]:
    """(constant ops, other values) that `ops` (a nest and the ops under it) read and do
    not define, each once, in order of first use (so nests of the same code list them
    alike)."""
    inside = {hash(op) for op in ops}
    constants: dict[int, ir.Operation] = {}
    free: dict[int, ir.Value] = {}
    for op in ops:
        for value in op.operands:
            owner = _defining_scope(value)
            if hash(owner) in inside or hash(value) in free or hash(value) in constants:
                continue
            if owner.name == "arith.constant":
                constants[hash(value)] = owner
            else:
                free[hash(value)] = value
    # one order for equal sets (by value: printing an op inside a module prints its scope)
    ordered = sorted(constants.values(), key=lambda c: str(c.attributes["value"]))
    return ordered, list(free.values())


def _defining_scope(value: ir.Value) -> ir.Operation:
    """The op defining `value`, or the op whose region has it as a block argument."""
    owner = value.owner
    if isinstance(owner, ir.Block):
        return owner.owner.operation
    return owner.operation


def _as_tile_argument(value: ir.Value, nest: ir.Operation) -> ir.Value:
    """`value`; a buffer cast to the layout of dynamic strides and offset with unit inner
    stride (the tile reads its rows as vectors) when its own says no more than that."""
    mtype = value.type.maybe_downcast()
    if not isinstance(mtype, ir.MemRefType):
        return value
    wanted = _dynamic_layout(mtype)
    if wanted is None or wanted == mtype:
        return value
    with ir.InsertionPoint(nest), nest.location:
        return memref.cast(wanted, value)


def _dynamic_layout(mtype: ir.MemRefType) -> ir.MemRefType | None:
    """`mtype` with strides (but the innermost, 1) and offset dynamic; None where its
    inner stride is not 1 or another stride is static (the panels' stride of a lane
    count: a static stride of a k loop's read is an add, a dynamic one a multiply)."""
    strides, _ = mtype.get_strides_and_offset()
    dynamic = ir.ShapedType.get_dynamic_stride_or_offset()
    if not strides or strides[-1] != 1 or any(s != dynamic for s in strides[:-1]):
        return None
    layout = ir.StridedLayoutAttr.get(dynamic, [dynamic] * (mtype.rank - 1) + [1])
    return ir.MemRefType.get(mtype.shape, mtype.element_type, layout, mtype.memory_space)


def _text_without_name(fn: ir.Operation) -> str:
    name = ir.StringAttr(fn.attributes["sym_name"]).value
    return fn.get_asm(use_local_scope=True).replace(f"@{name}(", "@(", 1)
