"""Shapes and dims: `dimshuffle`/`transpose` (DimShuffle), `shape_i` (ShapeI) and
`shape`/`stack` of scalars (MakeVector)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from ..emit.builders import dim, element_type, empty, generic, index_const, scalar_of, scalar_tensor, store_scalar
from ..graph import dtypes, rules
from ..graph.basic import (SEQUENCE_PACKERS, Apply, Constant, Op, TensorType, Variable, as_tensor_variable,
                           int_constant)
from .elemwise import cast
from .indexing import getitem


class DimShuffle(Op):
    """Reorder dims, add broadcastable dims ('x'), drop broadcastable ones."""

    def __init__(self, in_bcast: tuple[bool, ...], order: tuple):
        self.order = order
        kept = [o for o in order if o != "x"]
        if len(set(kept)) != len(kept) or any(not 0 <= o < len(in_bcast) for o in kept):
            raise ValueError(f"dimshuffle: invalid order {order} for a {len(in_bcast)}-d input")
        for axis, b in enumerate(in_bcast):
            if axis not in kept and not b:
                raise ValueError(f"dimshuffle: cannot drop dim {axis}: it is not broadcastable")

    def __str__(self) -> str:
        return f"dimshuffle{self.order}"

    def make_node(self, x: Variable) -> Apply:
        bcast = [True if o == "x" else x.broadcastable[o] for o in self.order]
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        return [[int_constant(1) if o == "x" else input_shapes[0][o] for o in self.order]]


@rules.emission(DimShuffle)
def _emit_dimshuffle(fe, node, values):
    x = node.inputs[0]
    order = node.op.order
    out = node.outputs[0].type
    sizes = [index_const(1) if o == "x" else dim(values[0], o) for o in order]
    exprs = []
    for axis in range(x.ndim):
        if axis in order:
            exprs.append(ir.AffineDimExpr.get(order.index(axis)))
        else:
            exprs.append(ir.AffineConstantExpr.get(0))
    maps = [ir.AffineMap.get(out.ndim, 0, exprs), ir.AffineMap.get_identity(out.ndim)]
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], element_type(out.dtype)),
                                     [tensor.extract(values[0], [index_const(0)] * x.ndim)])]
    return [generic([values[0]], empty(sizes, out), maps, ["parallel"] * out.ndim, lambda a: a[0])]


@rules.vjp(DimShuffle)
def _vjp_dimshuffle(node, cots, needed):
    # the dims it added are broadcastable in the cotangent (the gradient engine sums
    # them down first), so the inverse dimshuffle drops them
    x, g = node.inputs[0], cots[0]
    kept = [o for o in node.op.order if o != "x"]
    order = [node.op.order.index(axis) if axis in kept else "x" for axis in range(x.ndim)]
    return [dimshuffle(g, *order) if order != list(range(g.ndim)) else g]


class ShapeI(Op):
    """The length of one dim, as an int64 scalar."""

    def __init__(self, axis: int):
        self.axis = axis

    def __str__(self) -> str:
        return f"shape_{self.axis}"

    def make_node(self, x: Variable) -> Apply:
        if not 0 <= self.axis < x.ndim:
            raise IndexError(f"shape: axis {self.axis} out of range for {x.describe()}")
        return Apply(self, [x], [TensorType("int64", [])])


@rules.emission(ShapeI)
def _emit_shape_i(fe, node, values):
    size = arith.index_cast(ir.IntegerType.get_signless(64), dim(values[0], node.op.axis))
    return [scalar_tensor(size, "int64")]


rules.vjp(ShapeI)(rules.no_gradient)


class MakeVector(Op):
    """Scalars stacked into a vector (`x.shape`)."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def make_node(self, *scalars: Variable) -> Apply:
        return Apply(self, scalars, [TensorType(self.dtype, [len(scalars) == 1])])

    def infer_shape(self, node, input_shapes):
        return [[int_constant(len(node.inputs))]]

    def known_elements(self, node):
        return list(node.inputs)


@rules.emission(MakeVector)
def _emit_make_vector(fe, node, values):
    elems = [store_scalar(scalar_of(v, var.dtype), var.dtype) for v, var in zip(values, node.inputs)]
    static = ir.RankedTensorType.get([len(elems)], element_type(node.outputs[0].dtype))
    return [tensor.from_elements(static, elems)]


@rules.vjp(MakeVector)
def _vjp_make_vector(node, cots, needed):
    g = cots[0]
    return [getitem(g, i) for i in range(len(node.inputs))]



# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "shape", "stack", "dimshuffle", "transpose",
]

def shape_i(x: Any, axis: int) -> Variable:
    x = as_tensor_variable(x)
    if axis < 0:
        axis += x.ndim
    if 0 <= axis < x.ndim and x.broadcastable[axis]:
        return int_constant(1)
    if isinstance(x, Constant) and 0 <= axis < x.ndim:
        return int_constant(x.data.shape[axis])
    return ShapeI(axis)(x)


def shape(x: Any) -> Variable:
    x = as_tensor_variable(x)
    if x.ndim == 0:
        return as_tensor_variable(np.zeros(0, dtype="int64"))
    return MakeVector("int64")(*[shape_i(x, i) for i in range(x.ndim)])


def stack(values: Sequence[Any]) -> Variable:
    vals = [as_tensor_variable(v) for v in values]
    if all(v.ndim == 0 for v in vals):
        dtype = dtypes.upcast(*[v.dtype for v in vals])
        return MakeVector(dtype)(*[cast(v, dtype) for v in vals])
    raise TypeError("stack: only scalars can be stacked")


def dimshuffle(x: Variable, *order: Any) -> Variable:
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = tuple(order[0])
    return DimShuffle(x.broadcastable, tuple(order))(x)


def transpose(x: Any) -> Variable:
    x = as_tensor_variable(x)
    return dimshuffle(x, *reversed(range(x.ndim)))


SEQUENCE_PACKERS.append(stack)
