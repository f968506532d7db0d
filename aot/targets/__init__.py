"""Targets: from the scan dialect to a linked shared library.

    pipeline.py      the stages every target shares (scan -> scf -> memref)
    cpu.py, cuda.py  one module per target: its manifest record, its pipeline steps,
                     the runtime C source it links (same names in each)
    cpu_features.py  CPU variants: psABI levels, features, llc flags, vector width
    dispatch.py      sealing each variant and the ifunc dispatch module
    symbols.py       the C symbols of a library
    toolchain.py     LLVM's tools and the system linker

Adding a target is one module here, named in TARGETS.
"""
from __future__ import annotations

from types import ModuleType

from . import cpu, cuda

TARGETS: dict[str, ModuleType] = {"cpu": cpu, "cuda": cuda}


def get(name: str) -> ModuleType:
    """The target module called `name`, or a ValueError listing the targets."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; expected one of {', '.join(TARGETS)}")
    return TARGETS[name]
