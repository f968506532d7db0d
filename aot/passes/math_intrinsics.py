"""math-to-intrinsics (cpu): rounding math ops as LLVM intrinsics, before math-to-libm.

Source: memref/vector IR before the lowering to LLVM; target: the same with
`llvm.intr.floor` (...) in place of `math.floor` (...).

Upstream convert-math-to-libm turns `math.floor` into a call of `floorf`, and on a
vector into one call per lane (an extract, a call and an insert each: 16 of them
for a vector<16xf32>); opt then turns each call back into an instruction. The
rounding ops are single instructions on x86-64 (roundps, vrndscaleps), so they are
written as the intrinsics LLVM lowers to those directly: the exp expansion's floor
in a 16-lane sigmoid is one instruction, not 16 calls for opt and llc to undo.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import llvm
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

_INTRINSICS = {"math.floor": llvm.intr_floor, "math.ceil": llvm.intr_ceil, "math.trunc": llvm.intr_trunc,
               "math.round": llvm.intr_round, "math.roundeven": llvm.intr_roundeven}


def _to_intrinsic(op, rewriter) -> bool:
    with rewriter.ip, op.location:
        value = _INTRINSICS[op.operation.name](op.operands[0])
    rewriter.replace_op(op, [value])
    return False


def math_to_intrinsics(module: ir.Module) -> None:
    """The pass."""
    patterns = RewritePatternSet()
    for name in _INTRINSICS:
        patterns.add(name, _to_intrinsic)
    apply_patterns_and_fold_greedily(module, patterns.freeze())
