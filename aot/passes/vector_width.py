"""prefer-wide-vectors: kernels without calls get LLVM's 512-bit vectorization.

Source and target: LLVM dialect. On an AVX-512 CPU (targets/cpu_features.prefers_wide_vectors)
every function that calls nothing but the library's allocator (and libm functions
LLVM turns into single instructions: fabsf, floorf, ...) gets the function attribute
`prefer-vector-width=512`; a function calling libm keeps LLVM's 256-bit default,
since each call would spill the wider vector registers.
"""
from __future__ import annotations

from mlir import ir

from .allocators import HUGE_PAGE_ALLOCATORS
from .lower_scan import ops_named

# libm functions that set no errno: LLVM replaces a call by an instruction
_INSTRUCTIONS = {f"{name}{suffix}" for name in ("fabs", "floor", "ceil", "trunc", "rint", "nearbyint", "copysign",
                                                "fmin", "fmax") for suffix in ("", "f")}
_FREE_CALLS = set(HUGE_PAGE_ALLOCATORS.values()) | _INSTRUCTIONS


def prefer_wide_vectors(module: ir.Module) -> None:
    """The pass."""
    for fn in module.body.operations:
        fn = fn.operation
        if fn.name != "llvm.func" or not fn.regions[0].blocks:
            continue  # a declaration
        callees = {ir.FlatSymbolRefAttr(c.attributes["callee"]).value
                   for c in ops_named(fn, "llvm.call") if "callee" in c.attributes}
        if callees - _FREE_CALLS:
            continue
        entry = ir.ArrayAttr.get([ir.StringAttr.get("prefer-vector-width"), ir.StringAttr.get("512")])
        existing = list(ir.ArrayAttr(fn.attributes["passthrough"])) if "passthrough" in fn.attributes else []
        fn.attributes["passthrough"] = ir.ArrayAttr.get(existing + [entry])
