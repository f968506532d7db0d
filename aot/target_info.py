"""What the code generator needs to know about the CPU it compiles for: its vector width.

`native` reads the host's flags; LLVM CPU names map to their widest vector unit.
The register tile of matrix products is sized from this (see emit_rules).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

_WIDE = ("avx512", "x86-64-v4", "sapphirerapids", "icelake", "tigerlake", "cascadelake", "cooperlake",
         "znver4", "znver5", "graniterapids", "emeraldrapids", "rocketlake", "cannonlake")
_AVX2 = ("x86-64-v3", "haswell", "broadwell", "skylake", "znver1", "znver2", "znver3", "alderlake",
         "raptorlake", "meteorlake", "arrowlake", "lunarlake")


@functools.lru_cache(maxsize=None)
def vector_bytes(cpu: str) -> int:
    """Bytes in one vector register of `cpu` (an LLVM CPU name, or native)."""
    if cpu == "native":
        with contextlib.suppress(OSError):
            flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("flags")), "")
            if " avx512f" in flags:
                return 64
            if " avx2" in flags:
                return 32
        return 16
    name = cpu.lower()
    if any(w in name for w in _WIDE):
        return 64
    if any(w in name for w in _AVX2):
        return 32
    return 16


def matmul_tile(cpu: str) -> tuple[int, int]:
    """(rows, bytes per row) of accumulators: two registers per row, half the register file."""
    width = vector_bytes(cpu)
    registers = 32 if width == 64 else 16
    rows = registers // 4
    return rows, 2 * width


def prefers_wide_vectors(cpu: str) -> bool:
    """Whether loops LLVM vectorizes itself should use 512-bit vectors.

    LLVM's default for AVX-512 CPUs is 256 bits (older parts lowered their clock for
    512-bit code). The matmul tiles already run at 512 bits, and elementwise loops
    measured faster at 512 here (the W5 gradient 155 -> 138 ms); loops that call
    libm do not (each call spills the vector registers: W3 0.95 -> 1.26 ms), so the
    caller applies this per function."""
    return vector_bytes(cpu) == 64
