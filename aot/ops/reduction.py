"""Reductions over axes: `sum`, `prod`, `max`, `min` (Reduce) and `mean`."""
from __future__ import annotations

from typing import Any

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from ..emit.builders import cast_scalar, dim, element_type, empty, fill, generic, load_scalar, store_scalar
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable, int_constant
from .creation import ones_like
from .elemwise import cast, eq, scalar_op, true_div
from .shape import dimshuffle, shape_i


class Reduce(Op):
    """sum / prod / max / min over some axes."""

    def __init__(self, kind: str, axes: tuple[int, ...], dtype: str):
        self.kind, self.axes, self.dtype = kind, axes, dtype

    def __str__(self) -> str:
        return f"{self.kind}{list(self.axes)}"

    def make_node(self, x: Variable) -> Apply:
        bcast = [b for i, b in enumerate(x.broadcastable) if i not in self.axes]
        return Apply(self, [x], [TensorType(self.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        return [[d for i, d in enumerate(input_shapes[0]) if i not in self.axes]]


_IDENTITY = {"sum": 0, "prod": 1}


def reduce_identity(kind: str, dtype: str) -> ir.Value:
    t = element_type(dtype)
    if kind in _IDENTITY:
        v = _IDENTITY[kind]
        return arith.constant(t, float(v) if dtype.startswith("float") else v)
    if dtype.startswith("float"):
        return arith.constant(t, float("-inf") if kind == "max" else float("inf"))
    info = np.iinfo(dtype) if dtype != "bool" else None
    if info is None:
        return arith.constant(t, 0 if kind == "max" else 1)
    return arith.constant(t, int(info.min if kind == "max" else info.max))


@rules.emission(Reduce)
def _emit_reduce(fe, node, values):
    x = node.inputs[0]
    op = node.op
    out = node.outputs[0].type
    kept = [a for a in range(x.ndim) if a not in op.axes]
    init = fill(reduce_identity(op.kind, out.dtype), empty([dim(values[0], a) for a in kept], out)
                if kept else tensor.empty([], element_type(out.dtype)))
    out_map = ir.AffineMap.get(x.ndim, 0, [ir.AffineDimExpr.get(a) for a in kept])
    kinds = ["reduction" if a in op.axes else "parallel" for a in range(x.ndim)]
    is_float = out.dtype.startswith("float")

    def body(args):
        v = cast_scalar(load_scalar(args[0], x.dtype), x.dtype, out.dtype)
        acc = load_scalar(args[1], out.dtype)
        if op.kind == "sum":
            r = scalar_op("add", [acc, v], out.dtype)
        elif op.kind == "prod":
            r = scalar_op("mul", [acc, v], out.dtype)
        elif op.kind == "max":
            r = arith.maximumf(acc, v) if is_float else (arith.ori(acc, v) if out.dtype == "bool" else arith.maxsi(acc, v))
        else:
            r = arith.minimumf(acc, v) if is_float else (arith.andi(acc, v) if out.dtype == "bool" else arith.minsi(acc, v))
        return store_scalar(r, out.dtype)

    return [generic([values[0]], init, [ir.AffineMap.get_identity(x.ndim), out_map], kinds, body)]


def _expand(g, x, axes):
    """A reduction's cotangent with the reduced axes put back as broadcastable dims."""
    order, k = [], 0
    for a in range(x.ndim):
        if a in axes:
            order.append("x")
        else:
            order.append(k)
            k += 1
    return dimshuffle(g, *order) if order != list(range(g.ndim)) else g


@rules.vjp(Reduce)
def _vjp_reduce(node, cots, needed):
    x, z = node.inputs[0], node.outputs[0]
    g = _expand(cots[0], x, node.op.axes)
    if node.op.kind == "sum":
        return [g * ones_like(x)]
    z_full = _expand(z, x, node.op.axes)
    if node.op.kind == "prod":
        return [g * z_full / x]
    return [g * eq(x, z_full)]



# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "sum", "prod", "max", "min", "mean",
]

def _axes(x: Variable, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    axes = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"axis {a} is out of range for {x.describe()}")
        out.append(a % x.ndim)
    return tuple(sorted(set(out)))


def _reduce(kind: str, x: Any, axis: Any, dtype: str | None) -> Variable:
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    if dtype is None:
        if kind in ("sum", "prod") and (x.dtype == "bool" or dtypes.is_int(x.dtype)):
            dtype = "int64"  # Aesara accumulates small ints in int64
        else:
            dtype = x.dtype
    if not axes:
        return cast(x, dtype)
    return Reduce(kind, axes, dtypes.check(dtype))(x)


def sum(x: Any, axis: Any = None, dtype: str | None = None) -> Variable:  # noqa: A001
    return _reduce("sum", x, axis, dtype)


def prod(x: Any, axis: Any = None, dtype: str | None = None) -> Variable:
    return _reduce("prod", x, axis, dtype)


def max(x: Any, axis: Any = None) -> Variable:  # noqa: A001
    return _reduce("max", x, axis, None)


def min(x: Any, axis: Any = None) -> Variable:  # noqa: A001
    return _reduce("min", x, axis, None)


def mean(x: Any, axis: Any = None) -> Variable:
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    total = _reduce("sum", x, axes, dtypes.upgrade_to_float(x.dtype))
    count = int_constant(1)
    for a in axes:
        count = count * shape_i(x, a)
    return true_div(total, cast(count, total.dtype))


