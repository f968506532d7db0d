"""The pass pipeline from the scan dialect to the LLVM dialect, in named stages; the
stages every target shares are here, each target's own steps in its module.

Each stage's IR is kept so a compiled function can show it (`f.ir("scan")`):

    scan      the module as emitted (scan dialect + tensor/linalg/arith/math)
    scan-opt  after scan-verify and scan-keep-last
    scf       after (cpu) scan-interchange, lower-scan-to-scf, inlining the step
              bodies, canonicalize/cse, the elementwise fusions (fuse-cheap-producers
              last), split-large-generics, fold-generator-reads
    memref    after one-shot bufferization and (cpu) output-in-place (the end of the
              front end, shared by the CPU variants), then each variant's own: (cpu)
              tile-matmuls, outline-tiles
    gpu       (cuda target) host functions launching the outlined GPU kernels
    llvm      the LLVM dialect translated to LLVM IR (cpu: allocations routed to
              runtime/cpu_alloc.c, prefer-wide-vectors)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

from mlir import ir

from ..dialects.verify import scan_verify
from ..passes.fastmath import set_fastmath
from ..passes.fold_generators import fold_generator_reads
from ..passes.fuse_cheap_producers import fuse_cheap_producers
from ..passes.fuse_trees import fuse_elementwise_trees
from ..passes.ir_helpers import bytecode
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
# (inline's own canonicalize of each callee before inlining it is left out: every step
# function is inlined anyway and canonicalize runs after; a third of the pass's time)
INLINE = "builtin.module(inline{default-pipeline=},symbol-dce,canonicalize,cse)"
SIMPLIFY = "builtin.module(linalg-fuse-elementwise-ops,loop-invariant-code-motion,canonicalize,cse)"
# (canonicalize, cse first: what only the matrix products' calls kept alive goes, the
# products now contractions (tile_matmuls.products_as_contractions); equal ones merge;
# buffers without an alignment of their own: the targets' allocators return 64-byte
# aligned blocks, runtime/cpu_alloc.c, so no allocation computes an aligned pointer,
# 15% of the GRU gradient's shared code)
BUFFERIZE = (
    "builtin.module(canonicalize,cse,eliminate-empty-tensors,"
    "one-shot-bufferize{bufferize-function-boundaries=1 function-boundary-type-conversion=identity-layout-map buffer-alignment=0},"
    "canonicalize,loop-invariant-code-motion,func.func(buffer-hoisting,buffer-loop-hoisting),"
    "buffer-deallocation-pipeline,convert-bufferization-to-memref)"
)


def lower_variants(module: ir.Module, target: ModuleType, variants: Sequence[dict], fastmath: str, manifest: dict,
                   stages: dict[str, Any], finish: Callable[[ir.Module, dict], None] | None = None
                   ) -> Iterator[tuple[dict, ir.Module]]:
    """Each of `variants` (CPU variants of `target`, a module of scanaot.targets) through
    every stage: yields (variant, its module in the LLVM dialect), in order, after the
    kernels' shared bodies where `target.share` split them off (as a copy of the
    variant they are compiled for, marked `shared`). `module` (emitted once for all)
    is used up.

    The front end (scan stages to bufferization) runs once for all variants whose
    `target.front_end_keys` agree (for the cpu: every variant, unless scan-interchange
    cuts a scan into chunks of the vector width); each variant then gets a copy in an
    MLIR context of its own, and the variants' back ends (`target.specialize`, the
    cpu's matmul tiles, and the LLVM lowering) run side by side in threads: upstream
    pipelines release the GIL (passes/upstream.py), and a context is used by one
    thread at a time. `fastmath` is a mode of passes/fastmath.py, set on every float
    op first. The target adds its own steps before lower-scan-to-scf, around
    bufferization and from the memref stage to the LLVM dialect (where it may record
    what it found in the manifest: the cuda target's device code).
    `finish(module, variant)` runs on the LLVM dialect, in the variant's thread (the
    packaging seals the entry symbols and translates the module to LLVM IR there).

    `stages` receives a copy of the module after each stage of the last variant
    (written as bytecode once the build no longer waits on it, printed when read:
    packaging/stages.py)."""
    set_fastmath(module.operation, fastmath)
    stages["scan"] = module.operation.clone()
    scan_verify(module.operation)
    scan_keep_last(module.operation)
    scan_verify(module.operation)
    stages["scan-opt"] = module.operation.clone()
    fronts, shared = _front_ends(module, target, variants, stages)
    shared_stages: dict[str, Any] = {}  # the shared module's, merged into the last variant's

    def back_end(front: ir.Module | bytes, variant: dict, kept: dict | None) -> ir.Module:
        own = front if isinstance(front, ir.Module) else _parsed(front)
        with own.context, ir.Location.unknown():
            _back_end(own, target, variant, manifest, kept)
            if finish is not None:
                finish(own, variant)
            if kept is not None:
                kept["llvm"] = own.operation.clone()
        return own

    with ThreadPoolExecutor(max_workers=len(variants) + 1) as pool:
        lowered = []
        if shared is not None:  # compiled for its variant, linked beside the variants; the largest: first
            shared_variant = dict(shared[1], shared=True)
            lowered.append((shared_variant, pool.submit(back_end, shared[0], shared_variant, shared_stages)))
        last = len(variants) - 1
        lowered += [(variant, pool.submit(back_end, fronts[i], variant, stages if i == last else None))
                    for i, variant in enumerate(variants)]
        try:
            for variant, job in lowered:
                yield variant, job.result()
        finally:
            for _, job in lowered:
                job.cancel()
    for name, module_op in shared_stages.items():  # each context is idle now
        _add_shared(stages[name], bytecode(module_op))


def _add_shared(stage: ir.Operation, shared: bytes) -> None:
    """A stage of the last variant with the shared module's (`shared`, bytecode)
    definitions in place of its declarations, and the symbols only they use."""
    block = stage.regions[0].blocks[0]
    own = {_symbol(op): op.operation for op in block.operations}
    with stage.context:
        parsed = ir.Module.parse(shared)  # referenced while its ops move
        for op in list(parsed.body.operations):
            op, name = op.operation, _symbol(op)
            if name not in own:
                op.move_after(block.operations[len(block.operations) - 1])
            elif op.name.endswith("func") and len(op.regions[0].blocks):
                op.move_before(own[name])
                own[name].erase()


def _symbol(op: ir.Operation) -> str | None:
    return ir.StringAttr(op.attributes["sym_name"]).value if "sym_name" in op.attributes else None


def _front_ends(module: ir.Module, target: ModuleType, variants: Sequence[dict], stages: dict[str, Any]
                ) -> tuple[list[ir.Module | bytes], tuple[bytes, dict] | None]:
    """Each variant's module after the front end: the last variant takes its front end's
    module, the others its bytecode, which each parses into an MLIR context of its own
    in its thread (`_parsed`); and where `target.share` splits one front end for every
    variant, the shared module's bytecode and the variant it is compiled for."""
    keys = target.front_end_keys(module, variants)
    fronts: dict[Any, ir.Module] = {}
    for i, key in enumerate(keys):
        if key not in fronts:  # the last front end takes `module` itself
            fronts[key] = _front_end(module if len(set(keys[i:])) == 1 else module.operation.clone(), target,
                                     variants[i], stages if key == keys[-1] else None)
    shared = None
    if len(fronts) == 1:
        split = target.share(fronts[keys[-1]], variants)
        if split is not None:
            shared = (bytecode(split[0]), split[1])
    copies = {key: bytecode(fronts[key]) for key in set(keys[:-1])}
    return [copies[key] for key in keys[:-1]] + [fronts[keys[-1]]], shared


def _parsed(code: bytes) -> ir.Module:
    """The module (MLIR bytecode) in a new MLIR context."""
    with ir.Context(), ir.Location.unknown():
        return ir.Module.parse(code)


def _front_end(module: ir.Module, target: ModuleType, variant: dict, stages: dict | None) -> ir.Module:
    """Loops to scf, step bodies inlined, elementwise fusions, bufferization: the part
    the variants share (the scf stage into `stages` unless None)."""
    target.before_lowering(module, variant)
    lower_scan_to_scf(module.operation)
    run_pipeline(module, INLINE, "scf")
    fuse_elementwise_trees(module.operation)
    run_pipeline(module, SIMPLIFY, "scf")
    fuse_cheap_producers(module.operation)
    split_large_generics(module.operation)
    fold_generator_reads(module.operation)
    if stages is not None:
        stages["scf"] = module.operation.clone()
    target.before_bufferization(module)
    run_pipeline(module, BUFFERIZE, "memref")
    target.after_bufferization(module)
    return module


def _back_end(module: ir.Module, target: ModuleType, variant: dict, manifest: dict, stages: dict | None) -> None:
    """One variant's own stages, from its matmul tiles to the LLVM dialect (copies of the
    stages into `stages` unless None)."""
    target.specialize(module, variant)
    if stages is not None:
        stages["memref"] = module.operation.clone()
    target.to_llvm(module, variant, manifest, {} if stages is None else stages)
