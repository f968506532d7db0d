"""The scan dialect's verifier: the rules IRDL cannot state.

IRDL checks each op on its own (operand kinds, attributes). These rules tie a
chain together: order of the chain, taps, and the step body's signature.
"""
from __future__ import annotations

from mlir import ir

from .scan import CHAIN_OPS

_ORDER = {"scan.sequence": 0, "scan.state": 1, "scan.collect": 1, "scan.param": 2}
READERS = ("scan.output", "scan.steps", "scan.status")


class ScanVerifyError(ValueError):
    """A scan op chain that breaks a rule of the dialect."""


def collect_chain(loop_op: ir.Operation) -> tuple[list[ir.Operation], list[ir.Operation]]:
    """The chain ops starting at `scan.loop`, and the ops reading the loop's results."""
    chain = [loop_op]
    while True:
        uses = [u.owner for u in chain[-1].results[0].uses]
        nxt = [u for u in uses if u.name in CHAIN_OPS]
        if len(nxt) > 1:
            raise ScanVerifyError(f"{_where(chain[-1])}: a loop value feeds {len(nxt)} chain ops; "
                                  "a chain must not branch")
        if not nxt:
            break
        others = [u.name for u in uses if u.name not in CHAIN_OPS]
        if others:
            raise ScanVerifyError(f"{_where(chain[-1])}: {others[0]} reads a loop value before the "
                                  "chain ends")
        chain.append(nxt[0].operation if hasattr(nxt[0], "operation") else nxt[0])
    readers = [u.owner for u in chain[-1].results[0].uses]
    readers = [r.operation if hasattr(r, "operation") else r for r in readers]
    for r in readers:
        if r.name not in READERS:
            raise ScanVerifyError(f"{_where(r)}: {r.name} cannot read a !scan.chain value")
    return chain, readers


def _where(op: ir.Operation) -> str:
    return f"{op.name} at {op.location}"


def _taps(op: ir.Operation) -> list[int]:
    return list(ir.DenseI64ArrayAttr(op.attributes["taps"]))


def verify_chain(loop_op: ir.Operation, symbols: dict[str, ir.Operation]) -> None:
    chain, readers = collect_chain(loop_op)
    body_name = ir.FlatSymbolRefAttr(loop_op.attributes["body"]).value
    body = symbols.get(body_name)
    if body is None:
        raise ScanVerifyError(f"{_where(loop_op)}: body @{body_name} is not a function in this module")
    ftype = ir.FunctionType(ir.TypeAttr(body.attributes["function_type"]).value)
    expected_args: list[ir.Type] = []
    expected_results: list[ir.Type] = []
    rank = -1
    for op in chain[1:]:
        if _ORDER[op.name] < rank:
            raise ScanVerifyError(f"{_where(op)}: chain order must be sequences, then outputs "
                                  "(state/collect), then params")
        rank = _ORDER[op.name]
        if op.name == "scan.sequence":
            taps = _taps(op)
            if not taps or sorted(set(taps)) != taps:
                raise ScanVerifyError(f"{_where(op)}: taps must be distinct and increasing, got {taps}")
            seq = ir.RankedTensorType(op.operands[1].type)
            if seq.rank == 0:
                raise ScanVerifyError(f"{_where(op)}: a sequence needs a leading dim, got {seq}")
            expected_args += [ir.RankedTensorType.get(seq.shape[1:], seq.element_type)] * len(taps)
        elif op.name == "scan.state":
            taps = _taps(op)
            if not taps or sorted(set(taps)) != taps or taps[-1] >= 0:
                raise ScanVerifyError(f"{_where(op)}: state taps must be distinct, increasing and "
                                      f"negative, got {taps}")
            init = ir.RankedTensorType(op.operands[1].type)
            if taps == [-1]:
                value = init
            else:
                if init.rank == 0:
                    raise ScanVerifyError(f"{_where(op)}: taps {taps} need an initial block with a "
                                          "leading dim, got a rank-0 tensor")
                value = ir.RankedTensorType.get(init.shape[1:], init.element_type)
            expected_args += [value] * len(taps)
            expected_results.append(value)
            _check_keep(op)
        elif op.name == "scan.collect":
            _check_keep(op)
            expected_results.append(None)  # any tensor with len(dims) dims
        else:
            expected_args.append(op.operands[1].type)
    if list(ftype.inputs) != expected_args:
        raise ScanVerifyError(
            f"{_where(loop_op)}: body @{body_name} takes ({', '.join(map(str, ftype.inputs))}) but the "
            f"chain passes ({', '.join(map(str, expected_args))})")
    results = list(ftype.results)
    tail = [ir.IntegerType.get_signless(1)] if ir.BoolAttr(loop_op.attributes["until"]).value else []
    tail.append(ir.IntegerType.get_signless(32))
    if len(results) != len(expected_results) + len(tail) or results[len(expected_results):] != tail:
        raise ScanVerifyError(
            f"{_where(loop_op)}: body @{body_name} must return one value per output, then "
            f"{' and '.join(map(str, tail))}; it returns ({', '.join(map(str, results))})")
    outputs = [op for op in chain if op.name in ("scan.state", "scan.collect")]
    for i, (want, got, op) in enumerate(zip(expected_results, results, outputs)):
        if want is not None and got != want:
            raise ScanVerifyError(f"{_where(op)}: body result {i} is {got}, the state is {want}")
        if want is None and ir.RankedTensorType(got).rank != len(op.operands) - 1:
            raise ScanVerifyError(f"{_where(op)}: body result {i} has rank "
                                  f"{ir.RankedTensorType(got).rank} but the collect gives "
                                  f"{len(op.operands) - 1} dims")
    for r in readers:
        if r.name != "scan.output":
            continue
        index = ir.IntegerAttr(r.attributes["index"]).value
        if not 0 <= index < len(outputs):
            raise ScanVerifyError(f"{_where(r)}: index {index} but the loop has {len(outputs)} outputs")
        keep = ir.StringAttr(outputs[index].attributes["keep"]).value
        step_type = ir.RankedTensorType(results[index])
        got = ir.RankedTensorType(r.result.type)
        want_rank = step_type.rank + (1 if keep == "all" else 0)
        if got.rank != want_rank or got.element_type != step_type.element_type:
            raise ScanVerifyError(f"{_where(r)}: output {index} (keep={keep}) must be a rank-{want_rank} "
                                  f"tensor of {step_type.element_type}, got {got}")


def _check_keep(op: ir.Operation) -> None:
    keep = ir.StringAttr(op.attributes["keep"]).value
    if keep not in ("all", "last", "final"):
        raise ScanVerifyError(f"{_where(op)}: keep must be \"all\", \"last\" or \"final\", got {keep!r}")


def verify(module_op: ir.Operation) -> None:
    """Verify every scan chain under `module_op` (after MLIR's own verifier)."""
    if not module_op.verify():
        raise ScanVerifyError("module does not verify")
    symbols = {}
    loops = []
    for op in module_op.regions[0].blocks[0].operations:
        if op.operation.name == "func.func":
            symbols[ir.StringAttr(op.attributes["sym_name"]).value] = op.operation

    def visit(o):
        if o.name == "scan.loop":
            loops.append(o)
        elif o.name in ("scan.last", "scan.final"):
            src = ir.RankedTensorType(o.operands[0].type)
            dst = ir.RankedTensorType(o.results[0].type)
            if src.rank != dst.rank + 1 or src.element_type != dst.element_type:
                raise ScanVerifyError(f"{_where(o)}: the last row of {src} cannot be {dst}")
            if o.name == "scan.final" and ir.RankedTensorType(o.operands[1].type).rank != dst.rank:
                raise ScanVerifyError(f"{_where(o)}: the initial value must have rank {dst.rank}")
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    for loop in loops:
        verify_chain(loop, symbols)


def scan_verify(op: ir.Operation, pass_=None) -> None:
    """The `scan-verify` pass."""
    verify(op)
