"""A build's IR stages (`f.ir(stage)`), kept as MLIR bytecode and printed when read.

Printing every stage of every build cost as much as a pass (0.4 s of the GRU
gradient's build, while the last variant's tools ran); writing bytecode takes a
fraction of that, and a stage is printed only when someone reads it. The cache
record holds the bytecode (base64), so a cached build shows its stages too.
"""
from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterator, Mapping

from mlir import ir

from ..dialects import scan as scan_dialect
from ..passes.ir_helpers import bytecode

_MAGIC = b"ML\xefR"  # MLIR bytecode files start with it
# scanaot uses one MLIR context at a time in a process (a build, printing a stage)
CONTEXT_LOCK = threading.Lock()


class IRStages(Mapping):
    """stage name -> the IR text at that stage, printed on first read."""

    def __init__(self, encoded: dict[str, str] | None = None):
        self._encoded = dict(encoded or {})
        self._text: dict[str, str] = {}

    def keep(self, modules: Mapping[str, ir.Operation]) -> None:
        """Add the stages of `modules` (copies of the module after each stage)."""
        for name, module in modules.items():
            self._encoded[name] = base64.b64encode(bytecode(module)).decode()

    @classmethod
    def decoded(cls, encoded: object) -> IRStages:
        """The stages of a cache record; ValueError if it does not hold them."""
        if not isinstance(encoded, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in encoded.items()):
            raise ValueError("record without stages")
        try:
            if not all(base64.b64decode(v, validate=True).startswith(_MAGIC) for v in encoded.values()):
                raise ValueError("a stage is not MLIR bytecode")
        except binascii.Error as err:
            raise ValueError(f"a stage is not base64: {err}") from None
        return cls(encoded)

    def encoded(self) -> dict[str, str]:
        """What the cache record stores."""
        return dict(self._encoded)

    def __getitem__(self, name: str) -> str:
        if name not in self._encoded:
            raise KeyError(f"unknown stage {name!r}; expected one of {', '.join(self._encoded)}")
        if name not in self._text:
            data = base64.b64decode(self._encoded[name])
            with CONTEXT_LOCK, ir.Context() as context, ir.Location.unknown():
                scan_dialect.load(context)
                self._text[name] = str(ir.Module.parse(data))
        return self._text[name]

    def __contains__(self, name: object) -> bool:
        return name in self._encoded

    def __iter__(self) -> Iterator[str]:
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)
