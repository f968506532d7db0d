"""output-in-place: compute a result straight into the caller's output buffer.

Source and target: memref (after bufferization).

A kernel's result is computed into a temporary and its first rows copied into the
caller's output buffer, because the caller's buffer may be smaller than the
result (a flagged error, and the copy is clamped to stay inside it). When the
buffer has exactly the result's shape, which is what the runtime passes, the
temporary is needless: for every `memref.copy` from a prefix of an allocation to
the same prefix of an output argument, the allocation becomes

    %buf = scf.if (out's dims == the allocation's dims) { out } else { alloc }

and the copy and the deallocation run only on the allocated path. This saves
the allocation, its page faults and one pass over the result (the guide's
triangular numbers: 4 MB; the W4 RNN's stacked states: 32 MB).

Callers must not pass an output buffer that overlaps an input (the C ABI's
`restrict`, checked by the Python runtime for `out=`): the result is written
while the inputs are still being read.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, memref, scf

from .ir_helpers import defining_op
from .lower_scan import ops_named


def _same_prefix(a: ir.Operation, b: ir.Operation) -> bool:
    """Two subviews taking the same zero-offset, unit-stride window."""
    if [hash(v) for v in list(a.operands)[1:]] != [hash(v) for v in list(b.operands)[1:]]:
        return False
    offsets, strides = (list(ir.DenseI64ArrayAttr(a.attributes[k])) for k in ("static_offsets", "static_strides"))
    return (offsets == [0] * len(offsets) and strides == [1] * len(strides)
            and all(str(a.attributes[k]) == str(b.attributes[k])
                    for k in ("static_offsets", "static_sizes", "static_strides")))


def _top_level(op: ir.Operation, block_ops: dict) -> int | None:
    """Position in the function's body of the top-level op containing `op`."""
    while hash(op) not in block_ops:
        parent = op.parent
        if parent is None or parent.name == "func.func":
            return None
        op = parent
    return block_ops[hash(op)]


def _match(copy: ir.Operation, arguments: list, block_ops: dict):
    source, target = (defining_op(v, "memref.subview") for v in copy.operands)
    if source is None or target is None or not _same_prefix(source, target):
        return None
    alloc = defining_op(source.operands[0], "memref.alloc")
    out = target.operands[0]
    if alloc is None or hash(out) not in arguments or alloc.results[0].type != out.type:
        return None
    if hash(alloc) not in block_ops or len(list(source.results[0].uses)) != 1:
        return None
    here = block_ops[hash(copy)]
    dealloc = None
    for use in alloc.results[0].uses:
        user = use.owner.operation
        if user.name == "memref.dealloc" and block_ops.get(hash(user), -1) > here:
            dealloc = user
        elif hash(user) != hash(source):
            position = _top_level(user, block_ops)
            if position is None or position >= here:
                return None  # read after the copy: it must stay a temporary
    for use in out.uses:
        user = use.owner.operation
        if user.name != "memref.dim" and hash(user) != hash(target):
            return None
    return alloc, out, dealloc


def _only_if(condition: ir.Value, op: ir.Operation) -> None:
    with ir.InsertionPoint(op), op.location:
        branch = scf.IfOp(condition)
        with ir.InsertionPoint(branch.then_block):
            end = scf.YieldOp([])
    op.move_before(end)


def output_in_place(module_op: ir.Operation) -> None:
    """The pass."""
    for fn in ops_named(module_op, "func.func"):
        if not fn.regions[0].blocks:
            continue
        block = fn.regions[0].blocks[0]
        arguments = {hash(a) for a in block.arguments}
        block_ops = {hash(op.operation): i for i, op in enumerate(block.operations)}
        found = []
        for op in block.operations:
            if op.operation.name == "memref.copy":
                match = _match(op.operation, arguments, block_ops)
                if match is not None:
                    found.append((op.operation, *match))
        for copy, alloc, out, dealloc in found:
            _rewrite(copy, alloc, out, dealloc)


def _rewrite(copy: ir.Operation, alloc: ir.Operation, out: ir.Value, dealloc: ir.Operation | None) -> None:
    mtype = ir.MemRefType(out.type)
    with ir.InsertionPoint(alloc), alloc.location:
        sizes = iter(alloc.operands)
        fits = arith.constant(ir.IntegerType.get_signless(1), 1)
        for axis, static in enumerate(mtype.shape):
            want = next(sizes) if static == ir.ShapedType.get_dynamic_size() else arith.constant(
                ir.IndexType.get(), static)
            got = memref.dim(out, arith.constant(ir.IndexType.get(), axis))
            fits = arith.andi(fits, arith.cmpi(arith.CmpIPredicate.eq, want, got))
        branch = scf.IfOp(fits, [mtype], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            scf.YieldOp([out])
        with ir.InsertionPoint(branch.else_block):
            fresh = alloc.clone()
            scf.YieldOp([fresh.results[0]])
        allocated = arith.xori(fits, arith.constant(ir.IntegerType.get_signless(1), 1))
    alloc.results[0].replace_all_uses_with(branch.results[0])
    alloc.erase()
    _only_if(allocated, copy)
    if dealloc is not None:
        _only_if(allocated, dealloc)
