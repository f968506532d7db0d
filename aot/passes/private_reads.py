"""Which loop states a step must read from a private copy (used by lower-scan-to-scf).

A state kept "direct" (keep last, one tap) is one buffer that every step
overwrites: `eliminate-empty-tensors` makes the op computing the new value (its
*writer*) write straight into the carried buffer. That is right when nothing
reads the old value after the writer starts (`p * 2 + 1`, fused into one
elementwise loop). It is wrong when a read comes later: a writer that is a loop
reading the state while it writes (`dot(p, M)`: row 1 of the product still
reads row 0 of `p`; an interchanged inner scan seeded by `p`), or a later op
reading the old value (`(a * 2, dot(a, M))`). One-shot bufferization resolves
such conflicts by itself only when every op involved is a linalg/tensor op;
with a loop among them it fails ("cannot avoid RaW conflict"). For those
states the step reads a copy made at its start (one pass over the state per
step, beside the step's own work) and the writer still writes in place.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import bufferization

# ops whose tensor result is (a view of) their first operand
_VIEWS = ("tensor.cast", "tensor.extract_slice", "tensor.expand_shape", "tensor.collapse_shape",
          "tensor.reshape")
# ops writing into their second operand (the destination)
_INSERTS = ("tensor.insert", "tensor.insert_slice", "bufferization.materialize_in_destination")
# ops that start a fresh buffer: the chain of writers ends there
_FRESH = ("tensor.empty", "bufferization.alloc_tensor")


def keep_out_of_place(body: ir.Operation, arg_index: int, result_index: int) -> bool:
    """Make step function `body` compute its result `result_index` (the new value of
    the state read as argument `arg_index`) into a buffer of its own when writing
    it in place could not bufferize; returns whether it did.

    The writer chain's `tensor.empty` becomes a `bufferization.alloc_tensor`, which
    eliminate-empty-tensors leaves alone, so the loop copies the result into the
    carried buffer after the step (same values: both start undefined)."""
    block = body.regions[0].blocks[0]
    new_value = block.operations[len(block.operations) - 1].operands[result_index]
    writers, start = _writers(new_value)
    if start is None or not _conflicts(body, block.arguments[arg_index], writers):
        return False
    user, operand_number = start
    empty = user.operands[operand_number].owner
    with ir.InsertionPoint(user), user.location:
        fresh = bufferization.AllocTensorOp(user.operands[operand_number].type, list(empty.operands)).result
    user.operands[operand_number] = fresh
    return True


def _conflicts(body: ir.Operation, state: ir.Value, writers: list[ir.Operation]) -> bool:
    """Whether bufferization would fail on writing the chain in place: the chain has a
    loop, or a loop (anything not linalg/tensor) reads the state at or after the
    chain's first op."""
    tops = [_top_level(op, body) for op in writers]
    if any(_opaque(op) for op in tops):
        return True
    block = body.regions[0].blocks[0]
    position = {hash(op.operation): i for i, op in enumerate(block.operations)}
    first = min(position[hash(op)] for op in tops)
    for reader in _readers(state):
        top = _top_level(reader, body)
        if position[hash(top)] >= first and _opaque(top):
            return True
    return False


def _writers(value: ir.Value) -> tuple[list[ir.Operation], tuple[ir.Operation, int] | None]:
    """The ops that write into the buffer `value` ends up in, from the last back, and
    the (op, operand number) where the chain starts from a `tensor.empty` (None if it
    starts elsewhere): the chain eliminate-empty-tensors follows."""
    ops = []
    while isinstance(value.owner, (ir.OpView, ir.Operation)):
        op = value.owner.operation
        if op.name in _FRESH:
            break
        ops.append(op)
        operand = _written_operand(op, value)
        if operand is None:
            return ops, None
        value = op.operands[operand]
        if _is_empty(value):
            return ops, (op, operand)
    return ops, None


def _written_operand(op: ir.Operation, result: ir.Value) -> int | None:
    """The operand whose buffer `op` writes `result` into, if any."""
    if op.name in _VIEWS:
        return 0
    if op.name in _INSERTS:
        return 1
    if op.name.startswith("linalg.") and len(op.results):
        # destination-passing: result i is written into init i (the last operands)
        return len(op.operands) - len(op.results) + ir.OpResult(result).result_number
    if op.name == "scf.for":
        return 3 + ir.OpResult(result).result_number
    return None


def _is_empty(value: ir.Value) -> bool:
    owner = value.owner
    return isinstance(owner, (ir.OpView, ir.Operation)) and owner.operation.name == "tensor.empty"


def _readers(value: ir.Value) -> list[ir.Operation]:
    """Every op that may read `value`'s buffer: its users and those of its aliases
    (views of it, values written into it); `tensor.dim` reads no data."""
    found, pending, seen = [], [value], set()
    while pending:
        v = pending.pop()
        if hash(v) in seen:
            continue
        seen.add(hash(v))
        for use in v.uses:
            op = use.owner.operation
            if op.name == "tensor.dim":
                continue
            found.append(op)
            if _aliases_operand(op, use.operand_number):
                pending.extend(op.results)
    return found


def _aliases_operand(op: ir.Operation, operand_number: int) -> bool:
    """Whether `op`'s results may share the buffer of its operand `operand_number`."""
    if op.name in _VIEWS:
        return True
    if op.name in _INSERTS:
        return operand_number == 1
    if op.name.startswith("linalg."):
        return operand_number >= len(op.operands) - len(op.results)
    return False


def _opaque(op: ir.Operation) -> bool:
    """Ops one-shot bufferization cannot move out of place to resolve a conflict:
    loops (their regions read what they capture) and anything not linalg/tensor."""
    if op.name.startswith("linalg."):
        return False
    return len(op.regions) > 0 or not op.name.startswith(("tensor.", "bufferization."))


def _top_level(op: ir.Operation, body: ir.Operation) -> ir.Operation:
    """The op of `body`'s block that is or contains `op`."""
    while op.parent.operation != body:
        op = op.parent.operation
    return op

