"""Symbolic shapes: each dim of a variable as an int64 scalar graph (Aesara's ShapeFeature).

Used where a shape must be known before a value exists: the per-step shape of a
scan output that has no initial state is computed before the loop starts.
"""
from __future__ import annotations

from .graph import Variable


def shape_of(var: Variable) -> list[Variable]:
    """One int64 scalar per dim: from the op's shape rule where it has one, else `shape_i(var)`."""
    from .basic import shape_i
    from .ops import int_constant

    node = var.owner
    dims: list[Variable] | None = None
    if node is not None:
        inferred = node.op.infer_shape(node, [shape_of(v) for v in node.inputs])
        if inferred is not None:
            dims = inferred[node.outputs.index(var)]
    if dims is None:
        dims = [shape_i(var, axis) for axis in range(var.ndim)]
    return [int_constant(1) if b else d for d, b in zip(dims, var.broadcastable)]
