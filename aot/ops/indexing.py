"""Basic indexing: `x[i, a:b:s]` (Subtensor), `set_subtensor` and `inc_subtensor`
(IncSubtensor).

Integer indices may be negative; a slice step is a Python int (negative steps read
backwards). Indices are checked at run time (INDEX_OUT_OF_BOUNDS) and clamped, so a
failed check never reads or writes outside a tensor.
"""
from __future__ import annotations

from typing import Any

import builtins

import numpy as np
from mlir import ir
from mlir.dialects import arith, scf, tensor

from ..emit.builders import (DYN, dim, dims, element_type, empty, fill, fold_index, generic, index_const,
                             index_max, index_min, load_scalar, loop_index, scalar_of, scalar_tensor,
                             store_scalar, tensor_type, to_index)
from ..emit.function import FunctionEmitter
from ..graph import dtypes, rules
from ..graph.basic import Apply, Constant, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .creation import zeros_like
from .elemwise import Cast, cast, input_map, int_div, lt, maximum, minimum, scalar_op, switch


class Subtensor(Op):
    """Basic indexing. `spec` has one entry per indexed axis: ("int",) or
    ("slice", has_start, has_stop, step); the scalar inputs follow `x` in that order."""

    def __init__(self, spec: tuple):
        self.spec = spec

    def __str__(self) -> str:
        return f"subtensor{self.spec}"

    def out_type(self, x: TensorType) -> TensorType:
        bcast = []
        for axis, entry in enumerate(self.spec):
            if entry[0] == "slice":
                bcast.append(x.broadcastable[axis] and entry[3] == 1 and not entry[1] and not entry[2])
        bcast.extend(x.broadcastable[len(self.spec):])
        return TensorType(x.dtype, bcast)

    def make_node(self, x: Variable, *indices: Variable) -> Apply:
        return Apply(self, [x, *indices], [self.out_type(x.type)])

    def infer_shape(self, node, input_shapes):
        shape = []
        scalars = iter(node.inputs[1:])
        for axis, entry in enumerate(self.spec):
            dim = input_shapes[0][axis]
            if entry[0] == "int":
                next(scalars)
                continue
            _, has_start, has_stop, step = entry
            start = next(scalars) if has_start else None
            stop = next(scalars) if has_stop else None
            shape.append(slice_length(dim, start, stop, step))
        shape.extend(input_shapes[0][len(self.spec):])
        return [shape]


def index_region(fe: FunctionEmitter, spec, source: ir.Value, scalars, scalar_vars):
    """Per indexed axis: (offset, size, step, keep) index values, with bounds checks.

    Integer indices are normalized (negative counts from the end), checked, and
    clamped so that even a failed check never reads outside the tensor.
    """
    regions = []
    it = iter(zip(scalars, scalar_vars))
    zero, one = index_const(0), index_const(1)
    for axis, entry in enumerate(spec):
        n = dim(source, axis)
        if entry[0] == "int":
            v, var = next(it)
            i = to_index(v, var.dtype)
            i = arith.select(arith.cmpi(arith.CmpIPredicate.slt, i, zero), arith.addi(i, n), i)
            inside = arith.andi(arith.cmpi(arith.CmpIPredicate.sge, i, zero),
                                arith.cmpi(arith.CmpIPredicate.slt, i, n))
            fe.check(inside, st.INDEX_OUT_OF_BOUNDS)
            i = index_max(index_min(i, arith.subi(n, one)), zero)
            regions.append((i, one, 1, False))
            continue
        _, has_start, has_stop, step = entry
        start = to_index(*next(it)) if has_start else None
        stop = to_index(*next(it)) if has_stop else None
        low = zero if step > 0 else index_const(-1)
        high = n if step > 0 else arith.subi(n, one)

        def clip(i):
            i = arith.select(arith.cmpi(arith.CmpIPredicate.slt, i, zero), arith.addi(i, n), i)
            return index_max(index_min(i, high), low)

        if step > 0:
            lo = zero if start is None else clip(start)
            hi = n if stop is None else clip(stop)
            span = arith.subi(hi, lo)
        else:
            lo = arith.subi(n, one) if start is None else clip(start)
            hi = index_const(-1) if stop is None else clip(stop)
            span = arith.subi(lo, hi)
        size = index_max(arith.ceildivsi(span, index_const(abs(step))), zero)
        regions.append((lo, size, step, True))
    return regions


def _region_slice(source: ir.Value, regions, keep_all: bool = False):
    """Offsets/sizes/strides for extract/insert_slice (all steps positive)."""
    rtype = ir.RankedTensorType(source.type)
    offsets, sizes, strides = [], [], []
    for axis in range(rtype.rank):
        if axis < len(regions):
            off, size, step, _ = regions[axis]
            offsets.append(off)
            sizes.append(size)
            strides.append(step)
        else:
            offsets.append(index_const(0))
            sizes.append(dim(source, axis))
            strides.append(1)
    return offsets, sizes, strides


def _slice_op_args(offsets, sizes, strides):
    static_off, dyn_off, static_size, dyn_size = [], [], [], []
    for v in offsets:
        c = fold_index(v)
        static_off.append(c if isinstance(c, int) else DYN)
        if not isinstance(c, int):
            dyn_off.append(v)
    for v in sizes:
        c = fold_index(v)
        static_size.append(c if isinstance(c, int) else DYN)
        if not isinstance(c, int):
            dyn_size.append(v)
    return dyn_off, dyn_size, static_off, static_size, list(strides)


@rules.emission(Subtensor)
def _emit_subtensor(fe, node, values):
    x = node.inputs[0]
    out = node.outputs[0].type
    spec = node.op.spec
    if (x.owner is not None and x.owner.op.stacks_steps and spec == (("int",),)
            and _is_constant(node.inputs[1], -1)):
        # result[-1] of a scan: the dialect's op, which scan-keep-last can remove
        return [ir.Operation.create("scan.last", results=[tensor_type(out)], operands=[values[0]]).result]
    regions = index_region(fe, spec, values[0], values[1:], node.inputs[1:])
    offsets, sizes, strides = _region_slice(values[0], regions)
    if any(s < 0 for s in strides):
        return [_gather(values[0], offsets, sizes, strides, regions, out)]
    dyn_off, dyn_size, s_off, s_size, s_stride = _slice_op_args(offsets, sizes, strides)
    kept_shape = [s for axis, s in enumerate(s_size)
                  if axis >= len(regions) or regions[axis][3]]
    result = ir.RankedTensorType.get(kept_shape, element_type(out.dtype))
    return [tensor.ExtractSliceOp(result, values[0], dyn_off, dyn_size, [], s_off, s_size, s_stride).result]


def _gather(source, offsets, sizes, strides, regions, out):
    """Indexing with a negative step: each output element reads source[offset + i*step]."""
    kept = [axis for axis in range(len(offsets)) if axis >= len(regions) or regions[axis][3]]
    init = empty([sizes[a] for a in kept], out)

    def body(args):
        idx, k = [], 0
        for axis in range(len(offsets)):
            if axis in kept:
                step = index_const(strides[axis])
                idx.append(arith.addi(offsets[axis], arith.muli(loop_index(k), step)))
                k += 1
            else:
                idx.append(offsets[axis])
        return tensor.extract(source, idx)

    return generic([], init, [ir.AffineMap.get_identity(len(kept))], ["parallel"] * len(kept), body)


def _is_constant(var, value) -> bool:
    v = var
    while v.owner is not None and isinstance(v.owner.op, Cast):
        v = v.owner.inputs[0]
    return isinstance(v, Constant) and v.data.ndim == 0 and int(v.data) == value


@rules.vjp(Subtensor)
def _vjp_subtensor(node, cots, needed):
    x, scalars = node.inputs[0], node.inputs[1:]
    gx = IncSubtensor(node.op.spec, False)(zeros_like(x), cots[0], *scalars)
    return [gx] + [None] * len(scalars)


class IncSubtensor(Op):
    """`set_subtensor` / `inc_subtensor`: a copy of x with an indexed region replaced or incremented."""

    def __init__(self, spec: tuple, set_instead_of_inc: bool):
        self.spec, self.set = spec, set_instead_of_inc

    def __str__(self) -> str:
        return ("set" if self.set else "inc") + f"_subtensor{self.spec}"

    def make_node(self, x: Variable, y: Variable, *indices: Variable) -> Apply:
        return Apply(self, [x, y, *indices], [x.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


@rules.emission(IncSubtensor)
def _emit_inc_subtensor(fe, node, values):
    x, y = node.inputs[:2]
    spec = node.op.spec
    regions = index_region(fe, spec, values[0], values[2:], node.inputs[2:])
    # a negative step selects the same elements as a positive one from the other end,
    # in reverse order: write through the positive slice and read y reversed there
    reversed_axes = set()
    for axis, (lo, size, step, keep) in enumerate(regions):
        if step < 0:
            last = arith.muli(index_max(arith.subi(size, index_const(1)), index_const(0)), index_const(step))
            regions[axis] = (arith.addi(lo, last), size, -step, keep)
            reversed_axes.add(axis)
    offsets, sizes, strides = _region_slice(values[0], regions)
    region_sizes = [s for axis, s in enumerate(sizes) if axis >= len(regions) or regions[axis][3]]
    region_type = TensorType(x.dtype, [False] * len(region_sizes))
    # y broadcast to the region (checked: a mismatch shrinks the region, never overruns y)
    for axis in range(y.ndim):
        r_axis = axis + len(region_sizes) - y.ndim
        if not y.broadcastable[axis]:
            ydim = dim(values[1], axis)
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, ydim, region_sizes[r_axis]), st.SHAPE_MISMATCH)
            region_sizes[r_axis] = index_min(ydim, region_sizes[r_axis])
    k = 0
    for axis in range(len(sizes)):
        if axis >= len(regions) or regions[axis][3]:
            sizes[axis] = region_sizes[k]
            k += 1
    dyn_off, dyn_size, s_off, s_size, s_stride = _slice_op_args(offsets, sizes, strides)
    init = empty(region_sizes, region_type)
    kept_axes = [a for a in range(len(sizes)) if a >= len(regions) or regions[a][3]]
    flipped = [kept_axes.index(a) for a in reversed_axes if a in kept_axes]
    y_value = _flip(values[1], y.type, len(region_sizes), flipped) if flipped else values[1]
    maps = [input_map(y.type, len(region_sizes)), ir.AffineMap.get_identity(len(region_sizes))]
    values = [values[0], y_value, *values[2:]]
    if node.op.set:
        if region_sizes:
            patch = generic([values[1]], init, maps, ["parallel"] * len(region_sizes), lambda a: a[0])
        else:
            patch = values[1]
    else:
        current = tensor.ExtractSliceOp(_reduced_type(region_sizes, x.dtype), values[0], dyn_off,
                                        dyn_size, [], s_off, s_size, s_stride).result
        dtype = x.dtype
        if region_sizes:
            maps = [maps[0], ir.AffineMap.get_identity(len(region_sizes)), maps[1]]
            patch = generic([values[1], current], init, maps, ["parallel"] * len(region_sizes),
                            lambda a: store_scalar(scalar_op("add", [load_scalar(a[1], dtype),
                                                                     load_scalar(a[0], dtype)], dtype), dtype))
        else:
            patch = scalar_tensor(scalar_op("add", [scalar_of(current, dtype), scalar_of(values[1], dtype)],
                                            dtype), dtype)
    patch = _to_static(patch, s_size, regions)
    return [tensor.InsertSliceOp(patch, values[0], dyn_off, dyn_size, [], s_off, s_size, s_stride).result]


def _flip(y: ir.Value, y_type, region_rank: int, flipped: list[int]) -> ir.Value:
    """y reversed along the region dims in `flipped` (broadcast dims need no reversal)."""
    offset = region_rank - y_type.ndim
    axes = [r - offset for r in flipped if r - offset >= 0 and not y_type.broadcastable[r - offset]]
    if not axes:
        return y
    sizes = dims(y)
    init = tensor.empty([fold_index(v) for v in sizes], ir.RankedTensorType(y.type).element_type)

    def body(args):
        idx = []
        for a in range(y_type.ndim):
            i = loop_index(a)
            if a in axes:
                i = arith.subi(arith.subi(sizes[a], index_const(1)), i)
            idx.append(i)
        return tensor.extract(y, idx)

    return generic([], init, [ir.AffineMap.get_identity(y_type.ndim)], ["parallel"] * y_type.ndim, body)


def _reduced_type(region_sizes, dtype):
    shape = [(fold_index(v) if isinstance(fold_index(v), int) else DYN) for v in region_sizes]
    return ir.RankedTensorType.get(shape, element_type(dtype))


def _to_static(patch, s_size, regions):
    """Cast the patch to the static sizes insert_slice expects."""
    kept = [s for axis, s in enumerate(s_size) if axis >= len(regions) or regions[axis][3]]
    want = ir.RankedTensorType.get(kept, ir.RankedTensorType(patch.type).element_type)
    return patch if patch.type == want else tensor.cast(want, patch)


@rules.vjp(IncSubtensor)
def _vjp_inc_subtensor(node, cots, needed):
    scalars = node.inputs[2:]
    g = cots[0]
    region = Subtensor(node.op.spec)(g, *scalars)
    gx = IncSubtensor(node.op.spec, True)(g, zeros_like(region), *scalars) if node.op.set else g
    return [gx, region] + [None] * len(scalars)


class Newaxis(Op):
    """`x[None]`: broadcastable dims inserted at the output positions `axes` (or, with
    `drop`, removed from there: the VJP). Indexing precedes shape in the family order,
    so this small form stands in for a dimshuffle."""

    def __init__(self, axes: tuple[int, ...], drop: bool = False):
        self.axes, self.drop = axes, drop

    def __str__(self) -> str:
        return f"{'drop' if self.drop else 'new'}axis{list(self.axes)}"

    def make_node(self, x: Variable) -> Apply:
        if self.drop:
            bcast = [b for a, b in enumerate(x.broadcastable) if a not in self.axes]
        else:
            bcast, it = [], iter(x.broadcastable)
            for a in range(x.ndim + len(self.axes)):
                bcast.append(True if a in self.axes else next(it))
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        shape = list(input_shapes[0])
        if self.drop:
            return [[d for a, d in enumerate(shape) if a not in self.axes]]
        for a in self.axes:
            shape.insert(a, int_constant(1))
        return [shape]


@rules.emission(Newaxis)
def _emit_newaxis(fe, node, values):
    out = node.outputs[0].type
    axes = node.op.axes
    if node.op.drop:  # read the dropped (size 1) dims at 0
        kept = iter(range(out.ndim))
        exprs = [ir.AffineConstantExpr.get(0) if a in axes else ir.AffineDimExpr.get(next(kept))
                 for a in range(node.inputs[0].ndim)]
        sizes = [dim(values[0], a) for a in range(node.inputs[0].ndim) if a not in axes]
    else:
        exprs = [ir.AffineDimExpr.get(a) for a in range(out.ndim) if a not in axes]
        it = iter(range(node.inputs[0].ndim))
        sizes = [index_const(1) if a in axes else dim(values[0], next(it)) for a in range(out.ndim)]
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], element_type(out.dtype)),
                                     [tensor.extract(values[0], [index_const(0)] * node.inputs[0].ndim)])]
    maps = [ir.AffineMap.get(out.ndim, 0, exprs), ir.AffineMap.get_identity(out.ndim)]
    return [generic([values[0]], empty(sizes, out), maps, ["parallel"] * out.ndim, lambda a: a[0])]


@rules.vjp(Newaxis)
def _vjp_newaxis(node, cots, needed):
    return [Newaxis(node.op.axes, not node.op.drop)(cots[0])]


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "set_subtensor", "inc_subtensor",
]

def slice_length(dim: Variable, start: Variable | None, stop: Variable | None, step: int) -> Variable:
    """Length of `range(dim)[start:stop:step]` as a graph (Python's slice semantics)."""
    dim = cast(dim, "int64")
    if step > 0:
        lo = int_constant(0) if start is None else _clip_index(start, dim, 0)
        hi = dim if stop is None else _clip_index(stop, dim, 0)
        span = hi - lo
    else:
        lo = dim - 1 if start is None else _clip_index(start, dim, -1)
        hi = int_constant(-1) if stop is None else _clip_index(stop, dim, -1)
        span = lo - hi
    step_abs = int_constant(abs(step))
    return maximum(int_div(span + (step_abs - 1), step_abs), int_constant(0))


def _clip_index(i: Variable, dim: Variable, low: int) -> Variable:
    i = cast(i, "int64")
    i = switch(lt(i, 0), i + dim, i)
    return minimum(maximum(i, low), dim + (low if low < 0 else 0))


def _index_spec(x: Variable, key: tuple) -> tuple[tuple, list[Variable]]:
    spec, scalars = [], []
    for entry in key:
        if len(spec) >= x.ndim:
            raise IndexError(f"too many indices for {x.describe()}")
        if isinstance(entry, slice):
            step = 1 if entry.step is None else entry.step
            if isinstance(step, Constant) and step.ndim == 0:
                step = int(step.data)
            if not isinstance(step, (int, np.integer)):
                raise IndexError("slice steps must be Python ints (a symbolic step is not supported)")
            if step == 0:
                raise ValueError("slice step cannot be zero")
            spec.append(("slice", entry.start is not None, entry.stop is not None, int(step)))
            for bound, what in ((entry.start, "start"), (entry.stop, "stop")):
                if bound is not None:
                    scalars.append(_index_scalar(bound, f"slice {what}"))
        else:
            spec.append(("int",))
            scalars.append(_index_scalar(entry, "index"))
    return tuple(spec), scalars


def _index_scalar(value: Any, what: str) -> Variable:
    v = as_tensor_variable(value)
    if v.ndim != 0 or not (dtypes.is_int(v.dtype) or v.dtype == "bool"):
        raise IndexError(f"{what} must be an integer scalar, got {v.describe()}")
    return cast(v, "int64")


def _is_array(entry: Any) -> bool:
    if isinstance(entry, Variable):
        return entry.ndim > 0
    return isinstance(entry, (list, np.ndarray)) and np.ndim(entry) > 0


def _expand_ellipsis(x: Variable, key: tuple) -> tuple:
    """`...` becomes as many full slices as the dims the other entries leave."""
    count = builtins.sum(e is Ellipsis for e in key)
    if count > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if count == 0:
        return key
    at = next(i for i, e in enumerate(key) if e is Ellipsis)
    used = len([e for e in key if e is not None and e is not Ellipsis])
    return key[:at] + (slice(None),) * builtins.max(x.ndim - used, 0) + key[at + 1:]


def _array_index(x: Variable, key: tuple) -> Variable:
    """`x[idx]`: one integer array on the first axis (Aesara's AdvancedSubtensor1)."""
    idx = as_tensor_variable(key[0])
    if idx.dtype == "bool":
        raise IndexError("boolean mask indexing x[mask] has a data-dependent shape, which a compiled "
                         "kernel cannot allocate; use at.switch(mask, x, 0) or a reduction "
                         "such as at.sum(at.switch(mask, x, 0))")
    if len(key) != 1 or not dtypes.is_int(idx.dtype) or idx.ndim != 1:
        raise IndexError("advanced indexing supports x[idx] with one integer vector idx "
                         f"(got {len(key)} indices, the array being {idx.describe()}); "
                         "use take(x, idx, axis) for other axes")
    if x.ndim == 0:
        raise IndexError(f"cannot index the scalar {x.describe()} with an array")
    return AdvancedSubtensor1(0)(x, idx)


def getitem(x: Variable, key: Any) -> Variable:
    # x.shape[i] is the i-th dim itself, as in Aesara's shape feature
    elements = x.owner.op.known_elements(x.owner) if x.owner is not None else None
    if elements is not None and isinstance(key, (int, np.integer)):
        return elements[int(key)]
    key = _expand_ellipsis(x, key if isinstance(key, tuple) else (key,))
    if builtins.any(_is_array(e) for e in key):
        return _array_index(x, key)
    new_axes, out_axis = [], 0
    for entry in key:
        if entry is None:
            new_axes.append(out_axis)
            out_axis += 1
        elif isinstance(entry, slice):
            out_axis += 1
    spec, scalars = _index_spec(x, tuple(e for e in key if e is not None))
    out = Subtensor(spec)(x, *scalars) if spec else x
    return Newaxis(tuple(new_axes))(out) if new_axes else out


def take_axis(a: Any, indices: Any, axis: int, mode: str = "raise") -> Variable:
    """Rows of `a` at `indices` along `axis` (out of bounds raises at run time); the
    user's `take` (shape.py, which can flatten for axis=None) builds on it."""
    a = as_tensor_variable(a)
    if mode != "raise":
        raise ValueError(f"take: mode must be 'raise' (indices are checked at run time), got {mode!r}")
    if not isinstance(axis, (int, np.integer)) or not -a.ndim <= axis < a.ndim:
        raise ValueError(f"take: axis must be an int in [-{a.ndim}, {a.ndim}) for {a.describe()}, got {axis!r}")
    axis = int(axis) % a.ndim
    idx = as_tensor_variable(indices)
    if not dtypes.is_int(idx.dtype) or idx.ndim > 1:
        raise IndexError(f"take: indices must be an integer scalar or vector, got {idx.describe()}")
    if idx.ndim == 0:
        return getitem(a, (slice(None),) * axis + (idx,))
    return AdvancedSubtensor1(axis)(a, idx)


def _advanced(x: Variable) -> bool:
    return x.owner is not None and isinstance(x.owner.op, AdvancedSubtensor1)


def _inc_or_set(x: Variable, y: Any, set_: bool) -> Variable:
    node = x.owner
    if node is not None and isinstance(node.op, AdvancedSubtensor1):
        base, idx = node.inputs
        return AdvancedIncSubtensor1(set_, node.op.axis)(base, _value_for(base, x, y), idx)
    if node is None or not isinstance(node.op, Subtensor):
        what = "set_subtensor" if set_ else "inc_subtensor"
        raise TypeError(f"{what}: the first argument must be an indexed tensor such as x[i, 1:3], "
                        f"got {x.describe()}")
    base, scalars = node.inputs[0], node.inputs[1:]
    return IncSubtensor(node.op.spec, set_)(base, _value_for(base, x, y), *scalars)


def _value_for(base: Variable, region: Variable, y: Any) -> Variable:
    """y checked against the indexed region and cast to the tensor's dtype."""
    y = as_tensor_variable(y)
    if y.ndim > region.ndim:
        raise TypeError(f"the value has {y.ndim} dims but the indexed region has {region.ndim}")
    if y.dtype != base.dtype:
        if not isinstance(y, Constant) and not np.can_cast(y.dtype, base.dtype, "same_kind"):
            raise TypeError(f"cannot write {y.describe()} into a {base.dtype} tensor without a downcast")
        y = cast(y, base.dtype)
    return y


def set_subtensor(x: Variable, y: Any, inplace: bool = False, tolerate_inplace_aliasing: bool = False) -> Variable:
    """A copy of the tensor `x` was indexed from, with that region set to `y` (Aesara's
    `inplace` flags are accepted: compiled code decides where results live)."""
    return _inc_or_set(x, y, True)


def inc_subtensor(x: Variable, y: Any, inplace: bool = False, set_instead_of_inc: bool = False,
                  tolerate_inplace_aliasing: bool = False, ignore_duplicates: bool = False) -> Variable:
    """A copy of the tensor `x` was indexed from, with `y` added to that region
    (`set_instead_of_inc` sets it; repeated indices in `x[idx]` accumulate unless
    `ignore_duplicates`: then each is x's value plus the last of its increments, as
    numpy's `x[idx] += y`)."""
    if set_instead_of_inc:
        return _inc_or_set(x, y, True)
    if ignore_duplicates and _advanced(x):
        return _inc_or_set(x, x + as_tensor_variable(y), True)
    return _inc_or_set(x, y, False)


# ---------------------------------------------------------------- integer-array indexing
class AdvancedSubtensor1(Op):
    """`x[idx]` / `take(x, idx, axis)` with an int vector idx: rows of x along `axis`.
    Indices may be negative; each is checked (INDEX_OUT_OF_BOUNDS) and clamped."""

    def __init__(self, axis: int = 0):
        self.axis = axis

    def __str__(self) -> str:
        return f"advanced_subtensor1{{axis={self.axis}}}"

    def make_node(self, x: Variable, idx: Variable) -> Apply:
        bcast = list(x.broadcastable)
        bcast[self.axis] = idx.broadcastable[0]
        return Apply(self, [x, idx], [TensorType(x.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        shape = list(input_shapes[0])
        shape[self.axis] = input_shapes[1][0]
        return [shape]


def _normalized(i: ir.Value, n: ir.Value) -> ir.Value:
    """A (possibly negative) index value as an index counted from the start."""
    i = arith.index_cast(ir.IndexType.get(), i)
    return arith.select(arith.cmpi(arith.CmpIPredicate.slt, i, index_const(0)), arith.addi(i, n), i)


def _clamped(i: ir.Value, n: ir.Value) -> ir.Value:
    return index_max(index_min(i, arith.subi(n, index_const(1))), index_const(0))


def _check_indices(fe, idx: ir.Value, n: ir.Value) -> None:
    """One run-time check that every entry of the index vector lies in [-n, n)."""
    i8 = ir.IntegerType.get_signless(8)
    init = fill(arith.constant(i8, 0), tensor.empty([], i8))

    def body(args):
        i = _normalized(args[0], n)
        bad = arith.ori(arith.cmpi(arith.CmpIPredicate.slt, i, index_const(0)),
                        arith.cmpi(arith.CmpIPredicate.sge, i, n))
        return arith.ori(args[1], arith.extui(i8, bad))

    bad = generic([idx], init, [ir.AffineMap.get_identity(1), ir.AffineMap.get(1, 0, [])], ["reduction"], body)
    fe.check(arith.cmpi(arith.CmpIPredicate.eq, tensor.extract(bad, []), arith.constant(i8, 0)),
             st.INDEX_OUT_OF_BOUNDS)


@rules.emission(AdvancedSubtensor1)
def _emit_advanced_subtensor1(fe, node, values):
    source, idx = values
    axis, out = node.op.axis, node.outputs[0].type
    n = dim(source, axis)
    _check_indices(fe, idx, n)
    sizes = dims(source)
    sizes[axis] = dim(idx, 0)
    rank = len(sizes)
    elem = element_type(out.dtype)
    idx_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(axis)])

    def body(args):
        at = [loop_index(a) for a in range(rank)]
        at[axis] = _clamped(_normalized(args[0], n), n)
        # an empty axis has nothing to read (the check above failed): never load
        branch = scf.IfOp(arith.cmpi(arith.CmpIPredicate.sgt, n, index_const(0)), [elem], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            scf.YieldOp([tensor.extract(source, at)])
        with ir.InsertionPoint(branch.else_block):
            scf.YieldOp([arith.constant(elem, 0.0 if out.dtype.startswith("float") else 0)])
        return branch.results[0]

    return [generic([idx], empty(sizes, out), [idx_map, ir.AffineMap.get_identity(rank)],
                    ["parallel"] * rank, body)]


@rules.vjp(AdvancedSubtensor1)
def _vjp_advanced_subtensor1(node, cots, needed):
    x, idx = node.inputs
    return [AdvancedIncSubtensor1(False, node.op.axis)(zeros_like(x), cots[0], idx), None]


class AdvancedIncSubtensor1(Op):
    """A copy of x with the rows `idx` (along `axis`) set to, or incremented by, y.
    Rows are written in order, so a repeated index accumulates (inc) or the last write
    wins (set), as numpy's `np.add.at` / fancy assignment."""

    def __init__(self, set_instead_of_inc: bool, axis: int = 0):
        self.set, self.axis = set_instead_of_inc, axis

    def __str__(self) -> str:
        return ("set" if self.set else "inc") + f"_advanced_subtensor1{{axis={self.axis}}}"

    def make_node(self, x: Variable, y: Variable, idx: Variable) -> Apply:
        return Apply(self, [x, y, idx], [x.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


def _row_args(value: ir.Value, axis: int, at: ir.Value, sizes: list):
    """extract/insert_slice arguments for `value[..., at:at+1, ...]` with `sizes` elsewhere."""
    rank = len(sizes)
    offsets = [at if a == axis else index_const(0) for a in range(rank)]
    row_sizes = [index_const(1) if a == axis else sizes[a] for a in range(rank)]
    return _slice_op_args(offsets, row_sizes, [1] * rank)


@rules.emission(AdvancedIncSubtensor1)
def _emit_advanced_inc_subtensor1(fe, node, values):
    """An scf.for over the indices: each step updates one row, so duplicates accumulate."""
    x, y, _ = node.inputs
    source, y_value, idx = values
    axis, rank = node.op.axis, x.ndim
    n, count = dim(source, axis), dim(idx, 0)
    _check_indices(fe, idx, n)
    # y broadcasts to x's shape with len(idx) at `axis`; a mismatch shrinks the row
    row_sizes = dims(source)
    offset = rank - y.ndim
    for a in range(y.ndim):
        if y.broadcastable[a]:
            continue
        want = count if a + offset == axis else row_sizes[a + offset]
        fe.check(arith.cmpi(arith.CmpIPredicate.eq, dim(y_value, a), want), st.SHAPE_MISMATCH)
        if a + offset != axis:
            row_sizes[a + offset] = index_min(dim(y_value, a), row_sizes[a + offset])
    y_row_axis = axis - offset
    y_walks = y_row_axis >= 0 and not y.broadcastable[y_row_axis]
    zero, one = index_const(0), index_const(1)
    upper = arith.select(arith.cmpi(arith.CmpIPredicate.sgt, n, zero), count, zero)
    loop = scf.ForOp(zero, upper, one, [source])
    with ir.InsertionPoint(loop.body):
        k = loop.induction_variable
        out = loop.inner_iter_args[0]
        at = _clamped(_normalized(tensor.extract(idx, [k]), n), n)
        y_row, y_type = y_value, y.type
        if y_walks:
            y_row_sizes = dims(y_value)
            y_row = _extract_row(y_value, y_row_axis, index_min(k, arith.subi(dim(y_value, y_row_axis), one)),
                                 y_row_sizes)
            bcast = list(y.broadcastable)
            bcast[y_row_axis] = True
            y_type = TensorType(y.dtype, bcast)
        dyn_off, dyn_size, s_off, s_size, s_stride = _row_args(out, axis, at, row_sizes)
        row_type = ir.RankedTensorType.get([DYN if s == DYN else s for s in s_size], element_type(x.dtype))
        current = tensor.ExtractSliceOp(row_type, out, dyn_off, dyn_size, [], s_off, s_size, s_stride).result
        dtype = x.dtype

        def body(args):
            if node.op.set:
                return args[0]
            return store_scalar(scalar_op("add", [load_scalar(args[1], dtype), load_scalar(args[0], dtype)],
                                          dtype), dtype)

        maps = [input_map(y_type, rank), ir.AffineMap.get_identity(rank), ir.AffineMap.get_identity(rank)]
        init = tensor.empty([fold_index(dim(current, a)) for a in range(rank)], element_type(dtype))
        new = generic([y_row, current], init, maps, ["parallel"] * rank, body)
        out = tensor.InsertSliceOp(new, out, dyn_off, dyn_size, [], s_off, s_size, s_stride).result
        scf.YieldOp([out])
    return [loop.results[0]]


def _extract_row(value: ir.Value, axis: int, at: ir.Value, sizes: list) -> ir.Value:
    dyn_off, dyn_size, s_off, s_size, s_stride = _row_args(value, axis, at, sizes)
    row_type = ir.RankedTensorType.get(s_size, ir.RankedTensorType(value.type).element_type)
    return tensor.ExtractSliceOp(row_type, value, dyn_off, dyn_size, [], s_off, s_size, s_stride).result


@rules.vjp(AdvancedIncSubtensor1)
def _vjp_advanced_inc_subtensor1(node, cots, needed):
    x, y, idx = node.inputs
    g, axis = cots[0], node.op.axis
    gy = AdvancedSubtensor1(axis)(g, idx)
    if node.op.set:
        zero = as_tensor_variable(np.zeros((), x.dtype))
        g = AdvancedIncSubtensor1(True, axis)(g, zero, idx)
    return [g, gy, None]
