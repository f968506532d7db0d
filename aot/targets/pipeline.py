"""The pass pipeline from the scan dialect to the LLVM dialect, in named stages; the
stages every target shares are here, each target's own steps in its module.

Each stage's IR is kept so a compiled function can show it (`f.ir("scan")`):

    scan      the module as emitted (scan dialect + tensor/linalg/arith/math)
    scan-opt  after scan-verify and scan-keep-last
    scf       after (cpu) scan-interchange, lower-scan-to-scf, inlining the step
              bodies, canonicalize/cse, the elementwise fusions (fuse-cheap-producers
              last), fold-generator-reads
    memref    after one-shot bufferization and (cpu) output-in-place
    gpu       (cuda target) host functions launching the outlined GPU kernels
    llvm      the LLVM dialect handed to mlir-translate (cpu: allocations routed to
              runtime/cpu_alloc.c, prefer-wide-vectors)
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from mlir import ir
from mlir.dialects import linalg
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from ..dialects.verify import scan_verify
from ..passes.fastmath import set_fastmath
from ..passes.fold_generators import fold_generator_reads
from ..passes.fuse_cheap_producers import fuse_cheap_producers
from ..passes.fuse_trees import fuse_elementwise_trees
from ..passes.keep_last import scan_keep_last
from ..passes.lower_scan import lower_scan_to_scf
from ..passes.split_generics import split_large_generics
from ..passes.upstream import run_pipeline

STAGES = ("scan", "scan-opt", "scf", "memref", "gpu", "llvm")

# after inlining the step bodies: fold, fuse each elementwise op into its only
# consumer (no temporary between them: a gradient's ones * seed * g becomes one
# loop), then hoist what each step recomputes (dims of loop-invariant tensors,
# arithmetic on them) so buffer sizes become invariant
# (fuse-elementwise-trees runs between the two: it fuses elementwise chains in
# linear time, the upstream pass being quadratic in a chain's length; then
# split-large-generics bounds each fused loop for LLVM's vectorizer)
INLINE = "builtin.module(inline,symbol-dce,canonicalize,cse)"
SIMPLIFY = "builtin.module(linalg-fuse-elementwise-ops,loop-invariant-code-motion,canonicalize,cse)"
BUFFERIZE = (
    "builtin.module(eliminate-empty-tensors,"
    "one-shot-bufferize{bufferize-function-boundaries=1 function-boundary-type-conversion=identity-layout-map},"
    "canonicalize,loop-invariant-code-motion,func.func(buffer-hoisting,buffer-loop-hoisting),"
    "buffer-deallocation-pipeline,convert-bufferization-to-memref)"
)
def copy_to_linalg(op, rewriter) -> bool:
    """memref.copy -> linalg.copy, so strided copies need no runtime library."""
    with rewriter.ip, op.location:
        linalg.copy(op.operands[0], outs=[op.operands[1]])
    rewriter.erase_op(op.operation)
    return False


def lower(module: ir.Module, target: ModuleType, variant: dict, fastmath: str, manifest: dict,
          keep_stages: bool = True, finish: Callable[[ir.Module], None] | None = None) -> dict[str, Any]:
    """Run every stage in place for `target` (a module of scanaot.targets) and one of
    its CPU variants; returns each stage's IR, a copy of the module to print (`str`)
    once the build no longer waits on it (none with `keep_stages=False`: printing a
    large module costs as much as a pass).

    `fastmath` is a mode of passes/fastmath.py, set on every float op first. The
    target adds its own steps before lower-scan-to-scf, after bufferization, and
    from the memref stage to the LLVM dialect (where it may record what it found in
    the manifest: the cuda target's device code). `finish` runs on the LLVM dialect
    before its stage is kept (the packaging seals the entry symbols there)."""
    stages: dict[str, Any] = {}

    def keep(name: str) -> None:
        if keep_stages:
            stages[name] = module.operation.clone()

    set_fastmath(module.operation, fastmath)
    keep("scan")
    scan_verify(module.operation)
    scan_keep_last(module.operation)
    scan_verify(module.operation)
    keep("scan-opt")
    target.before_lowering(module, variant)
    lower_scan_to_scf(module.operation)
    run_pipeline(module, INLINE, "scf")
    fuse_elementwise_trees(module.operation)
    run_pipeline(module, SIMPLIFY, "scf")
    fuse_cheap_producers(module.operation)
    split_large_generics(module.operation)
    fold_generator_reads(module.operation)
    keep("scf")
    run_pipeline(module, BUFFERIZE, "memref")
    patterns = RewritePatternSet()
    patterns.add("memref.copy", copy_to_linalg)
    apply_patterns_and_fold_greedily(module, patterns.freeze())
    target.after_bufferization(module)
    keep("memref")
    target.to_llvm(module, variant, manifest, stages)
    if finish is not None:
        finish(module)
    keep("llvm")
    return stages
