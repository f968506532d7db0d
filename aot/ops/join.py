"""Joining and cutting along an axis: `join`/`concatenate`/`stack` (Join), `split`
(Split), and `repeat`, `tile`, `roll`, `trace` built on them.

This family comes after reduction (it may import elemwise, creation, indexing, shape,
reduction). `repeat` and `tile` broadcast x against a zero tensor of the repeated
shape and reshape the result, so their shapes, checks and gradients are those of
the ops they are made of.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from ..emit.builders import DYN, dim, empty, index_const, index_max, index_min, to_index
from ..graph import dtypes, rules
from ..graph.basic import SEQUENCE_PACKERS, Apply, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .creation import alloc, diagonal, shape_scalars, zeros_like
from .elemwise import add, cast, maximum, mod, sub
from .indexing import getitem
from .reduction import sum as reduce_sum
from .shape import (constant_int, flatten, normalize_axis, product, reshape, shape_i, shape_padaxis,
                    specify_shape, stack_scalars)


def _slice(value: ir.Value, offsets: Sequence[ir.Value], sizes: Sequence[ir.Value]) -> ir.Value:
    """`value[offsets : offsets + sizes]`, every offset and size dynamic."""
    rank = len(sizes)
    result = ir.RankedTensorType.get([DYN] * rank, ir.RankedTensorType(value.type).element_type)
    return tensor.ExtractSliceOp(result, value, list(offsets), list(sizes), [], [DYN] * rank, [DYN] * rank,
                                 [1] * rank).result


def _insert(piece: ir.Value, dest: ir.Value, offsets: Sequence[ir.Value], sizes: Sequence[ir.Value]) -> ir.Value:
    rank = len(sizes)
    return tensor.InsertSliceOp(piece, dest, list(offsets), list(sizes), [], [DYN] * rank, [DYN] * rank,
                                [1] * rank).result


class Join(Op):
    """Tensors of one rank and dtype laid end to end along `axis`; the other dims must
    match (checked at run time: SHAPE_MISMATCH; the result then has the smallest)."""

    def __init__(self, axis: int):
        self.axis = axis

    def __str__(self) -> str:
        return f"join{{axis={self.axis}}}"

    def make_node(self, *tensors: Variable) -> Apply:
        first = tensors[0]
        for i, t in enumerate(tensors):
            if t.ndim != first.ndim or t.dtype != first.dtype:
                raise TypeError(f"join: tensor {i} is {t.describe()}, expected {first.dtype} with ndim={first.ndim}")
        bcast = [all(t.broadcastable[a] for t in tensors) for a in range(first.ndim)]
        bcast[self.axis] = len(tensors) == 1 and first.broadcastable[self.axis]
        return Apply(self, list(tensors), [TensorType(first.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        shape = list(input_shapes[0])
        for a in range(len(shape)):
            if a == self.axis:
                shape[a] = _sum([s[a] for s in input_shapes])
            elif node.outputs[0].broadcastable[a]:
                shape[a] = int_constant(1)
        return [shape]


def _sum(values: Sequence[Variable]) -> Variable:
    total = values[0]
    for v in values[1:]:
        total = add(total, v)
    return total


@rules.emission(Join)
def _emit_join(fe, node, values):
    out, axis = node.outputs[0].type, node.op.axis
    sizes = []
    for a in range(out.ndim):
        size = dim(values[0], a)
        for v in values[1:]:
            other = dim(v, a)
            if a == axis:
                size = arith.addi(size, other)
            else:
                fe.check(arith.cmpi(arith.CmpIPredicate.eq, size, other), st.SHAPE_MISMATCH)
                size = index_min(size, other)
        sizes.append(index_const(1) if out.broadcastable[a] else size)
    result = empty(sizes, out)
    offset = index_const(0)
    for v in values:
        piece_sizes = [dim(v, axis) if a == axis else sizes[a] for a in range(out.ndim)]
        zeros = [index_const(0)] * out.ndim
        offsets = [offset if a == axis else zeros[a] for a in range(out.ndim)]
        result = _insert(_slice(v, zeros, piece_sizes), result, offsets, piece_sizes)
        offset = arith.addi(offset, piece_sizes[axis])
    return [result]


@rules.vjp(Join)
def _vjp_join(node, cots, needed):
    axis, g = node.op.axis, cots[0]
    grads, start = [], int_constant(0)
    for t in node.inputs:
        stop = add(start, shape_i(t, axis))
        grads.append(getitem(g, (slice(None),) * axis + (slice(start, stop),)))
        start = stop
    return grads


class Split(Op):
    """x cut along `axis` into `n` consecutive pieces of the given sizes (one int64 scalar
    input each); sizes that are negative or do not add up to the dim set SHAPE_MISMATCH."""

    def __init__(self, axis: int, n: int):
        self.axis, self.n = axis, n

    def __str__(self) -> str:
        return f"split{{axis={self.axis}, n={self.n}}}"

    def make_node(self, x: Variable, *sizes: Variable) -> Apply:
        bcast = list(x.broadcastable)
        bcast[self.axis] = False
        return Apply(self, [x, *sizes], [TensorType(x.dtype, bcast) for _ in sizes])

    def infer_shape(self, node, input_shapes):
        shapes = []
        for size in node.inputs[1:]:
            shape = list(input_shapes[0])
            shape[self.axis] = size
            shapes.append(shape)
        return shapes


@rules.emission(Split)
def _emit_split(fe, node, values):
    x, axis = values[0], node.op.axis
    rank = node.inputs[0].ndim
    length = dim(x, axis)
    zero = index_const(0)
    offset, results = zero, []
    for v, var in zip(values[1:], node.inputs[1:]):
        size = to_index(v, var.dtype)
        fe.check(arith.cmpi(arith.CmpIPredicate.sge, size, zero), st.SHAPE_MISMATCH)
        start = index_min(offset, length)
        clamped = index_min(index_max(size, zero), arith.subi(length, start))
        sizes = [clamped if a == axis else dim(x, a) for a in range(rank)]
        results.append(_slice(x, [start if a == axis else zero for a in range(rank)], sizes))
        offset = arith.addi(offset, index_max(size, zero))
    fe.check(arith.cmpi(arith.CmpIPredicate.eq, offset, length), st.SHAPE_MISMATCH)
    return results


@rules.vjp(Split)
def _vjp_split(node, cots, needed):
    pieces = [g if g is not None else zeros_like(out) for g, out in zip(cots, node.outputs)]
    return [Join(node.op.axis)(*pieces)] + [None] * node.op.n


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "join", "concatenate", "stack", "split", "repeat", "tile", "roll", "trace",
]


def join(axis: int, *tensors_list: Any) -> Variable:
    """Tensors of one rank laid end to end along `axis` (Aesara's join; dtypes upcast)."""
    if not tensors_list:
        raise ValueError("join: no tensors to join")
    tensors = [as_tensor_variable(t) for t in tensors_list]
    if tensors[0].ndim == 0:
        raise TypeError("join: scalars cannot be joined; use stack")
    axis = normalize_axis(axis, tensors[0].ndim, "join")
    if len(tensors) == 1:
        return tensors[0]
    dtype = dtypes.upcast(*[t.dtype for t in tensors])
    return Join(axis)(*[cast(t, dtype) for t in tensors])


def concatenate(tensor_list: Sequence[Any], axis: int = 0) -> Variable:
    """numpy's concatenate: `join(axis, *tensor_list)`."""
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError(f"concatenate: tensor_list must be a list or tuple of tensors, got {tensor_list!r}")
    return join(axis, *tensor_list)


def stack(*tensors: Any, axis: int = 0) -> Variable:
    """Tensors of one shape stacked along a new `axis`; scalars make a vector.
    Takes the tensors as arguments or as one list (Aesara accepts both)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ValueError("stack: no tensors to stack")
    values = [as_tensor_variable(t) for t in tensors]
    ndim = values[0].ndim
    for i, v in enumerate(values):
        if v.ndim != ndim:
            raise TypeError(f"stack: tensor {i} is {v.describe()}, but tensor 0 has ndim={ndim}")
    if ndim == 0 and normalize_axis(axis, 1, "stack") == 0:
        return stack_scalars(values)
    axis = normalize_axis(axis, ndim + 1, "stack")
    return join(axis, *[shape_padaxis(v, axis) for v in values])


def split(x: Any, splits_size: Any, n_splits: int, axis: int = 0) -> list[Variable] | Variable:
    """x cut along `axis` into `n_splits` pieces of the lengths `splits_size` (checked at
    run time to add up to the dim)."""
    x = as_tensor_variable(x)
    if x.ndim == 0:
        raise TypeError("split: x must have at least one dim, got a scalar")
    axis = normalize_axis(axis, x.ndim, "split")
    sizes = shape_scalars(splits_size, "split", "splits_size")
    if len(sizes) != n_splits:
        raise ValueError(f"split: n_splits={n_splits} but splits_size has {len(sizes)} entries")
    for i, s in enumerate(sizes):
        c = constant_int(s)
        if c is not None and c < 0:
            raise ValueError(f"split: splits_size entry {i} is negative ({c})")
    return Split(axis, n_splits)(x, *sizes)


def _int_scalar(value: Any, fn: str, what: str) -> Variable:
    v = as_tensor_variable(value)
    if v.ndim != 0 or not dtypes.is_int(v.dtype):
        raise TypeError(f"{fn}: {what} must be an integer scalar (a vector of counts is not supported), "
                        f"got {v.describe()}")
    c = constant_int(v)
    if c is not None and c < 0:
        raise ValueError(f"{fn}: {what} must be >= 0, got {c}")
    return cast(v, "int64")


def _broadcast_to(x: Variable, sizes: Sequence[Variable]) -> Variable:
    """x (with broadcastable dims where it repeats) broadcast to `sizes`."""
    return add(x, alloc(np.asarray(0, dtype=x.dtype), *sizes))


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Variable:
    """Each element repeated `repeats` times along `axis` (x flattened when None): numpy's
    repeat with a scalar count."""
    x = as_tensor_variable(x)
    if axis is None:
        x, axis = flatten(x), 0
    axis = normalize_axis(axis, x.ndim, "repeat")
    r = _int_scalar(repeats, "repeat", "repeats")
    dims = [shape_i(x, a) for a in range(x.ndim)]
    wide = _broadcast_to(shape_padaxis(x, axis + 1), dims[:axis + 1] + [r] + dims[axis + 1:])
    return reshape(wide, dims[:axis] + [product([dims[axis], r])] + dims[axis + 1:])


def tile(x: Any, reps: Any, ndim: int | None = None) -> Variable:
    """x repeated `reps[a]` times along each axis a (numpy's tile; reps of int scalars)."""
    x = as_tensor_variable(x)
    counts = [_int_scalar(r, "tile", f"reps entry {i}") for i, r in enumerate(
        reps if isinstance(reps, (list, tuple)) else shape_scalars(reps, "tile", "reps"))]
    ndim = max(len(counts), x.ndim) if ndim is None else ndim
    if ndim < max(len(counts), x.ndim):
        raise ValueError(f"tile: ndim={ndim} is smaller than x's {x.ndim} dims or the {len(counts)} reps")
    counts = [int_constant(1)] * (ndim - len(counts)) + counts
    x = x.dimshuffle(*(["x"] * (ndim - x.ndim) + list(range(x.ndim))))
    dims = [shape_i(x, a) for a in range(ndim)]
    interleaved = x.dimshuffle(*[e for a in range(ndim) for e in ("x", a)])
    wide = _broadcast_to(interleaved, [s for r, n in zip(counts, dims) for s in (r, n)])
    return reshape(wide, [product([r, n]) for r, n in zip(counts, dims)])


def roll(x: Any, shift: Any, axis: int | None = None) -> Variable:
    """x's elements shifted by `shift` along `axis`, wrapping around (numpy's roll; x
    flattened and reshaped back when axis is None)."""
    x = as_tensor_variable(x)
    if axis is None:
        return reshape(roll(flatten(x), shift, 0), [shape_i(x, a) for a in range(x.ndim)])
    if x.ndim == 0:
        raise TypeError("roll: x must have at least one dim when axis is given")
    axis = normalize_axis(axis, x.ndim, "roll")
    shift = as_tensor_variable(shift)
    if shift.ndim != 0 or not dtypes.is_int(shift.dtype):
        raise TypeError(f"roll: shift must be an integer scalar, got {shift.describe()}")
    n = shape_i(x, axis)
    cut = sub(n, mod(cast(shift, "int64"), maximum(n, 1)))
    before = (slice(None),) * axis
    rolled = join(axis, getitem(x, before + (slice(cut, None),)), getitem(x, before + (slice(None, cut),)))
    # x's shape, stated: the pieces' lengths go through `mod`, which manifests cannot express
    return specify_shape(rolled, [shape_i(x, a) for a in range(x.ndim)])


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Variable:
    """The sum of a matrix's `offset`-th diagonal (numpy's trace)."""
    return reduce_sum(diagonal(a, offset, axis1, axis2))


SEQUENCE_PACKERS.insert(0, stack)
