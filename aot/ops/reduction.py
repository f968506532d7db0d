"""Reductions over axes: `sum`, `prod`, `max`, `min`, `all`, `any` (Reduce), `argmax`/`argmin`
(Argmax), `mean`, `var`, `std`; scans along an axis: `cumsum`/`cumprod` (Cumulative); and
`sort`/`argsort` (Sort, by stable ranks: O(n^2) per row, fully parallel, no data-dependent
control flow, so it runs on every target).

`max`/`min`/`argmax` of a zero-size axis have no identity: numpy raises, the kernel returns
a SHAPE_MISMATCH status naming the check.
"""
from __future__ import annotations

from typing import Any

import builtins

import numpy as np
from mlir import ir
from mlir.dialects import arith, scf, tensor

from ..emit.builders import (DYN, cast_scalar, dim, element_type, empty, fill, fold_index, generic,
                             index_const, load_scalar, loop_index, store_scalar)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .creation import ones_like
from .elemwise import cast, eq, maximum, scalar_op, sqrt, true_div
from .shape import dimshuffle, flatten, shape_i


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


_IDENTITY = {"sum": 0, "prod": 1, "all": 1, "any": 0}


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


def check_not_empty(fe, value: ir.Value, axes, what: str) -> None:
    """max/min/argmax have no identity: a zero-size reduced axis is an error (numpy raises)."""
    for a in axes:
        n = dim(value, a)
        fe.check(arith.cmpi(arith.CmpIPredicate.sgt, n, index_const(0)), st.SHAPE_MISMATCH,
                 f"{what} over a zero-size axis {a} (it has no identity)")


def _combine(kind: str, acc: ir.Value, v: ir.Value, dtype: str) -> ir.Value:
    """One accumulation step of a Reduce of `kind` (compute types)."""
    is_float, is_bool = dtype.startswith("float"), dtype == "bool"
    if kind == "sum":
        return scalar_op("add", [acc, v], dtype)
    if kind == "prod":
        return scalar_op("mul", [acc, v], dtype)
    if kind == "all" or (kind == "min" and is_bool):
        return arith.andi(acc, v)
    if kind == "any" or (kind == "max" and is_bool):
        return arith.ori(acc, v)
    if kind == "max":
        return arith.maximumf(acc, v) if is_float else arith.maxsi(acc, v)
    return arith.minimumf(acc, v) if is_float else arith.minsi(acc, v)


@rules.emission(Reduce)
def _emit_reduce(fe, node, values):
    x = node.inputs[0]
    op = node.op
    out = node.outputs[0].type
    if op.kind in ("max", "min"):
        check_not_empty(fe, values[0], op.axes, op.kind)
    kept = [a for a in range(x.ndim) if a not in op.axes]
    init = fill(reduce_identity(op.kind, out.dtype), empty([dim(values[0], a) for a in kept], out)
                if kept else tensor.empty([], element_type(out.dtype)))
    out_map = ir.AffineMap.get(x.ndim, 0, [ir.AffineDimExpr.get(a) for a in kept])
    kinds = ["reduction" if a in op.axes else "parallel" for a in range(x.ndim)]

    def body(args):
        v = cast_scalar(load_scalar(args[0], x.dtype), x.dtype, out.dtype)
        return store_scalar(_combine(op.kind, load_scalar(args[1], out.dtype), v, out.dtype), out.dtype)

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
    if node.op.kind in ("all", "any"):
        return [None]  # bool results: piecewise constant
    g = _expand(cots[0], x, node.op.axes)
    if node.op.kind == "sum":
        return [g * ones_like(x)]
    z_full = _expand(z, x, node.op.axes)
    if node.op.kind == "prod":
        return [g * z_full / x]
    return [g * eq(x, z_full)]


class Argmax(Op):
    """Index of the first max (or min) over `axes`; several axes count in their
    flattened row-major order, as Aesara's argmax with axis=None."""

    def __init__(self, kind: str, axes: tuple[int, ...]):
        self.kind, self.axes = kind, axes

    def __str__(self) -> str:
        return f"arg{self.kind}{list(self.axes)}"

    def make_node(self, x: Variable) -> Apply:
        bcast = [b for i, b in enumerate(x.broadcastable) if i not in self.axes]
        return Apply(self, [x], [TensorType("int64", bcast)])

    def infer_shape(self, node, input_shapes):
        return [[d for i, d in enumerate(input_shapes[0]) if i not in self.axes]]


def _same(v, best, dtype: str) -> ir.Value:
    """v is the extreme `best` (NaN counts as equal to NaN: numpy's argmax finds the first NaN)."""
    if not dtype.startswith("float"):
        return arith.cmpi(arith.CmpIPredicate.eq, v, best)
    both_nan = arith.andi(arith.cmpf(arith.CmpFPredicate.UNO, v, v), arith.cmpf(arith.CmpFPredicate.UNO, best, best))
    return arith.ori(arith.cmpf(arith.CmpFPredicate.OEQ, v, best), both_nan)


@rules.emission(Argmax)
def _emit_argmax(fe, node, values):
    """Two single-result passes (the extreme, NaN-propagating; then the lowest flat index
    holding it), so ties go to the first occurrence whatever the loop order."""
    x, op = node.inputs[0], node.op
    source = values[0]
    check_not_empty(fe, source, op.axes, f"arg{op.kind}")
    dtype = "int8" if x.dtype == "bool" else x.dtype  # bool compares as its stored 0/1
    kept = [a for a in range(x.ndim) if a not in op.axes]
    shape = [fold_index(dim(source, a)) for a in kept]
    i64 = ir.IntegerType.get_signless(64)
    out_map = ir.AffineMap.get(x.ndim, 0, [ir.AffineDimExpr.get(a) for a in kept])
    identity = ir.AffineMap.get_identity(x.ndim)
    kinds = ["reduction" if a in op.axes else "parallel" for a in range(x.ndim)]
    best = fill(reduce_identity(op.kind, dtype), tensor.empty(shape, element_type(dtype)))
    best = generic([source], best, [identity, out_map], kinds,
                   lambda a: _combine(op.kind, a[1], a[0], dtype))
    strides, stride = {}, index_const(1)
    for a in reversed(op.axes):
        strides[a] = stride
        stride = arith.muli(stride, dim(source, a))

    def body(args):
        v, b, acc = args
        flat = index_const(0)
        for a in op.axes:
            flat = arith.addi(flat, arith.muli(loop_index(a), strides[a]))
        i = arith.index_cast(i64, flat)
        return arith.select(_same(v, b, dtype), arith.minsi(i, acc), acc)

    # distinct start values per kind: the pipeline otherwise merges the two identical
    # fills of an argmax and an argmin of the same x into one buffer both write
    start = np.iinfo("int64").max - (op.kind == "min")
    where = fill(arith.constant(i64, int(start)), tensor.empty(shape, i64))
    return [generic([source, best], where, [identity, out_map, out_map], kinds, body)]


rules.vjp(Argmax)(rules.no_gradient)


class Cumulative(Op):
    """Running sum ("add") or product ("mul") along one axis; `reverse` runs from the end
    (the VJP of a cumsum is a reversed cumsum)."""

    def __init__(self, mode: str, axis: int, reverse: bool = False):
        self.mode, self.axis, self.reverse = mode, axis, reverse

    def __str__(self) -> str:
        return f"cum{'sum' if self.mode == 'add' else 'prod'}{{axis={self.axis}{', reverse' if self.reverse else ''}}}"

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [x.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


def _axis_slice(value: ir.Value, axis: int, at: ir.Value) -> tuple[list, list, list, ir.Type]:
    """extract/insert_slice arguments of the rank-kept slice `value[..., at:at+1, ...]`."""
    rtype = ir.RankedTensorType(value.type)
    static = [1 if a == axis else rtype.shape[a] for a in range(rtype.rank)]
    dyn_sizes = [dim(value, a) for a in range(rtype.rank) if a != axis and rtype.shape[a] == DYN]
    offsets = [DYN if a == axis else 0 for a in range(rtype.rank)]
    return [at], dyn_sizes, (offsets, static), ir.RankedTensorType.get(static, rtype.element_type)


@rules.emission(Cumulative)
def _emit_cumulative(fe, node, values):
    """An scf.for along the axis; each step adds the previous row of the result to the
    current row of x (one parallel linalg.generic per step)."""
    op, x = node.op, node.inputs[0]
    source = values[0]
    rank = x.ndim
    n = dim(source, op.axis)
    zero, one = index_const(0), index_const(1)
    result = tensor.empty([fold_index(v) for v in (dim(source, a) for a in range(rank))],
                          element_type(x.dtype))
    loop = scf.ForOp(zero, n, one, [result])
    with ir.InsertionPoint(loop.body):
        i = loop.induction_variable
        out = loop.inner_iter_args[0]
        last = arith.subi(n, one)
        at = arith.subi(last, i) if op.reverse else i
        prev = index_min_max(arith.addi(at, one) if op.reverse else arith.subi(at, one), zero, last)
        first = arith.cmpi(arith.CmpIPredicate.eq, i, zero)
        dyn_off, dyn_size, (s_off, s_size), row_type = _axis_slice(source, op.axis, at)
        row = tensor.ExtractSliceOp(row_type, source, dyn_off, dyn_size, [], s_off, s_size, [1] * rank).result
        p_off, _, _, _ = _axis_slice(source, op.axis, prev)
        before = tensor.ExtractSliceOp(row_type, out, p_off, dyn_size, [], s_off, s_size, [1] * rank).result
        ident = arith.constant(element_type(x.dtype), _identity_value(op.mode, x.dtype))

        def body(args):
            v, b = load_scalar(args[0], x.dtype), load_scalar(args[1], x.dtype)
            b = arith.select(first, load_scalar(ident, x.dtype), b)
            return store_scalar(scalar_op(op.mode, [b, v], x.dtype), x.dtype)

        new = generic([row, before], tensor.empty(_row_sizes(row), row_type.element_type),
                      [ir.AffineMap.get_identity(rank)] * 3, ["parallel"] * rank, body)
        out = tensor.InsertSliceOp(new, out, dyn_off, dyn_size, [], s_off, s_size, [1] * rank).result
        scf.YieldOp([out])
    return [loop.results[0]]


def _identity_value(mode: str, dtype: str):
    v = 0 if mode == "add" else 1
    return float(v) if dtype.startswith("float") else v


def _row_sizes(row: ir.Value) -> list:
    return [fold_index(dim(row, a)) for a in range(ir.RankedTensorType(row.type).rank)]


def index_min_max(v: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
    return arith.maxsi(arith.minsi(v, high), low)


@rules.vjp(Cumulative)
def _vjp_cumulative(node, cots, needed):
    op, x, z = node.op, node.inputs[0], node.outputs[0]
    back = Cumulative("add", op.axis, not op.reverse)
    if op.mode == "add":
        return [back(cots[0])]
    # Aesara's CumOp: cumsum((z * g)[::-1])[::-1] / x (x with no zeros)
    return [back(z * cots[0]) / x]


class Sort(Op):
    """`kind` "sort" (values), "argsort" (int64 indices) or "rank" (each element's place in
    the sorted order: the inverse permutation, used by the VJP) along `axis`."""

    def __init__(self, kind: str, axis: int):
        self.kind, self.axis = kind, axis

    def __str__(self) -> str:
        return f"{self.kind}{{axis={self.axis}}}"

    def make_node(self, x: Variable) -> Apply:
        dtype = x.dtype if self.kind == "sort" else "int64"
        return Apply(self, [x], [TensorType(dtype, x.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


def _partner_map(rank: int, axis: int) -> ir.AffineMap:
    """Over rank+1 loop dims: the input read at the extra dim instead of `axis`."""
    return ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(rank if a == axis else a) for a in range(rank)])


def _own_map(rank: int) -> ir.AffineMap:
    return ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(a) for a in range(rank)])


def _before(a, b, ia, ib, dtype: str) -> ir.Value:
    """a (at ia) sorts before b (at ib): smaller, NaN last as numpy, ties by index (stable)."""
    earlier = arith.cmpi(arith.CmpIPredicate.slt, ia, ib)
    if not dtype.startswith("float"):
        return arith.ori(arith.cmpi(arith.CmpIPredicate.slt, a, b),
                         arith.andi(arith.cmpi(arith.CmpIPredicate.eq, a, b), earlier))
    a_nan = arith.cmpf(arith.CmpFPredicate.UNO, a, a)
    b_nan = arith.cmpf(arith.CmpFPredicate.UNO, b, b)
    true = arith.constant(ir.IntegerType.get_signless(1), 1)
    less = arith.ori(arith.cmpf(arith.CmpFPredicate.OLT, a, b), arith.andi(b_nan, arith.xori(a_nan, true)))
    same = arith.ori(arith.cmpf(arith.CmpFPredicate.OEQ, a, b), arith.andi(a_nan, b_nan))
    return arith.ori(less, arith.andi(same, earlier))


def _ranks(source: ir.Value, axis: int, dtype: str) -> ir.Value:
    """rank[..., i, ...] = how many elements of the row sort before element i."""
    rank = ir.RankedTensorType(source.type).rank
    i64 = ir.IntegerType.get_signless(64)
    init = fill(arith.constant(i64, 0), tensor.empty([fold_index(dim(source, a)) for a in range(rank)], i64))

    def body(args):
        mine, other, count = args
        before = _before(other, mine, loop_index(rank), loop_index(axis), dtype)
        return arith.addi(count, arith.extui(i64, before))

    return generic([source, source], init, [_own_map(rank), _partner_map(rank, axis), _own_map(rank)],
                   ["parallel"] * rank + ["reduction"], body)


@rules.emission(Sort)
def _emit_sort(fe, node, values):
    x, op = node.inputs[0], node.op
    source, rank = values[0], x.ndim
    dtype = "int8" if x.dtype == "bool" else x.dtype
    ranks = _ranks(source, op.axis, dtype)
    if op.kind == "rank":
        return [ranks]
    # out[..., k, ...] = the element whose rank is k
    i64 = ir.IntegerType.get_signless(64)
    elem = element_type(x.dtype) if op.kind == "sort" else i64
    zero = arith.constant(elem, 0.0 if x.dtype.startswith("float") and op.kind == "sort" else 0)
    init = fill(zero, tensor.empty([fold_index(dim(source, a)) for a in range(rank)], elem))

    def body(args):
        r, v, acc = args
        k = arith.index_cast(i64, loop_index(op.axis))
        hit = arith.cmpi(arith.CmpIPredicate.eq, r, k)
        value = v if op.kind == "sort" else arith.index_cast(i64, loop_index(rank))
        return arith.select(hit, value, acc)

    maps = [_partner_map(rank, op.axis), _partner_map(rank, op.axis), _own_map(rank)]
    return [generic([ranks, source], init, maps, ["parallel"] * rank + ["reduction"], body)]


@rules.vjp(Sort)
def _vjp_sort(node, cots, needed):
    if node.op.kind != "sort":
        return [None]
    x = node.inputs[0]
    return [TakeAlong(node.op.axis)(cots[0], Sort("rank", node.op.axis)(x))]


class TakeAlong(Op):
    """out[..., i, ...] = g[..., idx[..., i, ...], ...] along `axis` (numpy's
    take_along_axis; idx in range by construction: the sort's ranks)."""

    def __init__(self, axis: int):
        self.axis = axis

    def __str__(self) -> str:
        return f"take_along{{axis={self.axis}}}"

    def make_node(self, g: Variable, idx: Variable) -> Apply:
        return Apply(self, [g, idx], [g.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


@rules.emission(TakeAlong)
def _emit_take_along(fe, node, values):
    g, idx = values
    rank = node.inputs[0].ndim
    out = node.outputs[0].type

    def body(args):
        at = [loop_index(a) for a in range(rank)]
        last = arith.subi(dim(g, node.op.axis), index_const(1))
        at[node.op.axis] = index_min_max(arith.index_cast(ir.IndexType.get(), args[0]), index_const(0), last)
        return tensor.extract(g, at)

    init = empty([dim(g, a) for a in range(rank)], out)
    return [generic([idx], init, [ir.AffineMap.get_identity(rank)] * 2, ["parallel"] * rank, body)]


@rules.vjp(TakeAlong)
def _vjp_take_along(node, cots, needed):
    raise rules.NullGradientError("the second derivative of sort is not implemented "
                                  "(take_along, its gradient's gather, has no VJP)")


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "sum", "prod", "max", "min", "mean", "all", "any", "argmax", "argmin", "max_and_argmax",
    "var", "std", "cumsum", "cumprod", "sort", "argsort",
]


def _axes(x: Variable, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    axes = [axis] if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (list, tuple)) or not builtins.all(isinstance(a, (int, np.integer)) for a in axes):
        raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"axis {a} is out of range for {x.describe()}")
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _one_axis(x: Variable, axis: Any, what: str) -> int:
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{what}: axis must be an int (or None), got {axis!r}")
    return _axes(x, axis)[0]


def _keep(result: Variable, x: Variable, axes: tuple[int, ...], keepdims: bool) -> Variable:
    return _expand(result, x, axes) if keepdims else result


def _reduce(kind: str, x: Any, axis: Any, dtype: str | None, keepdims: bool = False) -> Variable:
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    if dtype is None:
        if kind in ("sum", "prod") and (x.dtype == "bool" or dtypes.is_int(x.dtype)):
            dtype = "int64"  # Aesara accumulates small ints in int64
        elif kind in ("all", "any"):
            dtype = "bool"
        else:
            dtype = x.dtype
    if not axes:
        return cast(x, dtype)
    return _keep(Reduce(kind, axes, dtypes.check(dtype))(x), x, axes, keepdims)


def sum(input: Any, axis: Any = None, dtype: str | None = None, keepdims: bool = False,  # noqa: A001,A002
        acc_dtype: str | None = None) -> Variable:
    """Aesara's sum; `acc_dtype` accumulates in that dtype, then casts to `dtype`."""
    return _with_acc_dtype("sum", input, axis, dtype, keepdims, acc_dtype)


def prod(input: Any, axis: Any = None, dtype: str | None = None, keepdims: bool = False,  # noqa: A002
         acc_dtype: str | None = None, no_zeros_in_input: bool = False) -> Variable:
    """Aesara's prod (`no_zeros_in_input` is accepted: the gradient already divides)."""
    return _with_acc_dtype("prod", input, axis, dtype, keepdims, acc_dtype)


def _with_acc_dtype(kind: str, x: Any, axis: Any, dtype: str | None, keepdims: bool,
                    acc_dtype: str | None) -> Variable:
    if acc_dtype is None:
        return _reduce(kind, x, axis, dtype, keepdims)
    result = _reduce(kind, x, axis, acc_dtype, keepdims)
    return cast(result, dtype) if dtype is not None else result


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("max", x, axis, None, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return _reduce("min", x, axis, None, keepdims)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    """Whether every element (along `axis`) is nonzero; a bool tensor."""
    return _reduce("all", x, axis, None, keepdims)


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    """Whether some element (along `axis`) is nonzero; a bool tensor."""
    return _reduce("any", x, axis, None, keepdims)


def _count(x: Variable, axes: tuple[int, ...]) -> Variable:
    count = int_constant(1)
    for a in axes:
        count = count * shape_i(x, a)
    return count


def mean(input: Any, axis: Any = None, dtype: str | None = None, op: bool = False,  # noqa: A002
         keepdims: bool = False, acc_dtype: str | None = None) -> Variable:
    """Aesara's mean (`op` and `acc_dtype` are accepted; the sum runs in `dtype`)."""
    x = as_tensor_variable(input)
    axes = _axes(x, axis)
    # Aesara: the mean of integers is float64 whatever floatX is
    total = _reduce("sum", x, axes, dtype or (x.dtype if dtypes.is_float(x.dtype) else "float64"), keepdims)
    return true_div(total, cast(_count(x, axes), total.dtype))


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False, corrected: bool = False) -> Variable:
    """Variance, two-pass (mean first) as Aesara; `ddof` divides by n - ddof (at least 0)."""
    if not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise ValueError(f"var: ddof must be a non-negative int, got {ddof!r}")
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    centered = x - mean(x, axes, keepdims=True)
    total = sum(centered * centered, axes, keepdims=keepdims)
    n = cast(maximum(_count(x, axes) - int(ddof), 0), total.dtype)
    return true_div(total, n)


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False, corrected: bool = False) -> Variable:
    """Standard deviation: sqrt(var)."""
    return sqrt(var(x, axis, ddof, keepdims, corrected))


def _arg(kind: str, x: Any, axis: Any, keepdims: bool) -> Variable:
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    if x.ndim == 0:
        return int_constant(0)
    return _keep(Argmax(kind, axes)(x), x, axes, keepdims)


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Index of the first maximum; axis=None (or several axes) counts in the flattened order."""
    return _arg("max", x, axis, keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """Index of the first minimum; axis=None (or several axes) counts in the flattened order."""
    return _arg("min", x, axis, keepdims)


def max_and_argmax(x: Any, axis: Any = None, keepdims: bool = False) -> list[Variable]:
    return [max(x, axis, keepdims), argmax(x, axis, keepdims)]


def _flat_axis(x: Any, axis: Any, what: str) -> tuple[Variable, int]:
    """x and the axis to work along; axis=None works on x flattened (numpy's rule)."""
    x = as_tensor_variable(x)
    if axis is None:
        x, axis = (flatten(x) if x.ndim != 1 else x), 0
    if x.ndim == 0:
        raise ValueError(f"{what}: x must have at least one dim, got {x.describe()}")
    return x, _one_axis(x, axis, what)


def cumsum(x: Any, axis: Any = None) -> Variable:
    """Running sum along `axis` (ints accumulate in their own dtype, as Aesara)."""
    x, axis = _flat_axis(x, axis, "cumsum")
    return Cumulative("add", axis)(cast(x, "int64") if x.dtype == "bool" else x)


def cumprod(x: Any, axis: Any = None) -> Variable:
    """Running product along `axis`; its gradient divides by x (as Aesara: no zeros)."""
    x, axis = _flat_axis(x, axis, "cumprod")
    return Cumulative("mul", axis)(cast(x, "int64") if x.dtype == "bool" else x)


def sort(x: Any, axis: Any = -1, kind: str = "quicksort", order: Any = None) -> Variable:
    """Sorted copy along `axis` (stable, NaN last as numpy)."""
    x, axis = _flat_axis(x, axis, "sort")
    return Sort("sort", axis)(x)


def argsort(x: Any, axis: Any = -1, kind: str = "quicksort", order: Any = None) -> Variable:
    """Indices that sort x along `axis` (stable: ties keep their order)."""
    x, axis = _flat_axis(x, axis, "argsort")
    return Sort("argsort", axis)(x)
