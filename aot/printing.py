"""`debugprint`: the traced graph as an indented text tree, as Aesara's
`aesara.printing.debugprint` prints it, to read what a program computes.

    add [id A] 'y'
     |x [id B]
     |TensorConstant{2} [id C]

Each variable gets an id the first time it is printed; a node reached again is
printed by its id only. Loops (scan) print their step graph under "Inner graphs".
It reads the graph only through `graph.basic`, so it depends on no other room.
"""
from __future__ import annotations

import io
import string
import sys
from typing import Any, TextIO

from .graph.basic import Constant, Variable


def _roots(obj: Any) -> list[Variable]:
    """The output variables of a variable, a list of them, or a compiled function."""
    if isinstance(obj, Variable):
        return [obj]
    spec = getattr(obj, "spec", None)
    if spec is not None and hasattr(spec, "outputs"):
        return list(spec.outputs)
    if isinstance(obj, (list, tuple)) and all(isinstance(v, Variable) for v in obj):
        return list(obj)
    raise TypeError(f"debugprint: expected a variable, a list of variables or a compiled function, "
                    f"got {type(obj).__name__}")


def _char_id(n: int) -> str:
    """A, B, ..., Z, BA, BB, ... as Aesara numbers variables."""
    letters = string.ascii_uppercase
    label = ""
    while True:
        label = letters[n % 26] + label
        n //= 26
        if n == 0:
            return label


class _Printer:
    def __init__(self, file: TextIO, depth: int, print_type: bool, ids: str):
        self.file, self.depth, self.print_type, self.id_type = file, depth, print_type, ids
        self.ids: dict[Any, str] = {}
        self.inner: list[Any] = []

    def id_of(self, var: Variable) -> tuple[str, bool]:
        key = var.owner if var.owner is not None else var
        seen = key in self.ids
        if not seen:
            n = len(self.ids)
            self.ids[key] = {"CHAR": _char_id(n), "int": str(n), "": ""}[self.id_type]
        return self.ids[key], seen

    def label(self, var: Variable) -> str:
        if isinstance(var, Constant):
            text = f"TensorConstant{{{_short(var.data)}}}"
        elif var.owner is None:
            text = var.name or f"<{var.dtype}, ndim={var.ndim}>"
        else:
            out = f".{var.index}" if len(var.owner.outputs) > 1 else ""
            text = f"{var.owner.op}{out}"
        return text

    def line(self, var: Variable, prefix: str, depth: int, prefix_child: str = "") -> None:
        """One variable, then its inputs below it (Aesara's ` |` rails)."""
        ident, seen = self.id_of(var)
        parts = [prefix + self.label(var)]
        if self.id_type:
            parts.append(f"[id {ident}]")
        if var.owner is not None:
            parts.append(repr(var.name or ""))
        if self.print_type:
            parts.append(f"<{var.dtype}, {var.broadcastable}>")
        self.file.write(" ".join(parts) + "\n")
        node = var.owner
        if node is None or seen or depth == self.depth:
            return
        if getattr(node.op, "inner_outputs", None) is not None and node.op not in self.inner:
            self.inner.append(node.op)
        for k, inp in enumerate(node.inputs):
            last = k == len(node.inputs) - 1
            self.line(inp, prefix_child + " |", depth + 1, prefix_child + ("  " if last else " |"))

    def inner_graphs(self) -> None:
        if not self.inner:
            return
        self.file.write("\nInner graphs:\n")
        done = 0
        while done < len(self.inner):
            op = self.inner[done]
            done += 1
            self.file.write(f"\n{op}\n")
            for out in op.inner_outputs:
                self.line(out, " >", 1, "  ")


def _short(data: Any) -> str:
    text = str(getattr(data, "tolist", lambda: data)())
    return text if len(text) <= 40 else text[:37] + "..."


def debugprint(obj: Any, depth: int = -1, print_type: bool = False, file: TextIO | str | None = None,
               ids: str = "CHAR", **_ignored: Any) -> Any:
    """Print the graph of `obj` (a variable, a list of them, or a scanaot.function) as
    Aesara's debugprint does. `file="str"` returns the text; otherwise it is written
    to `file` (stdout by default), which is returned."""
    if ids not in ("CHAR", "int", ""):
        raise ValueError(f"debugprint: ids must be 'CHAR', 'int' or '', got {ids!r}")
    stream: TextIO = io.StringIO() if file == "str" else sys.stdout if file is None else file
    printer = _Printer(stream, depth, print_type, ids)
    for root in _roots(obj):
        printer.line(root, "", 0)
    printer.inner_graphs()
    return stream.getvalue() if file == "str" else stream
