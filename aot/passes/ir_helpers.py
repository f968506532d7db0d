"""Small IR queries and a remapping clone shared by the passes."""
from __future__ import annotations

import io

from mlir import ir


def bytecode(op: ir.Operation | ir.Module) -> bytes:
    """`op` as MLIR bytecode (written in a tenth of the time printing takes)."""
    out = io.BytesIO()
    op.operation.write_bytecode(out)
    return out.getvalue()


def defining_op(value: ir.Value, name: str) -> ir.Operation | None:
    """The op called `name` that defines `value`; None for other ops and block arguments."""
    op = value.owner
    if isinstance(op, (ir.OpView, ir.Operation)) and op.operation.name == name:
        return op.operation
    return None


def clone_mapped(op: ir.Operation, values: dict) -> ir.Operation:
    """Clone `op` at the current insertion point, its operands looked up in `values`
    (keyed by hash, as every pass here keys values), and record its results there."""
    clone = op.clone()
    for i, v in enumerate(op.operands):
        clone.operands[i] = values.get(hash(v), v)
    for old, new in zip(op.results, clone.results):
        values[hash(old)] = new
    return clone


def indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    """A linalg op's indexing maps, inputs then outputs."""
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def dims_or_constants(amap: ir.AffineMap) -> list[tuple[str, int]] | None:
    """Each result of `amap`: ("dim", position) or ("const", value); None if any result
    is another expression."""
    found = []
    for expr in amap.results:
        expr = expr.maybe_downcast()
        if isinstance(expr, ir.AffineDimExpr):
            found.append(("dim", expr.position))
        elif isinstance(expr, ir.AffineConstantExpr):
            found.append(("const", expr.value))
        else:
            return None
    return found


def pointwise_generic(op: ir.Operation, allow_index: bool = False) -> bool:
    """A linalg.generic with one result, all loops parallel, an output it never reads,
    and a body of arith/math ops (and linalg.index if `allow_index`): each element
    is a function of the inputs' elements at the indices the maps give."""
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    if any("parallel" not in str(kind) for kind in ir.ArrayAttr(op.attributes["iterator_types"])):
        return False
    block = op.regions[0].blocks[0]
    if len(list(block.arguments[len(block.arguments) - 1].uses)):
        return False
    allowed = ("linalg.yield", "linalg.index") if allow_index else ("linalg.yield",)
    return all(o.name.startswith(("arith.", "math.")) or o.name in allowed for o in block.operations)


CHEAP_OPS = 8
_COSTLY = ("arith.divf", "arith.remf", "arith.divsi", "arith.divui", "arith.remsi", "arith.remui",
           "arith.floordivsi", "arith.ceildivsi", "arith.powf")
_CHEAP_MATH = ("math.absf", "math.absi", "math.copysign")


def cheap_generic(op: ir.Operation) -> bool:
    """Few arithmetic ops, none costly (no division, no math function but absolute
    values): recomputing an element where it is read beats a buffer."""
    ops = [o for o in op.regions[0].blocks[0].operations if o.name not in ("linalg.yield", "linalg.index")]
    return len(ops) <= CHEAP_OPS and not any((o.name.startswith("math.") and o.name not in _CHEAP_MATH)
                                             or o.name in _COSTLY for o in ops)
