"""Symbolic shapes: each dim of a variable as an int64 scalar graph (Aesara's ShapeFeature).

Used where a shape must be known before a value exists: the per-step shape of a
scan output that has no initial state is computed before the loop starts.
"""
from __future__ import annotations

from ..graph.basic import Scope, Variable, int_constant
from .shape import shape_i


def shape_of(var: Variable) -> list[Variable]:
    """One int64 scalar per dim: from the op's shape rule where it has one, else `shape_i(var)`.

    Iterative and memoized per variable and trace scope (the dims are variables of
    the scope that asks), so a graph 10^5 ops deep costs one visit per variable."""
    scope = Scope.current()
    stack = [var]
    while stack:
        v = stack[-1]
        if _cached(v, scope) is not None:
            stack.pop()
            continue
        missing = [i for i in v.owner.inputs if _cached(i, scope) is None] if v.owner is not None else []
        if missing:
            stack.extend(missing)
            continue
        _infer(v, scope)
        stack.pop()
    return list(_cached(var, scope))


def _cached(var: Variable, scope: int) -> list[Variable] | None:
    return var.__dict__.get("_shape_of", {}).get(scope)


def _infer(var: Variable, scope: int) -> None:
    """Record the dims of `var` (and its node's other outputs); its inputs' are known."""
    node = var.owner
    inferred = None
    if node is not None:
        inferred = node.op.infer_shape(node, [list(_cached(v, scope)) for v in node.inputs])
    for index, out in enumerate(node.outputs if node is not None else [var]):
        dims = inferred[index] if inferred is not None else [shape_i(out, axis) for axis in range(out.ndim)]
        dims = [int_constant(1) if b else d for d, b in zip(dims, out.broadcastable)]
        out.__dict__.setdefault("_shape_of", {})[scope] = dims
