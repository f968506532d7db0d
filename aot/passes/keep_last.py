"""scan-keep-last (save-mem): store only what the uses of a scan output need.

Source and target: scan dialect. Patterns (MLIR rewrite API):
- `scan.output` whose every use is `scan.last` (Aesara's `result[-1]`) or
  `scan.final` (a gradient's final state): mark the output's state/collect op
  `keep = "last"` (or "final" when only `scan.final` reads it) and replace the
  output and those users with a per-step-shaped `scan.output`.
- `scan.output` with no uses: keep = "last" (a state must still be carried).
- `scan.loop` none of whose results is read: erase the chain (IRDL ops carry no
  side-effect information, so the upstream dead-code rules cannot do it).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, tensor
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from ..dialects.verify import collect_chain


def _output_op(output: ir.Operation) -> ir.Operation:
    """The state/collect op that defines `output`'s values."""
    loop_value_owner = output.operands[0].owner
    chain = []
    op = loop_value_owner
    while True:
        op = op.operation if hasattr(op, "operation") else op
        chain.append(op)
        if op.name == "scan.loop":
            break
        op = op.operands[0].owner
    outputs = [o for o in reversed(chain) if o.name in ("scan.state", "scan.collect")]
    return outputs[ir.IntegerAttr(output.attributes["index"]).value]


def keep_last_output(op, rewriter) -> bool:
    """scan.output read only by scan.last / scan.final (or not at all) -> keep the last value."""
    op = op.operation
    users = [u.owner for u in op.result.uses]
    users = [u.operation if hasattr(u, "operation") else u for u in users]
    if any(u.name not in ("scan.last", "scan.final") for u in users):
        return True  # no match
    if any(u.name == "scan.final" and u.operands[0] != op.result for u in users):
        return True
    target = _output_op(op)
    if ir.StringAttr(target.attributes["keep"]).value != "all":
        return True
    if target.name == "scan.collect" and any(u.name == "scan.final" for u in users):
        return True  # a map has no initial value to fall back on
    keep = "last" if any(u.name == "scan.last" for u in users) else "final"
    target.attributes["keep"] = ir.StringAttr.get(keep)
    if not users:
        rewriter.erase_op(op)
        return False
    stacked = ir.RankedTensorType(op.result.type)
    step_type = ir.RankedTensorType.get(stacked.shape[1:], stacked.element_type)
    with ir.InsertionPoint(op), op.location:
        last = ir.Operation.create("scan.output", results=[step_type], operands=[op.operands[0]],
                                   attributes={"index": op.attributes["index"]})
    for user in users:
        result = last.result
        if user.result.type != step_type:
            with ir.InsertionPoint(user), user.location:
                result = tensor.cast(user.result.type, last.result)
        rewriter.replace_op(user, [result])
    rewriter.erase_op(op)
    return False


def erase_dead_scan(op, rewriter) -> bool:
    """scan.loop whose outputs nobody reads -> erased (its status reads as 0)."""
    op = op.operation
    chain, readers = collect_chain(op)
    if any(len(list(r.result.uses)) for r in readers if r.name != "scan.status"):
        return True
    for r in readers:
        if r.name != "scan.status":
            rewriter.erase_op(r)
            continue
        with ir.InsertionPoint(r), r.location:
            zero = arith.constant(ir.IntegerType.get_signless(32), 0)
        rewriter.replace_op(r, [zero])
    for c in reversed(chain):
        rewriter.erase_op(c)
    return False


def scan_keep_last(module_op: ir.Operation, pass_=None) -> None:
    """The pass."""
    patterns = RewritePatternSet()
    patterns.add("scan.output", keep_last_output)
    patterns.add("scan.loop", erase_dead_scan)
    apply_patterns_and_fold_greedily(module_op, patterns.freeze())
