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
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, tensor
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from .ir_helpers import clone_mapped, defining_op, pointwise_generic


def _element_map(amap: ir.AffineMap):
    """Per result: ("dim", d) or ("const", c); None for any other expression."""
    out = []
    for expr in amap.results:
        if isinstance(expr, ir.AffineDimExpr):
            out.append(("dim", expr.position))
        elif isinstance(expr, ir.AffineConstantExpr):
            out.append(("const", expr.value))
        else:
            return None
    return out


def _generator(value: ir.Value):
    """(op, input index maps) when `value` is a pointwise linalg.generic read only
    element by element, else None."""
    op = defining_op(value, "linalg.generic")
    if op is None or not pointwise_generic(op, allow_index=True):
        return None
    if any(use.owner.operation.name != "tensor.extract" for use in op.results[0].uses):
        return None  # the tensor is needed anyway: reading it is cheaper than recomputing
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if maps[-1] != ir.AffineMap.get_identity(len(ir.ArrayAttr(op.attributes["iterator_types"]))):
        return None
    input_maps = [_element_map(m) for m in maps[:-1]]
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
