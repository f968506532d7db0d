"""A structural fingerprint of traced graphs: the build cache's key before any IR exists.

Hashing the emitted IR costs a whole emission per lookup (tens of ms for a gradient
kernel); this hash walks the graph instead, so a cache hit emits nothing. It must be
sound: every op is written down by its class and every attribute by value, every
variable by its type, name and (constants) bytes, every edge by position. An
attribute of a kind not listed here makes the fingerprint None, and the caller falls
back to hashing the emitted IR: an unknown object could hide a difference.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable

import numpy as np

from .. import config
from .basic import Constant, Op, TensorType, Variable, toposort

_PLAIN = (type(None), bool, int, float, str, bytes)


class _Unknown(Exception):
    """An attribute the fingerprint cannot write down by value."""


class _Writer:
    """Serializes variables (numbered on first sight), ops and attribute values."""

    def __init__(self) -> None:
        self.parts: list[str] = [f"floatX={config.floatX}"]
        self.numbers: dict[int, int] = {}
        self.keep: list[Variable] = []  # numbered variables stay alive: ids stay unique

    def variable(self, var: Variable) -> str:
        number = self.numbers.get(id(var))
        if number is None:
            number = self.numbers[id(var)] = len(self.numbers)
            self.keep.append(var)
            self.parts.append(f"v{number}={self._leaf(var)}")
        return f"v{number}"

    def _leaf(self, var: Variable) -> str:
        described = f"{type(var).__qualname__}:{var.type!r}:{var.name!r}:{var.index}"
        if isinstance(var, Constant):
            data = np.ascontiguousarray(var.data)
            described += f":{data.dtype.str}{data.shape}:{hashlib.sha256(data.tobytes()).hexdigest()}"
        return described

    def graph(self, inputs: Iterable[Variable], outputs: Iterable[Variable]) -> list[str]:
        outputs = list(outputs)
        for var in inputs:
            self.variable(var)
        for node in toposort(outputs, stop=[v for v in self.keep]):
            ins = ",".join(self.variable(v) for v in node.inputs)
            op = self.op(node.op)
            outs = ",".join(self.variable(v) for v in node.outputs)
            self.parts.append(f"{outs}<-{op}({ins})")
        return [self.variable(v) for v in outputs]

    def op(self, op: Op) -> str:
        inner = self._inner_graph(op)  # first: its variables are numbered as the graph's
        fields = ",".join(f"{k}={self.value(v)}" for k, v in sorted(vars(op).items()))
        return f"{type(op).__module__}.{type(op).__qualname__}[{str(op)!r}]{{{fields}}}{inner}"

    def _inner_graph(self, op: Op) -> str:
        """A loop's step graph (its inputs are leaves, numbered in their order)."""
        inner_inputs = getattr(op, "inner_inputs", None)
        if inner_inputs is None:
            return ""
        wanted = list(op.inner_outputs) + ([op.condition] if getattr(op, "condition", None) is not None else [])
        return "/" + ",".join(self.graph(inner_inputs, wanted))

    def value(self, value: Any) -> str:
        if isinstance(value, _PLAIN):
            return f"{type(value).__name__}:{value!r}"
        if isinstance(value, (tuple, list)):
            return f"{type(value).__name__}[" + ",".join(self.value(v) for v in value) + "]"
        if isinstance(value, dict):
            return "dict{" + ",".join(f"{self.value(k)}:{self.value(v)}" for k, v in
                                      sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
        if isinstance(value, Variable):
            return self.variable(value)
        if isinstance(value, TensorType):
            return repr(value)
        if isinstance(value, (np.ndarray, np.generic)):
            data = np.ascontiguousarray(value)
            return f"nd:{data.dtype.str}{data.shape}:{hashlib.sha256(data.tobytes()).hexdigest()}"
        if isinstance(value, np.dtype):
            return f"dtype:{value.str}"
        if isinstance(value, slice):
            return f"slice({self.value(value.start)},{self.value(value.stop)},{self.value(value.step)})"
        if value is Ellipsis:
            return "..."
        if isinstance(value, Op):
            return self.op(value)
        raise _Unknown(type(value).__qualname__)


def fingerprint(functions: Iterable[tuple[str, list[Variable], list[Variable], Any]]) -> str | None:
    """SHA-256 of (name, inputs, outputs, extra) per function, or None where a graph
    holds an attribute this module cannot write down by value. `extra` (plain values
    and variables) is anything else the function's code depends on."""
    writer = _Writer()
    try:
        for name, inputs, outputs, extra in functions:
            writer.parts.append(f"function {name!r} extra={writer.value(extra)}")
            writer.parts.append("-> " + ",".join(writer.graph(inputs, outputs)))
    except _Unknown:
        return None
    return hashlib.sha256("\n".join(writer.parts).encode()).hexdigest()
