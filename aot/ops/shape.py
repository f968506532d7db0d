"""Shapes and dims: `dimshuffle`/`transpose` and the padding/squeezing helpers built on
it (DimShuffle), `shape_i` (ShapeI), `shape` (MakeVector), `reshape`/`flatten`
(Reshape) and `specify_shape` (SpecifyShape). Stacking tensors lives in `join`."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from ..emit.builders import (DYN, dim, dims, element_type, empty, generic, index_const, loop_index,
                             scalar_of, scalar_tensor, store_scalar, tensor_type, to_index)
from ..graph import dtypes, rules
from ..graph.basic import (SEQUENCE_PACKERS, Apply, Constant, Op, TensorType, Variable, as_tensor_variable,
                           int_constant)
from ..runtime import status as st
from .creation import fit, shape_scalars
from .elemwise import cast, eq, int_div, maximum, mul, neg, switch
from .indexing import getitem, take_axis


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



def constant_int(var: Variable) -> int | None:
    """The value of an integer scalar constant (through casts), else None: static dims."""
    while var.owner is not None and type(var.owner.op).__name__ == "Cast":
        var = var.owner.inputs[0]
    if isinstance(var, Constant) and var.ndim == 0 and not dtypes.is_float(var.dtype):
        return int(var.data)
    return None


def product(values: Sequence[Variable]) -> Variable:
    """The int64 product of scalar dims, constants folded (a constant 1 keeps a dim static)."""
    folded, rest = 1, []
    for v in values:
        c = constant_int(v)
        if c is None:
            rest.append(v)
        else:
            folded *= c
    result = int_constant(folded) if folded != 1 or not rest else None
    for v in rest:
        result = v if result is None else mul(result, v)
    return result


class Reshape(Op):
    """x's elements, in order, in a new shape (one scalar input per output dim); one
    size may be -1 (whatever is left). A size product that differs from x's size
    sets SHAPE_MISMATCH at run time."""

    def __init__(self, ndim: int):
        self.ndim = ndim

    def __str__(self) -> str:
        return f"reshape_{self.ndim}d"

    def make_node(self, x: Variable, *sizes: Variable) -> Apply:
        if len(sizes) != self.ndim:
            raise TypeError(f"reshape: {self.ndim} sizes expected, got {len(sizes)}")
        return Apply(self, [x, *sizes], [TensorType(x.dtype, [constant_int(s) == 1 for s in sizes])])

    def infer_shape(self, node, input_shapes):
        sizes = node.inputs[1:]
        if all(constant_int(s) not in (None, -1) for s in sizes):
            return [list(sizes)]
        # the product of the sizes is negative exactly when one of them is -1
        rest = int_div(product(input_shapes[0]), maximum(neg(product(sizes)), int_constant(1)))
        return [[s if constant_int(s) not in (None, -1) else switch(eq(s, -1), rest, s) for s in sizes]]


def _index_product(values: Sequence[ir.Value]) -> ir.Value:
    result = index_const(1)
    for v in values:
        result = arith.muli(result, v)
    return result


def _resolve_sizes(sizes: list[ir.Value], total: ir.Value, bcast: Sequence[bool]):
    """numpy's reshape rule at run time: (sizes with -1 filled in, ok)."""
    zero, one = index_const(0), index_const(1)
    wild = [arith.cmpi(arith.CmpIPredicate.eq, s, index_const(-1)) for s in sizes]
    n_wild = index_const(0)
    for w in wild:
        n_wild = arith.addi(n_wild, arith.select(w, one, zero))
    known = _index_product([arith.select(w, one, s) for w, s in zip(wild, sizes)])
    known_nonzero = arith.cmpi(arith.CmpIPredicate.ne, known, zero)
    rest = arith.divsi(total, arith.select(known_nonzero, known, one))
    sizes = [arith.select(w, rest, s) for w, s in zip(wild, sizes)]
    ok = arith.cmpi(arith.CmpIPredicate.eq, _index_product(sizes), total)
    ok = arith.andi(ok, arith.cmpi(arith.CmpIPredicate.ule, n_wild, one))
    ok = arith.andi(ok, arith.ori(known_nonzero, arith.cmpi(arith.CmpIPredicate.eq, n_wild, zero)))
    for s, b in zip(sizes, bcast):
        pred = arith.CmpIPredicate.eq if b else arith.CmpIPredicate.sge
        ok = arith.andi(ok, arith.cmpi(pred, s, one if b else zero))
    return sizes, ok


@rules.emission(Reshape)
def _emit_reshape(fe, node, values):
    out = node.outputs[0].type
    total = _index_product(dims(values[0]))
    sizes = [to_index(v, var.dtype) for v, var in zip(values[1:], node.inputs[1:])]
    sizes, ok = _resolve_sizes(sizes, total, out.broadcastable)
    fe.check(ok, st.SHAPE_MISMATCH)
    flat = _to_vector(values[0])
    if all(out.broadcastable):  # every size is 1: the first element (x may be empty after a failed check)
        one = fit(flat, [index_const(1)], out.dtype)
        if out.ndim == 0:
            return [tensor.from_elements(ir.RankedTensorType.get([], element_type(out.dtype)),
                                         [tensor.extract(one, [index_const(0)])])]
        return [_from_vector(one, [index_const(1)] * out.ndim, out)]
    # after a failed check, a shape that holds x's elements
    first = out.broadcastable.index(False)
    safe = [total if a == first else index_const(1) for a in range(out.ndim)]
    return [_from_vector(flat, [arith.select(ok, s, f) for s, f in zip(sizes, safe)], out)]


def _to_vector(value: ir.Value) -> ir.Value:
    """A tensor's elements in order, as a vector (collapse_shape: no copy when contiguous)."""
    rtype = ir.RankedTensorType(value.type)
    if rtype.rank == 0:
        return tensor.from_elements(ir.RankedTensorType.get([1], rtype.element_type), [tensor.extract(value, [])])
    if rtype.rank == 1:
        return value
    size = 1 if all(d == 1 for d in rtype.shape) else DYN
    group = ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), a) for a in range(rtype.rank)])
    return tensor.CollapseShapeOp(ir.RankedTensorType.get([size], rtype.element_type), value,
                                  ir.ArrayAttr.get([group])).result


def _from_vector(flat: ir.Value, sizes: Sequence[ir.Value], out: TensorType) -> ir.Value:
    """The vector `flat` as a tensor of `sizes` (they multiply to its length): each
    element reads its row-major position. A copy, but it lowers on every target
    (expand_shape with several dynamic sizes and memref.reshape do not)."""
    if out.ndim == 1:
        return tensor.cast(tensor_type(out), flat)

    def body(args):
        linear = loop_index(0)
        for a in range(1, out.ndim):
            linear = arith.addi(arith.muli(linear, sizes[a]), loop_index(a))
        return tensor.extract(flat, [linear])

    return generic([], empty(sizes, out), [ir.AffineMap.get_identity(out.ndim)], ["parallel"] * out.ndim, body)


@rules.vjp(Reshape)
def _vjp_reshape(node, cots, needed):
    x = node.inputs[0]
    return [Reshape(x.ndim)(cots[0], *[shape_i(x, a) for a in range(x.ndim)])] + [None] * node.op.ndim


class SpecifyShape(Op):
    """x, with some dims stated (`given[axis]`; one scalar input each) and checked at run
    time (SHAPE_MISMATCH); a stated size 1 makes the dim broadcastable."""

    def __init__(self, given: tuple[bool, ...]):
        self.given = given

    def __str__(self) -> str:
        return "specify_shape"

    def make_node(self, x: Variable, *sizes: Variable) -> Apply:
        stated = iter(sizes)
        bcast = [b or (g and constant_int(next(stated)) == 1) for b, g in zip(x.broadcastable, self.given)]
        return Apply(self, [x, *sizes], [TensorType(x.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        stated = iter(node.inputs[1:])
        return [[next(stated) if g else d for g, d in zip(self.given, input_shapes[0])]]


@rules.emission(SpecifyShape)
def _emit_specify_shape(fe, node, values):
    out = node.outputs[0].type
    stated = iter(zip(values[1:], node.inputs[1:]))
    sizes = []
    for axis, g in enumerate(node.op.given):
        actual = dim(values[0], axis)
        if g:
            want = to_index(*next(stated))
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, actual, want), st.SHAPE_MISMATCH)
        sizes.append(index_const(1) if out.broadcastable[axis] else actual)
    if out.broadcastable == node.inputs[0].broadcastable:
        return [values[0]]
    return [fit(values[0], sizes, out.dtype)]


@rules.vjp(SpecifyShape)
def _vjp_specify_shape(node, cots, needed):
    return [cots[0]] + [None] * (len(node.inputs) - 1)



# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports (`stack` is join's)
    "shape", "dimshuffle", "transpose", "reshape", "flatten", "swapaxes", "shape_padleft",
    "shape_padright", "shape_padaxis", "squeeze", "expand_dims", "specify_shape", "as_tensor",
    "as_tensor_variable", "take",
]

as_tensor = as_tensor_variable

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


def stack_scalars(values: Sequence[Any]) -> Variable:
    """Scalars as a vector (MakeVector), upcast to their common dtype."""
    vals = [as_tensor_variable(v) for v in values]
    if not all(v.ndim == 0 for v in vals):
        raise TypeError("stack_scalars: every value must be a scalar")
    dtype = dtypes.upcast(*[v.dtype for v in vals])
    return MakeVector(dtype)(*[cast(v, dtype) for v in vals])


def dimshuffle(x: Variable, *order: Any) -> Variable:
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = tuple(order[0])
    return DimShuffle(x.broadcastable, tuple(order))(x)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Variable:
    """Dims reversed, or permuted as `axes` says (negative axes count from the end)."""
    x = as_tensor_variable(x)
    if axes is None:
        return dimshuffle(x, *reversed(range(x.ndim)))
    axes = [normalize_axis(a, x.ndim, "transpose", "axes") for a in axes]
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {list(axes)} is not a permutation of the {x.ndim} dims of {x.describe()}")
    return dimshuffle(x, *axes)


def normalize_axis(axis: Any, ndim: int, fn: str, what: str = "axis") -> int:
    """An axis as a non-negative int; a clear error when it is not an int in range."""
    if isinstance(axis, Variable):
        value = constant_int(axis)
        if value is None:
            raise TypeError(f"{fn}: {what} must be a Python int, got the symbolic {axis.describe()}")
        axis = value
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{fn}: {what} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: {what} {axis} is out of range for {ndim} dims")
    return int(axis) % ndim


def reshape(x: Any, newshape: Any, ndim: int | None = None) -> Variable:
    """numpy's reshape: `newshape` is a tuple of int scalars (constants or symbolic), a
    shape vector such as `y.shape`, or an int; one size may be -1."""
    x = as_tensor_variable(x)
    sizes = shape_scalars(newshape, "reshape", "newshape")
    if ndim is not None and ndim != len(sizes):
        raise ValueError(f"reshape: ndim={ndim} but newshape has {len(sizes)} entries")
    constants = [constant_int(s) for s in sizes]
    if any(c is not None and c < -1 for c in constants):
        raise ValueError(f"reshape: newshape sizes must be >= 0 or one -1, got {constants}")
    if constants.count(-1) > 1:
        raise ValueError("reshape: newshape may hold at most one -1")
    return Reshape(len(sizes))(x, *sizes)


def flatten(x: Any, ndim: int = 1) -> Variable:
    """The first `ndim - 1` dims kept, the others joined into the last (Aesara's flatten)."""
    x = as_tensor_variable(x)
    if not isinstance(ndim, (int, np.integer)) or ndim < 1 or (ndim > 1 and ndim > x.ndim):
        raise ValueError(f"flatten: ndim must be an int between 1 and {max(x.ndim, 1)}, got {ndim!r}")
    dims = [shape_i(x, a) for a in range(x.ndim)]
    return Reshape(ndim)(x, *dims[:ndim - 1], product(dims[ndim - 1:]))


def take(a: Any, indices: Any, axis: int | None = None, mode: str = "raise") -> Variable:
    """numpy's take: the entries of `a` at `indices` along `axis`; axis=None takes from
    `a` flattened. Out-of-bounds indices raise at run time."""
    a = as_tensor_variable(a)
    if axis is None:
        a, axis = (flatten(a) if a.ndim != 1 else a), 0
    return take_axis(a, indices, axis, mode)


def swapaxes(x: Any, axis1: int, axis2: int) -> Variable:
    x = as_tensor_variable(x)
    order = list(range(x.ndim))
    a, b = (normalize_axis(v, x.ndim, "swapaxes", n) for v, n in ((axis1, "axis1"), (axis2, "axis2")))
    order[a], order[b] = order[b], order[a]
    return dimshuffle(x, *order)


def shape_padleft(x: Any, n_ones: int = 1) -> Variable:
    """x with `n_ones` broadcastable dims in front."""
    x = as_tensor_variable(x)
    return dimshuffle(x, *(["x"] * n_ones + list(range(x.ndim))))


def shape_padright(x: Any, n_ones: int = 1) -> Variable:
    """x with `n_ones` broadcastable dims at the end."""
    x = as_tensor_variable(x)
    return dimshuffle(x, *(list(range(x.ndim)) + ["x"] * n_ones))


def shape_padaxis(x: Any, axis: int) -> Variable:
    """x with one broadcastable dim inserted at `axis` (negative counts from the end)."""
    x = as_tensor_variable(x)
    axis = normalize_axis(axis, x.ndim + 1, "shape_padaxis")
    order: list = list(range(x.ndim))
    order.insert(axis, "x")
    return dimshuffle(x, *order)


def expand_dims(a: Any, axis: Any) -> Variable:
    """numpy's expand_dims: broadcastable dims at the positions `axis` names in the result."""
    a = as_tensor_variable(a)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    out_ndim = a.ndim + len(axes)
    axes = sorted(normalize_axis(v, out_ndim, "expand_dims") for v in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"expand_dims: repeated axis in {axis!r}")
    kept = iter(range(a.ndim))
    return dimshuffle(a, *["x" if i in axes else next(kept) for i in range(out_ndim)])


def squeeze(x: Any, axis: Any = None) -> Variable:
    """x without its broadcastable dims (all of them, or those `axis` names; Aesara's
    rule: a dim not known to be 1 cannot be squeezed)."""
    x = as_tensor_variable(x)
    if axis is None:
        axes = [a for a in range(x.ndim) if x.broadcastable[a]]
    else:
        axes = [normalize_axis(v, x.ndim, "squeeze") for v in (axis if isinstance(axis, (list, tuple)) else [axis])]
        for a in axes:
            if not x.broadcastable[a]:
                raise ValueError(f"squeeze: axis {a} of {x.describe()} is not broadcastable (not known to be 1); "
                                 "use specify_shape to state it")
    return dimshuffle(x, *[a for a in range(x.ndim) if a not in axes])


def specify_shape(x: Any, shape: Any) -> Variable:
    """x, its dims checked at run time against `shape` (None entries are not checked)."""
    x = as_tensor_variable(x)
    entries = list(shape) if isinstance(shape, (list, tuple)) else shape_scalars(shape, "specify_shape", "shape")
    if len(entries) != x.ndim:
        raise ValueError(f"specify_shape: shape has {len(entries)} entries but {x.describe()} has {x.ndim} dims")
    given = tuple(e is not None for e in entries)
    sizes = shape_scalars([e for e in entries if e is not None], "specify_shape", "shape")
    for axis, s in zip([a for a, g in enumerate(given) if g], sizes):
        c = constant_int(s)
        if c is not None and (c < 0 or (x.broadcastable[axis] and c != 1)):
            raise ValueError(f"specify_shape: dim {axis} of {x.describe()} cannot have size {c}")
    return SpecifyShape(given)(x, *sizes) if any(given) else x


SEQUENCE_PACKERS.append(stack_scalars)
