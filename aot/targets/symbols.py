"""The C symbols of a library, in one place.

Exported (docs/c_abi.md):
- `scanaot_LIBRARY__FUNCTION`: a function's entry point. The library's name is
  part of it, so two libraries that both have a `predict` can be linked into one
  program and each call reaches the library its header names.
- `scanaot_manifest_LIBRARY`: the manifest (JSON, NUL-terminated).
Internal (local to the library):
- `scanaot_kernel_FUNCTION`: the emitted function (the MLIR symbol; its C
  interface wrapper is `_mlir_ciface_scanaot_kernel_FUNCTION`). The prefix keeps
  user names such as `malloc` or `expf` apart from the C and math libraries.
- `scanaot_LIBRARY__FUNCTION__x86_64_v3`, ...: one CPU variant of an entry point.
- `scanaot_shared_FUNCTION`: the kernel's body every CPU variant calls, compiled once
  (passes/share_kernels.py): global in its object, hidden in the library.
Library and function names are ASCII identifiers without double underscores
(artifact._check_name), so none of these can spell another.
"""
from __future__ import annotations

from ..runtime.manifest import manifest_symbol  # noqa: F401  (the runtime reads it at load)


def entry_symbol(library: str, function: str) -> str:
    return f"scanaot_{library}__{function}"


def kernel_symbol(function: str) -> str:
    return f"scanaot_kernel_{function}"


def shared_symbol(kernel: str) -> str:
    """The symbol of `kernel`'s (kernel_symbol) body shared by the CPU variants."""
    return "scanaot_shared_" + kernel.removeprefix("scanaot_kernel_")


def c_interface(function: str) -> str:
    """The wrapper MLIR emits for `llvm.emit_c_interface` (memref descriptors by pointer)."""
    return f"_mlir_ciface_{kernel_symbol(function)}"


def variant_symbol(entry: str, variant: dict) -> str:
    return f"{entry}{variant['suffix']}"
