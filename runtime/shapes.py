"""Evaluate the manifest's shape expressions (see scanaot/packaging/shape_expr.py) in plain Python."""
from __future__ import annotations

import math
from typing import Any, Sequence

_OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b if b else 0, "truediv": lambda a, b: a / b if b else 0.0,
    "max": max, "min": min, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b, "neg": lambda a: -a, "ceil": math.ceil,
    "int": lambda a: int(a), "select": lambda c, a, b: a if c else b,
}


def evaluate(expr: dict, shapes: Sequence[tuple], scalars: Sequence[Any]) -> Any:
    """`shapes[i]` is argument i's shape, `scalars[i]` its value when it is a scalar."""
    if "const" in expr:
        return expr["const"]
    if "arg" in expr:
        return scalars[expr["arg"]]
    if "dim" in expr:
        i, axis = expr["dim"]
        return shapes[i][axis]
    fn = _OPS.get(expr.get("op"))
    if fn is None:
        raise ValueError(f"unknown shape expression {expr!r}")
    return fn(*[evaluate(a, shapes, scalars) for a in expr["args"]])


# how many operands each op takes (the manifest's schema checks expressions against it)
ARITY = {op: 2 for op in _OPS} | {"neg": 1, "ceil": 1, "int": 1, "select": 3}
