"""The cpu target: an x86-64 library holding one copy of each kernel per CPU variant,
bound at load by ifunc resolvers (dispatch.py, docs/deploy.md).

Each target module gives the same names: `record` (the manifest's target record),
`TILED_MATMULS` (products emitted as `scan.matmul`), the pipeline's hooks
`front_end_keys`, `before_lowering`, `before_bufferization`, `after_bufferization`,
`share`, `specialize` and `to_llvm` (pipeline.py), `DISPATCH_BY_CPU`, `RUNTIME_SOURCES` (the C
files from runtime/ linked into every library) and `EXTRA_EXPORTS`.
"""
from __future__ import annotations

from typing import Sequence

from mlir import ir

from ..emit.builders import TILED_PRODUCT
from ..passes.allocators import HUGE_PAGE_ALLOCATORS, route_allocations
from ..passes.copies import copies_to_linalg
from ..passes.interchange import interchangeable, scan_interchange
from ..passes.math_intrinsics import math_to_intrinsics
from ..passes.outline_tiles import outline_tiles
from ..passes.output_in_place import output_in_place
from ..passes.share_kernels import share_kernels
from ..passes.tile_matmuls import products_as_contractions, tile_matmuls
from ..passes.upstream import run_pipeline
from ..passes.vector_width import prefer_wide_vectors
from ..passes.vectorize_generics import vectorizable, vectorize_generics
from . import cpu_features
from .symbols import shared_symbol

DISPATCH_BY_CPU = True
TILED_MATMULS = True
# the allocator the kernels' allocations are routed to, the strided copy memref.copy calls
RUNTIME_SOURCES = ("cpu_alloc.c", "cpu_copy.c")
EXTRA_EXPORTS: tuple[str, ...] = ()
# (convert-to-llvm also converts the ub dialect: a convert-ub-to-llvm after it found
# nothing left and took 6% of this pipeline's time)
TO_LLVM = (
    "builtin.module(convert-linalg-to-loops,convert-vector-to-scf,expand-strided-metadata,lower-affine,"
    "convert-math-to-funcs{convert-ctlz=0},convert-math-to-libm,convert-scf-to-cf,"
    "convert-vector-to-llvm,finalize-memref-to-llvm,convert-to-llvm,reconcile-unrealized-casts,canonicalize)"
)


def record(cpu: str | Sequence[str] | None, arch: str | None, default_cpu: str) -> dict:
    """The CPU variants `cpu` asks for (cpu_features.variants) and their label."""
    if arch is not None:
        raise ValueError("arch= applies to target='cuda' only; the cpu target takes cpu=")
    found = cpu_features.variants(cpu, default=default_cpu)
    label = cpu if isinstance(cpu, str) else ",".join(cpu) if cpu else default_cpu
    return {"cpu": label, "variants": found}


def front_end_keys(module: ir.Module, variants: Sequence[dict]) -> list[int | None]:
    """What the front end (up to `specialize`) depends on for each variant: the vector
    width, where scan-interchange cuts a scan into vector chunks; else nothing (one
    front end serves every variant)."""
    if not interchangeable(module.operation):
        return [None] * len(variants)
    return [cpu_features.vector_bytes(v["features"]) for v in variants]


def before_lowering(module: ir.Module, variant: dict) -> None:
    """scan-interchange: independent chains of scalar steps run as vector chunks."""
    scan_interchange(module.operation, cpu_features.vector_bytes(variant["features"]))


def before_bufferization(module: ir.Module) -> None:
    """The `scan.matmul` calls as contractions bufferization writes in place."""
    products_as_contractions(module.operation)


def after_bufferization(module: ir.Module) -> None:
    """output-in-place; one-dimensional copies as loops (passes/copies.py: the others
    call runtime/cpu_copy.c)."""
    output_in_place(module.operation)
    copies_to_linalg(module, max_rank=1)


def share(module: ir.Module, variants: Sequence[dict]) -> tuple[ir.Operation, dict] | None:
    """share-kernels, for several variants of one front end: the shared module (each
    kernel's code outside its products and vector loops) and the variant it is
    compiled for, the least capable (its features are every variant's); None where
    the kernels stay whole in every variant."""
    base = variants[0]
    if len(variants) < 2 or not all(set(base["features"]) <= set(v["features"]) for v in variants):
        return None
    shared = share_kernels(module, _variant_specific, shared_symbol)
    return None if shared is None else (shared, base)


def _variant_specific(op: ir.Operation) -> bool:
    """A product (tile-matmuls) or a loop vectorize-generics writes at the vector width."""
    return TILED_PRODUCT in op.attributes or vectorizable(op)


def specialize(module: ir.Module, variant: dict) -> None:
    """tile-matmuls: the variant's register tile for every matrix product; outline-tiles:
    one function per distinct tile."""
    tile_matmuls(module.operation, cpu_features.matmul_tile(variant["features"]))
    outline_tiles(module)


def to_llvm(module: ir.Module, variant: dict, manifest: dict, stages: dict) -> None:
    """Loops and vectors to the LLVM dialect; large allocations to runtime/cpu_alloc.c."""
    features = variant["features"]
    vectorize_generics(module.operation, cpu_features.vector_bytes(features),
                       cpu_features.masked_element_bytes(features))
    math_to_intrinsics(module)
    run_pipeline(module, TO_LLVM, "llvm")
    route_allocations(module, HUGE_PAGE_ALLOCATORS)
    if cpu_features.prefers_wide_vectors(features):
        prefer_wide_vectors(module)
