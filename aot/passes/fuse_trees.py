"""fuse-elementwise-trees: a tree of pointwise generics becomes one generic, in linear time.

Source and target: linalg on tensors (after inlining and canonicalize).

Upstream `linalg-fuse-elementwise-ops` fuses one producer into its consumer at a
time and clones the fused body each time, so a chain of n elementwise ops
(`y = y * 1.0001 + 0.5`, 10^4 times) costs O(n^2): minutes at n = 10^4. This
pass fuses the common case first, cloning every body once: a root generic and,
recursively, each input produced by a pointwise generic (ir_helpers) that the
root alone uses, read and written with identity maps over the same loops (so
both compute the same element). Leaf inputs keep their own maps; identical leaf
operands are passed once. The upstream pass then fuses what remains (broadcasts,
permutations), which is small.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import linalg

from .ir_helpers import clone_mapped, indexing_maps, pointwise_generic
from .lower_scan import ops_named


def fuse_elementwise_trees(op: ir.Operation, pass_=None) -> None:
    """The pass: fuse every tree under `op`, roots taken from the last generic up.
    Trees are disjoint; all are found before any is rebuilt (erased ops lose their
    identity)."""
    members: set[int] = set()
    trees = []
    for root in reversed(ops_named(op, "linalg.generic")):
        if hash(root) in members or not pointwise_generic(root, allow_index=True):
            continue
        tree = _tree(root)
        members.update(hash(member) for member in tree)
        if len(tree) > 1:
            trees.append(tree)
    for tree in trees:
        _rebuild(tree[0], tree)


def _inputs(op: ir.Operation) -> list[ir.Value]:
    return list(op.operands)[:len(op.operands) - 1]


def _fusible_producer(value: ir.Value, consumer_map: ir.AffineMap, loops: int) -> ir.Operation | None:
    """The generic defining `value` if it can be computed inside its only consumer."""
    owner = value.owner
    if not isinstance(owner, (ir.OpView, ir.Operation)):
        return None
    producer = owner.operation
    if not pointwise_generic(producer, allow_index=True) or len(list(value.uses)) != 1:
        return None
    identity = ir.AffineMap.get_identity(loops)
    if consumer_map != identity or indexing_maps(producer)[-1] != identity:
        return None
    return producer


def _tree(root: ir.Operation) -> list[ir.Operation]:
    """Root first, then every op fused into it (each after its consumer)."""
    loops = len(ir.ArrayAttr(root.attributes["iterator_types"]))
    tree, pending = [], [root]
    while pending:
        op = pending.pop()
        tree.append(op)
        for value, vmap in zip(_inputs(op), indexing_maps(op)):
            producer = _fusible_producer(value, vmap, loops)
            if producer is not None:
                pending.append(producer)
    return tree


def _rebuild(root: ir.Operation, tree: list[ir.Operation]) -> None:
    """Replace the tree by one generic whose body runs every member's body in turn."""
    members = {hash(op) for op in tree}
    leaves: dict[tuple, int] = {}
    leaf_values, leaf_maps = [], []
    for op in tree:
        for value, vmap in zip(_inputs(op), indexing_maps(op)):
            if _member_result(value, members):
                continue
            key = (hash(value), str(vmap))
            if key not in leaves:
                leaves[key] = len(leaf_values)
                leaf_values.append(value)
                leaf_maps.append(vmap)
    init = list(root.operands)[-1]
    with ir.InsertionPoint(root), root.location:
        fused = linalg.GenericOp([init.type], leaf_values, [init],
                                 ir.ArrayAttr.get([ir.AffineMapAttr.get(m)
                                                   for m in leaf_maps + [indexing_maps(root)[-1]]]),
                                 root.attributes["iterator_types"])
        elems = [ir.RankedTensorType(v.type).element_type for v in (*leaf_values, init)]
        block = fused.regions[0].blocks.append(*elems)
    with ir.InsertionPoint(block), root.location:
        values: dict[int, ir.Value] = {}
        for op in reversed(tree):   # producers before their consumers
            _inline_body(op, block, leaves, values, members)
        linalg.YieldOp([values[hash(root.results[0])]])
    root.results[0].replace_all_uses_with(fused.results[0])
    for op in tree:                 # consumers before their producers
        op.erase()


def _member_result(value: ir.Value, members: set[int]) -> bool:
    owner = value.owner
    return isinstance(owner, (ir.OpView, ir.Operation)) and hash(owner.operation) in members


def _inline_body(op: ir.Operation, block: ir.Block, leaves: dict, values: dict, members: set[int]) -> None:
    """Clone `op`'s body into the fused `block`; record its yielded element as `op`'s result."""
    body = op.regions[0].blocks[0]
    mapping: dict[int, ir.Value] = {}
    for arg, value, vmap in zip(body.arguments, _inputs(op), indexing_maps(op)):
        if _member_result(value, members):
            mapping[hash(arg)] = values[hash(value)]
        else:
            mapping[hash(arg)] = block.arguments[leaves[(hash(value), str(vmap))]]
    mapping[hash(body.arguments[len(body.arguments) - 1])] = block.arguments[len(block.arguments) - 1]
    for inner in body.operations:
        if inner.name == "linalg.yield":
            values[hash(op.results[0])] = mapping.get(hash(inner.operands[0]), inner.operands[0])
        else:
            clone_mapped(inner.operation, mapping)
