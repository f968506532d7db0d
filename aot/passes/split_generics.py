"""split-large-generics: a pointwise generic with a huge body becomes a chain of small ones.

Source and target: linalg on tensors, after elementwise fusion (nothing fuses them
back). LLVM's loop vectorizer takes time superlinear in the size of a loop body: a
fused chain of 4000 elementwise ops (8000 instructions) spends 9 s in LoopVectorize
alone, 10^4 ops about 90 s. A body over MAX_BODY_OPS ops is cut into segments in
program order; each segment is a generic over the same loops whose results are the
values later segments read (one temporary element per crossing value), so every loop
LLVM sees stays small and still vectorizes. The cost is one store and one load per
crossing value per MAX_BODY_OPS ops of arithmetic.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from .ir_helpers import clone_mapped, indexing_maps, pointwise_generic
from .lower_scan import DYN, ops_named

MAX_BODY_OPS = 512


def split_large_generics(op: ir.Operation, pass_=None) -> None:
    """The pass: split every pointwise generic under `op` whose body is too large."""
    for generic in ops_named(op, "linalg.generic"):
        body = generic.regions[0].blocks[0]
        if len(body.operations) > MAX_BODY_OPS + 1 and pointwise_generic(generic, allow_index=True):
            _split(generic)


def _split(generic: ir.Operation) -> None:
    block = generic.regions[0].blocks[0]
    ops = list(block.operations)
    final = ops[-1].operands[0]  # linalg.yield's value
    body = ops[:-1]
    segments = [body[i:i + MAX_BODY_OPS] for i in range(0, len(body), MAX_BODY_OPS)]
    crossing = _crossing_values(segments, final)
    maps = indexing_maps(generic)
    inputs, init = list(generic.operands)[:-1], generic.operands[len(generic.operands) - 1]
    arguments = {hash(arg): (value, vmap) for arg, value, vmap in zip(block.arguments, inputs, maps)}
    last = None
    with ir.InsertionPoint(generic), generic.location:
        for index, segment in enumerate(segments):
            is_last = index == len(segments) - 1
            outputs = [final] if is_last else crossing[index]
            last = _segment(generic, segment, outputs, arguments, init if is_last else None, maps[-1])
    generic.results[0].replace_all_uses_with(last.results[0])
    generic.erase()


def _crossing_values(segments: list[list], final: ir.Value) -> list[list[ir.Value]]:
    """Per segment, the values it defines that a later segment (or the yield) reads."""
    defined_in = {hash(r): s for s, seg in enumerate(segments) for o in seg for r in o.results}
    crossing: list[dict[int, ir.Value]] = [{} for _ in segments]
    readers = [(s, list(o.operands)) for s, seg in enumerate(segments) for o in seg]
    readers.append((len(segments), [final]))
    for s, operands in readers:
        for v in operands:
            home = defined_in.get(hash(v))
            if home is not None and home < s:
                crossing[home][hash(v)] = v
    return [list(c.values()) for c in crossing]


def _segment(generic: ir.Operation, segment: list, outputs: list[ir.Value], arguments: dict,
             init: ir.Value | None, out_map: ir.AffineMap) -> ir.Operation:
    """One generic computing `segment`'s ops; its results are `outputs` (each recorded in
    `arguments` as a tensor later segments read with the output map), written into
    `init` for the last segment and into new tensors otherwise."""
    local = {hash(r) for o in segment for r in o.results}
    reads: dict[int, ir.Value] = {}
    for o in segment:
        for v in o.operands:
            if hash(v) not in local and hash(v) in arguments:
                reads.setdefault(hash(v), v)
    inits = [init] if init is not None else [_empty_like(generic, v.type) for v in outputs]
    read_list = list(reads.values())
    piece = linalg.GenericOp([i.type for i in inits], [arguments[hash(v)][0] for v in read_list], inits,
                             ir.ArrayAttr.get([ir.AffineMapAttr.get(arguments[hash(v)][1]) for v in read_list]
                                              + [ir.AffineMapAttr.get(out_map)] * len(inits)),
                             generic.attributes["iterator_types"])
    types = [v.type for v in read_list] + [ir.RankedTensorType(i.type).element_type for i in inits]
    block = piece.regions[0].blocks.append(*types)
    mapping = {hash(v): arg for v, arg in zip(read_list, block.arguments)}
    with ir.InsertionPoint(block):
        for o in segment:
            clone_mapped(o.operation, mapping)
        linalg.YieldOp([mapping.get(hash(v), v) for v in outputs])
    for k, v in enumerate(outputs):
        arguments[hash(v)] = (piece.results[k], out_map)
    return piece


def _empty_like(generic: ir.Operation, element: ir.Type) -> ir.Value:
    """A tensor shaped like the generic's output, of `element`s."""
    init = generic.operands[len(generic.operands) - 1]
    shape = ir.RankedTensorType(init.type).shape
    sizes = [size if size != DYN else tensor.dim(init, arith.constant(ir.IndexType.get(), axis))
             for axis, size in enumerate(shape)]
    return tensor.empty(sizes, element)
