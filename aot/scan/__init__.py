"""`scanaot.scan`: Aesara's `scan`, and the package Aesara users import from.

`scanaot.scan(fn, ...)` traces a loop (basic.py); the module itself is callable so
that `scanaot.scan(...)`, `from scanaot.scan import until`, `scanaot.scan.utils.until`
and `from scanaot.scan.utils import until` all work, as with `aesara.scan`.

    op.py           ScanOp and FinalValue: typing and shape rules
    basic.py        tracing a step function into a ScanOp node
    emit.py         emission to the scan dialect (registered in graph.rules)
    grad.py         the VJP: a reversed scan (registered in graph.rules)
    checkpoints.py  scan_checkpoints
    utils.py        until
    views.py        map, reduce, foldl, foldr
"""
from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from . import emit, grad, utils, views  # noqa: F401  (emit and grad register the scan op's rules)
from .basic import ScanError, scan
from .checkpoints import scan_checkpoints
from .utils import until
from .views import foldl, foldr, map, reduce  # noqa: A004

__all__ = ["scan", "until", "scan_checkpoints", "ScanError", "utils", "views", "map", "reduce",
           "foldl", "foldr"]


class _CallableModule(types.ModuleType):
    """`scanaot.scan` is both this package and the `scan` function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return scan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__signature__ = inspect.signature(scan)  # help() and inspect show scan's parameters
