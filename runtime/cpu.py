"""CPU levels and features: which kernel variant of a library this CPU can run.

A cpu library carries one or more variants of its kernels, each compiled for a
set of x86 features (an x86-64 psABI level such as x86-64-v3, or the build
host's own features for `cpu="native"`); the manifest lists each variant's
features by LLVM name. At load the library's own `scanaot_cpu_features()`
(runtime/cpu_features.c, CPUID) says what this CPU has: the best variant it can
run is used, and a library with none is refused with the missing features named,
instead of dying with SIGILL at the first call.
"""
from __future__ import annotations

import ctypes
from typing import Sequence

from .elf import LibraryError

# bit i of scanaot_cpu_features() is FEATURES[i]: the order of runtime/cpu_features.c
FEATURES = (
    "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf",
    "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave",
    "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
    "avx512vbmi", "avx512vbmi2", "avx512vnni", "avx512bitalg", "avx512vpopcntdq", "avx512ifma",
    "avx512bf16", "avx512fp16", "gfni", "vaes", "vpclmulqdq", "avxvnni", "adx", "sha", "aes", "pclmul",
    "prfchw", "sse4a",
)

_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf")
_V3 = _V2 + ("avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
# the x86-64 psABI levels, as LLVM defines them (llvm/lib/Target/X86/X86.td)
LEVELS: dict[str, tuple[str, ...]] = {"x86-64": (), "x86-64-v2": _V2, "x86-64-v3": _V3, "x86-64-v4": _V4}


def mask(features: Sequence[str]) -> int:
    """The bits of `features` in scanaot_cpu_features()'s mask."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise LibraryError(f"unknown CPU feature(s) {', '.join(unknown)}")
    return sum(1 << FEATURES.index(f) for f in features)


def host_features(handle: ctypes.CDLL) -> set[str]:
    """This CPU's features, as detected by the library's own CPUID code."""
    detect = handle.scanaot_cpu_features
    detect.restype, detect.argtypes = ctypes.c_uint64, []
    bits = detect()
    names = ctypes.c_char.in_dll(handle, "scanaot_cpu_feature_names")
    table = ctypes.string_at(ctypes.addressof(names)).decode("ascii").split(",")
    return {name for i, name in enumerate(table) if bits >> i & 1}


def best_variant(variants: Sequence[dict], host: set[str]) -> dict | None:
    """The last (most capable) variant whose features this CPU has: the ifunc resolvers' rule."""
    runnable = [v for v in variants if set(v["features"]) <= host]
    return runnable[-1] if runnable else None


def check_variants(variants: Sequence[dict], handle: ctypes.CDLL, path: str) -> dict:
    """The variant the library's entry points run here, or a LibraryError naming what is missing."""
    host = host_features(handle)
    chosen = best_variant(variants, host)
    if chosen is not None:
        return chosen
    least = min(variants, key=lambda v: len(set(v["features"]) - host))
    missing = sorted(set(least["features"]) - host, key=FEATURES.index)
    built_for = ", ".join(v["cpu"] for v in variants)
    raise LibraryError(f"{path}: this CPU cannot run it: built for {built_for}, and this CPU lacks "
                       f"{', '.join(missing)}; rebuild with scanaot.compile(..., cpu='portable') or a "
                       "lower level such as cpu='x86-64-v2' (docs/deploy.md)")
