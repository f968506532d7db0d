"""fuse-cheap-producers: a cheap elementwise producer is recomputed inside each consumer.

Source and target: linalg on tensors (after the elementwise fusions).

Upstream elementwise fusion and fuse-elementwise-trees only fuse a producer into
its only consumer. A logsumexp reads `alpha[:, None] + log_A` twice (for the max
and for the sum of exponentials): the sum is stored into a temporary by one loop
nest and read back by two. When the producer is cheap (fold-generator-reads' rule:
at most 8 adds, multiplies, compares, selects, casts or absolute values, no
division), each consumer computes it from the producer's own inputs instead (its
maps composed with the consumer's), the same arithmetic on the same elements, and
the producer goes. Only a producer that every reader can compute is fused: one
that a matmul still reads stays a buffer, and its readers read that.

Likewise a `linalg.fill` that loop-invariant code motion hoisted out of a loop,
whose result each step's reduction starts from: that step would copy the filled
buffer into its accumulator (a read and a write); the fill is made again where it
is used (a write).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import linalg

from .ir_helpers import cheap_generic, clone_mapped, indexing_maps, pointwise_generic
from .lower_scan import ops_named

MAX_ROUNDS = 8


def fuse_cheap_producers(module_op: ir.Operation, pass_=None) -> None:
    """The pass: repeat until no consumer has a cheap producer left (bounded)."""
    for fill in ops_named(module_op, "linalg.fill"):
        _fill_where_used(fill)
    for _ in range(MAX_ROUNDS):
        erased: set[int] = set()  # ops of this round's list already gone (fused or unused producers)
        for consumer in ops_named(module_op, "linalg.generic"):
            if hash(consumer) in erased:
                continue
            operand = _cheap_input(consumer)
            if operand is not None:
                erased.update(_fuse(consumer, operand))
        if not erased:
            return


def _producer(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    if not isinstance(owner, (ir.OpView, ir.Operation)):
        return None
    op = owner.operation
    if not (pointwise_generic(op) and cheap_generic(op)):
        return None
    out_map = indexing_maps(op)[-1]
    return op if out_map == ir.AffineMap.get_identity(out_map.n_dims) else None


def _cheap_input(consumer: ir.Operation) -> int | None:
    """The first input of `consumer` computed by a cheap pointwise generic."""
    if not _fusable_consumer(consumer):
        return None
    for i in range(len(consumer.operands) - 1):
        producer = _producer(consumer.operands[i])
        if producer is not None and _every_reader_fuses(producer):
            return i
    return None


def _fusable_consumer(op: ir.Operation) -> bool:
    # (a nested region would keep reading the old body's values)
    return (op.name == "linalg.generic" and len(op.results) == 1
            and not any(len(o.regions) for o in op.regions[0].blocks[0].operations))


def _every_reader_fuses(producer: ir.Operation) -> bool:
    """Each use of the producer is an input of a generic that can compute it: then
    the producer's buffer goes. (Fusing into some readers while another, a matmul,
    still needs the buffer only adds work: every fused reader reads the producer's
    inputs instead of one value.)"""
    for use in producer.results[0].uses:
        user = use.owner.operation
        if not _fusable_consumer(user) or use.operand_number >= len(user.operands) - 1:
            return False
        if not _covers_every_loop(_fused_maps(user, producer, use.operand_number)):
            return False
    return True


def _fused_maps(consumer: ir.Operation, producer: ir.Operation, i: int) -> list[ir.AffineMap]:
    """The fused generic's maps: the producer's inputs read through the consumer's map."""
    c_maps, p_maps = indexing_maps(consumer), indexing_maps(producer)
    via = c_maps[i]
    composed = [ir.AffineMap.get(via.n_dims, 0, [e.compose(via) for e in m.results]) for m in p_maps[:-1]]
    return c_maps[:i] + composed + c_maps[i + 1:]


def _covers_every_loop(maps: list[ir.AffineMap]) -> bool:
    """Every loop is some operand's dim (else linalg cannot size it: a producer whose
    inputs broadcast along a loop only its result ran over)."""
    seen = set()
    for m in maps:
        for expr in m.results:
            expr = expr.maybe_downcast()
            if isinstance(expr, ir.AffineDimExpr):
                seen.add(expr.position)
    return len(seen) == maps[0].n_dims


def _fuse(consumer: ir.Operation, i: int) -> list[int]:
    """Replace `consumer` by a generic computing its input `i` itself; the erased ops' hashes."""
    producer = _producer(consumer.operands[i])
    maps = _fused_maps(consumer, producer, i)
    c_inputs = list(consumer.operands)[:-1]
    p_inputs = list(producer.operands)[:-1]
    inputs = c_inputs[:i] + p_inputs + c_inputs[i + 1:]
    init = consumer.operands[len(consumer.operands) - 1]
    with ir.InsertionPoint(consumer), consumer.location:
        fused = linalg.GenericOp([init.type], inputs, [init],
                                 ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                                 consumer.attributes["iterator_types"])
        elems = [ir.RankedTensorType(v.type).element_type for v in (*inputs, init)]
        block = fused.regions[0].blocks.append(*elems)
    args = list(block.arguments)
    c_body, p_body = consumer.regions[0].blocks[0], producer.regions[0].blocks[0]
    c_args, p_args = list(c_body.arguments), list(p_body.arguments)
    with ir.InsertionPoint(block), consumer.location:
        values = {hash(a): args[i + k] for k, a in enumerate(p_args[:-1])}
        produced = _clone_body(p_body, values)
        c_values = {hash(a): args[k] for k, a in enumerate(c_args[:i])}
        c_values[hash(c_args[i])] = produced
        c_values.update({hash(a): args[i + len(p_inputs) + k] for k, a in enumerate(c_args[i + 1:-1])})
        c_values[hash(c_args[-1])] = args[-1]
        linalg.YieldOp([_clone_body(c_body, c_values)])
    consumer.results[0].replace_all_uses_with(fused.results[0])
    gone = [hash(consumer)]
    consumer.erase()
    if not len(list(producer.results[0].uses)):
        gone.append(hash(producer))
        producer.erase()
    return gone


def _clone_body(body: ir.Block, values: dict) -> ir.Value:
    """Clone a generic body's ops (operands looked up in `values`); its yielded value."""
    for inner in body.operations:
        if inner.name == "linalg.yield":
            return values.get(hash(inner.operands[0]), inner.operands[0])
        clone_mapped(inner.operation, values)
    raise ValueError("linalg.generic body without linalg.yield")


def _fill_where_used(fill: ir.Operation) -> None:
    """Re-make `fill` (and its tensor.empty) before each generic inside a loop that
    starts from it; the hoisted one goes if nothing else reads it."""
    init = fill.operands[1]
    empty = init.owner.operation if isinstance(init.owner, (ir.OpView, ir.Operation)) else None
    if empty is None or empty.name != "tensor.empty":
        return
    home = fill.parent
    for use in list(fill.results[0].uses):
        user = use.owner.operation
        if (user.name != "linalg.generic" or use.operand_number != len(user.operands) - 1
                or user.parent == home):
            continue
        with ir.InsertionPoint(user), user.location:
            fresh = linalg.fill(fill.operands[0], outs=[empty.clone().results[0]])
        user.operands[use.operand_number] = fresh
    if not len(list(fill.results[0].uses)):
        fill.erase()
        if not len(list(empty.results[0].uses)):
            empty.erase()
