"""fold-generator-reads: an element read from a generated tensor is computed in place.

Source and target: tensor + linalg + arith (after the step bodies are inlined).

`arange(n)` used as a scan sequence is a `linalg.generic` whose body computes
each element from its index; the loop then reads element t each step.
Materialized, that is an n-element buffer written once and read once (4 MB for
the guide's triangular numbers at 10**6 steps). Pattern (MLIR rewrite API):
`tensor.extract %g[%i...]` of an elementwise generic read only by extracts ->
its body with `linalg.index d` replaced by `%i_d` and each input read as
`tensor.extract` at the index its map gives (folded again when that input is a
generator too: `arange(n) * 3 + 1` becomes three scalar ops). The generic then
has no users and is erased. Indices are those the original read used, so no
read goes anywhere the original would not.

Cost rule (no recomputation): folding trades a buffer for computing the element at
every read. That is free when each element is read once: every loop around the read
(scf loops, linalg.generic dims) moves the index. A read repeated by some loop
recomputes the element that many times, so only a cheap generator is folded there: at
most 8 integer/float adds, multiplies, compares, selects, casts and absolute values, no
division and no other `math` op (ir_helpers.cheap_generic). A matrix product's
operands are not folded at all (it reads them as buffers: passes/tile_matmuls.py), so
a sigmoid feeding a `dot` operand is materialized once.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, tensor
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from .ir_helpers import cheap_generic, clone_mapped, defining_op, dims_or_constants, pointwise_generic

_LOOPS = ("scf.for", "scf.while", "scf.parallel", "scf.forall", "linalg.generic")


def _varying(loop) -> list[ir.Value]:
    """What changes from one iteration of `loop` to the next: its block arguments, or
    the linalg.index values of a generic's body."""
    if loop.name != "linalg.generic":
        return [a for region in loop.regions for block in region.blocks for a in block.arguments]
    block = loop.regions[0].blocks[0]
    return [o.results[0] for o in block.operations if o.name == "linalg.index"]


def _depends_on(values: list[ir.Value], targets: list[ir.Value], limit: int = 200) -> bool:
    """Whether any of `values` is computed from any of `targets` (a bounded backward walk)."""
    wanted = {hash(t) for t in targets}
    stack, seen = list(values), set()
    while stack and len(seen) < limit:
        v = stack.pop()
        if hash(v) in wanted:
            return True
        if hash(v) in seen:
            continue
        seen.add(hash(v))
        owner = v.owner
        if isinstance(owner, (ir.OpView, ir.Operation)):
            stack.extend(owner.operation.operands)
    return False


def _read_once(extract: ir.Operation, generator: ir.Operation) -> bool:
    """Every loop between the generator and the read moves the read's index, so each
    element is read at most once; a loop that does not (or a generic dim whose index
    the read ignores) repeats reads."""
    indices = list(extract.operands)[1:]
    op = extract.parent
    stop = generator.parent
    while op is not None and op != stop and op.name != "func.func":
        if op.name in _LOOPS:
            if op.name == "linalg.generic":
                dims = len(ir.ArrayAttr(op.attributes["iterator_types"]))
                moved = [v for v in _varying(op) if _depends_on(indices, [v])]
                if len(moved) < dims:
                    return False
            elif not _depends_on(indices, _varying(op)):
                return False
        op = op.parent
    return True


def _generator(value: ir.Value):
    """(op, input index maps) when `value` is a pointwise linalg.generic read only
    element by element, else None."""
    op = defining_op(value, "linalg.generic")
    if op is None or not pointwise_generic(op, allow_index=True):
        return None
    if any(use.owner.operation.name != "tensor.extract" for use in op.results[0].uses):
        return None  # the tensor is needed anyway: reading it is cheaper than recomputing
    if not cheap_generic(op) and not all(_read_once(use.owner.operation, op) for use in op.results[0].uses):
        return None  # costly and read repeatedly: computed once, into a buffer
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if maps[-1] != ir.AffineMap.get_identity(len(ir.ArrayAttr(op.attributes["iterator_types"]))):
        return None
    input_maps = [dims_or_constants(m) for m in maps[:-1]]
    if any(m is None for m in input_maps):
        return None
    return op, input_maps


def inline_generated_element(op, rewriter) -> bool:
    """tensor.extract of a generator -> the generator's body at the extracted index,
    reading its inputs element by element (which this pattern folds again)."""
    op = op.operation
    found = _generator(op.operands[0])
    if found is None:
        return True  # no match
    generator, input_maps = found
    indices = list(op.operands)[1:]
    block = generator.regions[0].blocks[0]
    values: dict = {}
    with ir.InsertionPoint(op), op.location:
        for arg, source, emap in zip(block.arguments, generator.operands, input_maps):
            at = [indices[v] if kind == "dim" else arith.constant(ir.IndexType.get(), v) for kind, v in emap]
            values[hash(arg)] = tensor.extract(source, at)
        for body_op in block.operations:
            body_op = body_op.operation
            if body_op.name == "linalg.yield":
                result = values.get(hash(body_op.operands[0]), body_op.operands[0])
                break
            if body_op.name == "linalg.index":
                values[hash(body_op.results[0])] = indices[ir.IntegerAttr(body_op.attributes["dim"]).value]
                continue
            clone_mapped(body_op, values)
    rewriter.replace_op(op, [result])
    return False


def fold_generator_reads(module_op: ir.Operation, pass_=None) -> None:
    """The pass."""
    patterns = RewritePatternSet()
    patterns.add("tensor.extract", inline_generated_element)
    apply_patterns_and_fold_greedily(module_op, patterns.freeze())
