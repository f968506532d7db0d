"""The CPUs a cpu library is compiled for: its variants, and their vector width.

`cpu=` names what the library's machine code may assume (docs/deploy.md):

- an x86-64 psABI level: `x86-64`, `x86-64-v2` (SSE4.2, 2009+), `x86-64-v3`
  (AVX2/FMA, 2013+), `x86-64-v4` (AVX-512);
- `portable` (the default of `scanaot.compile`): one variant per level from v2 to
  v4 in one library; the loader binds each entry point to the best one the CPU
  has;
- `native` (the default of `scanaot.function`): the build host's own features,
  fastest here and refused at load on a CPU that lacks any of them;
- a sequence of levels: those variants.

Each variant is compiled from its own emission (the matmul register tile and the
vector chunks of scan-interchange follow its vector width) with
`-mcpu=<level> -mattr=<features>`: LLVM may use exactly the features the
manifest records, so the load-time check is sound.
"""
from __future__ import annotations

import functools
import re
import subprocess
from typing import Sequence

from ..runtime.cpu import FEATURES, LEVELS
from ..runtime.cpu import host_features as detect_features
from .toolchain import helper_library, tool

PORTABLE = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
ALIASES = {"portable": PORTABLE}
CUDA_HOST_DEFAULT = "x86-64-v2"


def variants(cpu: str | Sequence[str] | None, *, default: str = "portable", cuda: bool = False) -> list[dict]:
    """The variants `cpu` asks for, least capable first: {cpu, base, features, suffix[, tune]}."""
    names = _names(cpu if cpu is not None else (CUDA_HOST_DEFAULT if cuda else default))
    if cuda and len(names) > 1:
        raise ValueError(f"cpu={cpu!r}: the cuda target's host code is built for one CPU level; "
                         "pass one, e.g. cpu='x86-64-v2'")
    resolved = [_variant(n) for n in names]
    resolved.sort(key=lambda v: len(v["features"]))
    return resolved


def _names(cpu: str | Sequence[str]) -> list[str]:
    if isinstance(cpu, str):
        names = list(ALIASES.get(cpu, (cpu,)))
    elif isinstance(cpu, (list, tuple)) and cpu and all(isinstance(c, str) for c in cpu):
        names = list(dict.fromkeys(cpu))
    else:
        raise ValueError(f"cpu must be a CPU level name or a list of them, got {cpu!r}")
    for name in names:
        if name != "native" and name not in LEVELS:
            raise ValueError(f"unknown cpu {name!r}: expected one of {', '.join(LEVELS)}, native, "
                             "portable, or a list of levels (docs/deploy.md)")
    if "native" in names and len(names) > 1:
        raise ValueError("cpu='native' cannot be combined with other levels")
    return names


def _variant(name: str) -> dict:
    if name != "native":
        return {"cpu": name, "base": name, "features": list(LEVELS[name]), "suffix": _suffix(name)}
    host = host_features()
    base = max((lvl for lvl, fs in LEVELS.items() if set(fs) <= host), key=lambda lvl: len(LEVELS[lvl]))
    return {"cpu": "native", "base": base, "features": [f for f in FEATURES if f in host],
            "suffix": "__native", "tune": host_cpu_name()}


def _suffix(name: str) -> str:
    return "__" + re.sub(r"[^A-Za-z0-9]", "_", name)


def llc_flags(variant: dict) -> list[str]:
    """opt/llc flags that allow exactly the variant's features."""
    extra = [f for f in variant["features"] if f not in LEVELS[variant["base"]]]
    flags = [f"-mcpu={variant['base']}"]
    if extra:
        flags.append("-mattr=" + ",".join(f"+{f}" for f in extra))
    return flags


def vector_bytes(features: Sequence[str]) -> int:
    """Bytes in one vector register of a CPU with `features`."""
    if "avx512f" in features:
        return 64
    if "avx2" in features:
        return 32
    return 16


def masked_element_bytes(features: Sequence[str]) -> tuple[int, ...]:
    """Element sizes a CPU with `features` loads and stores under a mask in one
    instruction (AVX-512BW: every size; AVX: vmaskmov for 4 and 8 bytes; SSE: none)."""
    if "avx512f" in features:
        return (1, 2, 4, 8) if "avx512bw" in features else (4, 8)
    if "avx" in features:
        return (4, 8)
    return ()


def matmul_tile(features: Sequence[str]) -> tuple[int, int, bool]:
    """(rows, bytes per row) of accumulators: two registers per row, half the register
    file; and whether the CPU loads float rows under a mask (else every right operand
    is read from zero-padded panels: SSE would split a masked load per lane)."""
    width = vector_bytes(features)
    registers = 32 if width == 64 else 16
    rows = registers // 4
    return rows, 2 * width, 4 in masked_element_bytes(features)


def prefers_wide_vectors(features: Sequence[str]) -> bool:
    """Whether loops LLVM vectorizes itself should use 512-bit vectors.

    LLVM's default for AVX-512 CPUs is 256 bits (older parts lowered their clock for
    512-bit code). The matmul tiles already run at 512 bits, and elementwise loops
    measured faster at 512 here (the W5 gradient 155 -> 138 ms); loops that call
    libm do not (each call spills the vector registers: W3 0.95 -> 1.26 ms), so the
    caller applies this per function."""
    return vector_bytes(features) == 64


@functools.lru_cache(maxsize=None)
def host_features() -> frozenset[str]:
    """The build host's features, by the same CPUID code the libraries carry."""
    import ctypes

    return frozenset(detect_features(ctypes.CDLL(str(helper_library("cpu_features.c")))))


@functools.lru_cache(maxsize=None)
def host_cpu_name() -> str:
    """LLVM's name for the build host (`Host CPU:` of llc --version): what native tunes for."""
    out = subprocess.run([tool("llvm", "llc"), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"Host CPU:\s*(\S+)", out)
    return found.group(1) if found else "generic"
