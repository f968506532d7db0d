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
    "scan": ("scanaot.scan", None),
    "until": ("scanaot.scan", "until"),
    "scan_checkpoints": ("scanaot.scan", "scan_checkpoints"),
    "function": ("scanaot.packaging.function", "function"),
    "Function": ("scanaot.packaging.function", "Function"),
    "UnusedInputError": ("scanaot.packaging.function", "UnusedInputError"),
    "compile": ("scanaot.packaging.artifact", "compile"),
    "compile_many": ("scanaot.packaging.artifact", "compile_many"),
    "Artifact": ("scanaot.packaging.artifact", "Artifact"),
    "dot": ("scanaot.ops.linalg", "dot"),
    "grad": ("scanaot.gradient", "grad"),
    "gradient": ("scanaot.gradient", None),
    "tensor": ("scanaot.tensor", None),
    "config": ("scanaot.config", None),
    "shared": ("scanaot.graph.shared", "shared"),
    "OrderedUpdates": ("scanaot.graph.shared", "OrderedUpdates"),
    "map": ("scanaot.scan.views", "map"),
    "reduce": ("scanaot.scan.views", "reduce"),
    "foldl": ("scanaot.scan.views", "foldl"),
    "foldr": ("scanaot.scan.views", "foldr"),
    "jacobian": ("scanaot.gradient", "jacobian"),
    "hessian": ("scanaot.gradient", "hessian"),
    "printing": ("scanaot.printing", None),
    "debugprint": ("scanaot.printing", "debugprint"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        if name.startswith("__"):
            raise AttributeError(f"module 'scanaot' has no attribute {name!r}")
        raise AttributeError(f"module 'scanaot' has no attribute {name!r}: {name!r} is not supported by "
                             "scanaot (the supported names are listed in docs/tensor.md)")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
