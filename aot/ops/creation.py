"""Tensors made from scalars and shapes: `ones_like`/`zeros_like` (Fill), `alloc`,
`zeros`, `ones` (Alloc) and `arange` (ARange)."""
from __future__ import annotations

from typing import Any

import numpy as np
from mlir import ir
from mlir.dialects import arith, math, tensor

from .. import config
from ..emit.builders import (cast_scalar, compute_type, dims, element_type, empty, fill, generic, index_const,
                             index_max, loop_index, scalar_of, store_scalar, to_index)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Constant, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .elemwise import cast, ceil, int_div, maximum, neg, true_div


class Fill(Op):
    """`ones_like`/`zeros_like`: a tensor shaped like the input, filled with a constant."""

    def __init__(self, value: float, dtype: str):
        self.value = value
        self.dtype = dtypes.check(dtype)

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [TensorType(self.dtype, x.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


@rules.emission(Fill)
def _emit_fill(fe, node, values):
    out = node.outputs[0].type
    elem = element_type(out.dtype)
    const = arith.constant(elem, float(node.op.value) if dtypes.is_float(out.dtype) else int(node.op.value))
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], elem), [const])]
    return [fill(const, empty(dims(values[0]), out))]


rules.vjp(Fill)(rules.no_gradient)


class Alloc(Op):
    """A tensor of the given dims filled with a scalar value (`at.alloc`, `at.zeros`)."""

    def make_node(self, value: Variable, *dims: Variable) -> Apply:
        if value.ndim != 0:
            raise TypeError(f"alloc: the fill value must be a scalar, got {value.describe()}")
        for d in dims:
            if d.ndim != 0 or not (dtypes.is_int(d.dtype) or d.dtype == "bool"):
                raise TypeError(f"alloc dimension must be an integer scalar, got {d.describe()}")
        bcast = [isinstance(d, Constant) and int(d.data) == 1 for d in dims]
        return Apply(self, [value, *dims], [TensorType(value.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        return [list(node.inputs[1:])]


@rules.emission(Alloc)
def _emit_alloc(fe, node, values):
    out = node.outputs[0].type
    value = store_scalar(cast_scalar(scalar_of(values[0], node.inputs[0].dtype), node.inputs[0].dtype,
                                     out.dtype), out.dtype)
    sizes = []
    for v, var in zip(values[1:], node.inputs[1:]):
        size = to_index(v, var.dtype)
        fe.check(arith.cmpi(arith.CmpIPredicate.sge, size, index_const(0)), st.BAD_ALLOC)
        sizes.append(index_max(size, index_const(0)))
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], value.type), [value])]
    return [fill(value, empty(sizes, out))]


@rules.vjp(Alloc)
def _vjp_alloc(node, cots, needed):
    # the gradient engine sums the cotangent down to the scalar fill value
    return [cots[0]] + [None] * (len(node.inputs) - 1)


class ARange(Op):
    """`at.arange(start, stop, step)`: a vector, Python's `range` extended to floats."""

    def __init__(self, dtype: str):
        self.dtype = dtypes.check(dtype)

    def make_node(self, start: Variable, stop: Variable, step: Variable) -> Apply:
        for name, v in (("start", start), ("stop", stop), ("step", step)):
            if v.ndim != 0:
                raise TypeError(f"arange: {name} must be a scalar, got {v.describe()}")
        return Apply(self, [start, stop, step], [TensorType(self.dtype, [False])])

    def infer_shape(self, node, input_shapes):
        start, stop, step = node.inputs
        if all(dtypes.is_int(v.dtype) or v.dtype == "bool" for v in node.inputs):
            size = neg(int_div(start - stop, step))
        else:
            size = ceil(true_div(stop - start, step))
        return [[maximum(cast(size, "int64"), int_constant(0))]]


@rules.emission(ARange)
def _emit_arange(fe, node, values):
    dtype = node.op.dtype
    start, stop, step = (scalar_of(v, dtype) for v in values)
    t = compute_type(dtype)
    if dtypes.is_float(dtype):
        zero = arith.constant(t, 0.0)
        fe.check(arith.cmpf(arith.CmpFPredicate.UNE, step, zero), st.BAD_ALLOC)
        count = math.ceil(arith.divf(arith.subf(stop, start), step))
        count = arith.fptosi(ir.IntegerType.get_signless(64), arith.maximumf(count, zero))
    else:
        zero = arith.constant(t, 0)
        nonzero = arith.cmpi(arith.CmpIPredicate.ne, step, zero)
        fe.check(nonzero, st.BAD_ALLOC)
        safe_step = arith.select(nonzero, step, arith.constant(t, 1))
        count = arith.ceildivsi(arith.subi(stop, start), safe_step)
        count = arith.select(nonzero, arith.maxsi(count, zero), zero)
    init = empty([arith.index_cast(ir.IndexType.get(), count)], node.outputs[0].type)

    def body(args):
        i = arith.index_cast(ir.IntegerType.get_signless(64), loop_index(0))
        if dtypes.is_float(dtype):
            return arith.addf(start, arith.mulf(arith.sitofp(t, i), step))
        return arith.addi(start, arith.muli(cast_scalar(i, "int64", dtype), step))

    return [generic([], init, [ir.AffineMap.get_identity(1)], ["parallel"], body)]


rules.vjp(ARange)(rules.no_gradient)


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "ones_like", "zeros_like", "alloc", "zeros", "ones", "arange",
]

def ones_like(x: Any, dtype: str | None = None) -> Variable:
    x = as_tensor_variable(x)
    return Fill(1, dtype or x.dtype)(x)


def zeros_like(x: Any, dtype: str | None = None) -> Variable:
    x = as_tensor_variable(x)
    return Fill(0, dtype or x.dtype)(x)


def alloc(value: Any, *dims: Any) -> Variable:
    return Alloc()(as_tensor_variable(value), *[cast(as_tensor_variable(d), "int64") for d in dims])


def zeros(shape: Any, dtype: str | None = None) -> Variable:
    return alloc(np.asarray(0, dtype or config.floatX), *_dims(shape))


def ones(shape: Any, dtype: str | None = None) -> Variable:
    return alloc(np.asarray(1, dtype or config.floatX), *_dims(shape))


def _dims(shape: Any) -> list:
    if isinstance(shape, Variable):
        if shape.ndim == 0:
            return [shape]
        elements = shape.owner.op.known_elements(shape.owner) if shape.owner is not None else None
        if elements is None:
            raise TypeError("shape must be a tuple of scalars")
        return elements
    return list(shape) if isinstance(shape, (list, tuple)) else [shape]


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: str | None = None) -> Variable:
    """`range` as a vector; the dtype is the upcast of the three bounds (Aesara's rule)."""
    if stop is None:
        start, stop = 0, start
    start, stop, step = as_tensor_variable(start), as_tensor_variable(stop), as_tensor_variable(step)
    dtype = dtypes.check(dtype) if dtype else dtypes.upcast(start.dtype, stop.dtype, step.dtype)
    if isinstance(step, Constant) and not np.all(step.data):
        raise ValueError("arange: step must not be zero")
    return ARange(dtype)(cast(start, dtype), cast(stop, dtype), cast(step, dtype))
