"""scanaot: Aesara's `scan`, compiled ahead of time through MLIR.

    import scanaot as aesara
    import scanaot.tensor as at

Heavy parts (MLIR) load lazily, so `import scanaot.runtime` works with numpy only.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "scan": ("scanaot.scan_trace", "scan"),
    "until": ("scanaot.scan_trace", "until"),
    "function": ("scanaot.compiled", "function"),
    "Function": ("scanaot.compiled", "Function"),
    "dot": ("scanaot.basic", "dot"),
    "grad": ("scanaot.autodiff", "grad"),
    "scan_checkpoints": ("scanaot.checkpoints", "scan_checkpoints"),
    "compile": ("scanaot.artifact", "compile"),
    "compile_many": ("scanaot.artifact", "compile_many"),
    "Artifact": ("scanaot.artifact", "Artifact"),
    "tensor": ("scanaot.tensor", None),
    "config": ("scanaot.config", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'scanaot' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
