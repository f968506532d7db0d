"""copies-to-linalg: which `memref.copy` ops become `linalg.copy` loops.

Source and target: memref (after bufferization).

A `linalg.copy` is lowered with the kernel's other loops (on the cpu, vectorized by
vectorize-generics); a `memref.copy` left alone becomes an `llvm.memcpy` between
buffers known contiguous, else a call of `memrefCopy` (runtime/cpu_copy.c). The cuda
target turns every copy into a loop (a GPU kernel, like every linalg op). The cpu
turns only one-dimensional copies into loops: one vector loop each, and a scan step
that copies a short state row (the HMM's 16 floats) would spend longer building
the call's descriptors than copying; copies of two or more dimensions are calls (a
loop nest each made a sixth of the GRU gradient's LLVM IR).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import linalg

from .lower_scan import ops_named


def copies_to_linalg(module: ir.Module, max_rank: int | None = None) -> None:
    """Every memref.copy (of at most `max_rank` dimensions) -> linalg.copy."""
    for copy in ops_named(module.operation, "memref.copy"):
        source, target = copy.operands
        if max_rank is not None and ir.MemRefType(source.type).rank > max_rank:
            continue
        with ir.InsertionPoint(copy), copy.location:
            linalg.copy(source, outs=[target])
        copy.erase()
