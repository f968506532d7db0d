"""The pass pipeline from the scan dialect to the LLVM dialect, in named stages.

Each stage's IR is kept so a compiled function can show it (`f.ir("scan")`):

    scan      the module as emitted (scan dialect + tensor/linalg/arith/math)
    scan-opt  after scan-verify and scan-keep-last
    scf       after (cpu) scan-interchange, lower-scan-to-scf, inlining the step
              bodies, canonicalize/cse, fold-generator-reads
    memref    after one-shot bufferization and (cpu) output-in-place
    gpu       (cuda target) host functions launching the outlined GPU kernels
    llvm      the LLVM dialect handed to mlir-translate (cpu: allocations routed to
              runtime/cpu_alloc.c, prefer-wide-vectors)
"""
from __future__ import annotations

from typing import Sequence

from mlir import ir
from mlir.dialects import linalg
from mlir.passmanager import PassManager
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from .dialects.verify import scan_verify
from .passes.allocators import HUGE_PAGE_ALLOCATORS, route_allocations
from .passes.fastmath import set_fastmath
from .passes.fold_generators import fold_generator_reads
from .passes.fuse_trees import fuse_elementwise_trees
from .passes.split_generics import split_large_generics
from .passes.interchange import scan_interchange
from .passes.keep_last import scan_keep_last
from .passes.output_in_place import output_in_place
from .passes.vector_width import prefer_wide_vectors
from .target_info import prefers_wide_vectors, vector_bytes
from .passes.lower_scan import lower_scan_to_scf

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
    "canonicalize,func.func(buffer-hoisting,buffer-loop-hoisting),"
    "buffer-deallocation-pipeline,convert-bufferization-to-memref)"
)
TO_LLVM = (
    "builtin.module(convert-linalg-to-loops,convert-vector-to-scf,expand-strided-metadata,lower-affine,"
    "convert-math-to-funcs{convert-ctlz=0},convert-math-to-libm,convert-scf-to-cf,"
    "convert-vector-to-llvm,finalize-memref-to-llvm,convert-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts,canonicalize)"
)


class CompileError(RuntimeError):
    """A pass failed; the message carries MLIR's diagnostics."""


def run_pipeline(module: ir.Module, pipeline: str, stage: str) -> None:
    try:
        pm = PassManager.parse(pipeline)
        pm.run(module.operation)
    except ir.MLIRError as err:  # pragma: no cover - reached only on compiler bugs
        raise CompileError(f"stage {stage}: {err}") from None


def copy_to_linalg(op, rewriter) -> bool:
    """memref.copy -> linalg.copy, so strided copies need no runtime library."""
    with rewriter.ip, op.location:
        linalg.copy(op.operands[0], outs=[op.operands[1]])
    rewriter.erase_op(op.operation)
    return False


def lower(module: ir.Module, target: str = "cpu", features: Sequence[str] = (), fastmath: str = "none") -> dict[str, str]:
    """Run every stage of `target` in place; returns each stage's printed IR.

    `features` (the CPU variant's, target_info) size the chunks scan-interchange
    keeps in registers and decide whether LLVM may vectorize at 512 bits; `fastmath`
    is a mode of passes/fastmath.py, set on every float op first.

    The cuda target adds the `gpu` stage (host functions launching outlined
    kernels) between memref and llvm; see passes/to_gpu.py."""
    set_fastmath(module.operation, fastmath)
    stages = {"scan": str(module)}
    scan_verify(module.operation)
    scan_keep_last(module.operation)
    scan_verify(module.operation)
    stages["scan-opt"] = str(module)
    if target == "cpu":
        scan_interchange(module.operation, vector_bytes(features))
    lower_scan_to_scf(module.operation)
    run_pipeline(module, INLINE, "scf")
    fuse_elementwise_trees(module.operation)
    run_pipeline(module, SIMPLIFY, "scf")
    split_large_generics(module.operation)
    fold_generator_reads(module.operation)
    stages["scf"] = str(module)
    run_pipeline(module, BUFFERIZE, "memref")
    patterns = RewritePatternSet()
    patterns.add("memref.copy", copy_to_linalg)
    apply_patterns_and_fold_greedily(module, patterns.freeze())
    if target == "cpu":
        output_in_place(module.operation)
    stages["memref"] = str(module)
    if target == "cuda":
        from .passes import to_gpu
        to_gpu.to_gpu(module)
        stages["gpu"] = str(module)
        return stages
    run_pipeline(module, TO_LLVM, "llvm")
    route_allocations(module, HUGE_PAGE_ALLOCATORS)
    if prefers_wide_vectors(features):
        prefer_wide_vectors(module)
    stages["llvm"] = str(module)
    return stages
