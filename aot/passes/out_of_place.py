"""Which direct loop states a step must compute apart (used by lower-scan-to-scf).

A state kept "direct" (keep last, one tap) is one buffer that every step
overwrites through `bufferization.materialize_in_destination`, and
`eliminate-empty-tensors` makes the op computing the new value (its *writer*)
write straight into that carried buffer. That is right for elementwise steps
(`p * 2 + 1`, fused into one loop that reads each element before writing it)
and bufferization resolves any conflict among linalg/tensor ops by itself. It
fails ("cannot avoid RaW conflict") in two cases:

- the writer chain contains a loop (`dot(p, M)`: the matmul tiles, a `scan.matmul`
  call until tile-matmuls; an
  interchanged inner scan seeded by `p`; checkpoint chunks): upstream one-shot
  analysis rejects an `scf.for` rewired onto the carried buffer followed by the
  `materialize_in_destination` into that same buffer, even with no read of it;
- a loop (or any op that is not linalg/tensor) reads the state at or after the
  writer chain's first op (`(a * 2, dot(a, M))`): its read cannot be moved
  before the in-place write.

For those states the chain's `tensor.empty` becomes a
`bufferization.alloc_tensor`: the writer computes into a buffer of its own
(allocated once per loop by buffer-loop-hoisting when its sizes are
invariant), every read of the old state sees it intact, and the step ends by
copying the new value into the carried buffer: one pass over the state per
step, small beside a matmul or an inner scan.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import bufferization

from ..emit.builders import TILED_PRODUCT

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
    if op.name == "func.call" and TILED_PRODUCT in op.attributes:
        return len(op.operands) - 1  # a matrix product: its tile loops write into the last operand
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

