"""Tensors made from scalars and shapes: `ones_like`/`zeros_like` (Fill), `alloc`,
`zeros`, `ones`, `full` (Alloc), `arange` (ARange), `eye`/`tril`/`triu` (Eye), `diag`
(AllocDiag, ExtractDiag), and `fill`/`second`/`full_like`/`linspace` built on them."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, math, tensor

from .. import config
from ..emit.builders import (DYN, cast_scalar, compute_type, dim, dims, element_type, empty, fold_index, generic,
                             index_const, index_max, loop_index, scalar_of, store_scalar, to_index)
from ..emit.builders import fill as fill_tensor
from ..graph import dtypes, rules
from ..graph.basic import Apply, Constant, Op, TensorType, Variable, as_tensor_variable, int_constant
from ..runtime import status as st
from .elemwise import add, and_, cast, ceil, eq, gt, int_div, maximum, minimum, neg, sub, switch, true_div


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
    return [fill_tensor(const, empty(dims(values[0]), out))]


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
    return [fill_tensor(value, empty(sizes, out))]


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


def _sizes(fe, values, variables) -> list[ir.Value]:
    """Dims from int scalars: a negative one sets BAD_ALLOC and counts as 0."""
    sizes = []
    for v, var in zip(values, variables):
        size = to_index(v, var.dtype)
        fe.check(arith.cmpi(arith.CmpIPredicate.sge, size, index_const(0)), st.BAD_ALLOC)
        sizes.append(index_max(size, index_const(0)))
    return sizes


def _zero(dtype: str) -> ir.Value:
    return arith.constant(element_type(dtype), 0.0 if dtypes.is_float(dtype) else 0)


def fit(value: ir.Value, sizes: Sequence[ir.Value], dtype: str) -> ir.Value:
    """`value` cut or zero-padded to `sizes` (static where constant): the tensor a type
    promises, even after a failed check, without reading outside `value`."""
    elem = element_type(dtype)
    init = fill_tensor(_zero(dtype), tensor.empty([fold_index(s) for s in sizes], elem))
    n = [arith.minsi(dim(value, a), s) for a, s in enumerate(sizes)]
    rank = len(sizes)
    piece_type = ir.RankedTensorType.get([DYN] * rank, elem)
    piece = tensor.ExtractSliceOp(piece_type, value, [], n, [], [0] * rank, [DYN] * rank, [1] * rank).result
    return tensor.InsertSliceOp(piece, init, [], n, [], [0] * rank, [DYN] * rank, [1] * rank).result


class Eye(Op):
    """An n x m matrix of ones where `j - i == k` ("eye") or `j - i <= k` ("tri"), zeros
    elsewhere; inputs (n, m, k), or (model, k) for the shape of model's last two dims."""

    def __init__(self, kind: str, dtype: str):
        self.kind, self.dtype = kind, dtypes.check(dtype)

    def __str__(self) -> str:
        return f"{self.kind}_{self.dtype}"

    def make_node(self, *inputs: Variable) -> Apply:
        scalars = inputs if len(inputs) == 3 else inputs[1:]
        for name, v in zip(("n", "m", "k")[-len(scalars):], scalars):
            if v.ndim != 0 or not dtypes.is_int(v.dtype):
                raise TypeError(f"{self.kind}: {name} must be an integer scalar, got {v.describe()}")
        return Apply(self, list(inputs), [TensorType(self.dtype, [False, False])])

    def infer_shape(self, node, input_shapes):
        return [list(node.inputs[:2]) if len(node.inputs) == 3 else list(input_shapes[0][-2:])]


@rules.emission(Eye)
def _emit_eye(fe, node, values):
    out = node.outputs[0].type
    if len(values) == 3:
        sizes = _sizes(fe, values[:2], node.inputs[:2])
    else:
        sizes = dims(values[0])[-2:]
    k = to_index(values[-1], node.inputs[-1].dtype)
    pred = arith.CmpIPredicate.eq if node.op.kind == "eye" else arith.CmpIPredicate.sle
    one = arith.constant(element_type(out.dtype), 1.0 if dtypes.is_float(out.dtype) else 1)

    def body(args):
        on = arith.cmpi(pred, arith.subi(loop_index(1), loop_index(0)), k)
        return arith.select(on, one, _zero(out.dtype))

    return [generic([], empty(sizes, out), [ir.AffineMap.get_identity(2)], ["parallel"] * 2, body)]


rules.vjp(Eye)(rules.no_gradient)


class AllocDiag(Op):
    """A matrix with the vector v on its k-th diagonal, zeros elsewhere: square of side
    len(v) + |k|, or shaped like a second input (the gradient of ExtractDiag)."""

    def __init__(self, k: int):
        self.k = int(k)

    def __str__(self) -> str:
        return f"alloc_diag{{k={self.k}}}"

    def make_node(self, v: Variable, *model: Variable) -> Apply:
        if v.ndim != 1:
            raise TypeError(f"diag: v must be a vector, got {v.describe()}")
        return Apply(self, [v, *model], [TensorType(v.dtype, [False, False])])

    def infer_shape(self, node, input_shapes):
        if len(node.inputs) == 2:
            return [list(input_shapes[1])]
        side = add(input_shapes[0][0], int_constant(abs(self.k)))
        return [[side, side]]


@rules.emission(AllocDiag)
def _emit_alloc_diag(fe, node, values):
    out, k = node.outputs[0].type, node.op.k
    length = dim(values[0], 0)
    if len(values) == 2:
        sizes = dims(values[1])
    else:
        sizes = [arith.addi(length, index_const(abs(k)))] * 2
    padded = fit(values[0], [arith.addi(length, index_const(1))], out.dtype)  # [length] reads the 0

    def body(args):
        i, j = loop_index(0), loop_index(1)
        on = arith.cmpi(arith.CmpIPredicate.eq, arith.subi(j, i), index_const(k))
        position = arith.minsi(i if k >= 0 else j, length)
        return arith.select(on, tensor.extract(padded, [position]), _zero(out.dtype))

    return [generic([], empty(sizes, out), [ir.AffineMap.get_identity(2)], ["parallel"] * 2, body)]


@rules.vjp(AllocDiag)
def _vjp_alloc_diag(node, cots, needed):
    return [ExtractDiag(node.op.k)(cots[0])] + [None] * (len(node.inputs) - 1)


class ExtractDiag(Op):
    """The k-th diagonal of a matrix, as a vector (numpy's diagonal)."""

    def __init__(self, k: int):
        self.k = int(k)

    def __str__(self) -> str:
        return f"diagonal{{k={self.k}}}"

    def make_node(self, x: Variable) -> Apply:
        if x.ndim != 2:
            raise TypeError(f"diagonal: x must be a matrix, got {x.describe()}")
        return Apply(self, [x], [TensorType(x.dtype, [False])])

    def infer_shape(self, node, input_shapes):
        n, m = input_shapes[0]
        k = int_constant(self.k)
        length = minimum(n, sub(m, k)) if self.k >= 0 else minimum(add(n, k), m)
        return [[maximum(length, int_constant(0))]]


@rules.emission(ExtractDiag)
def _emit_extract_diag(fe, node, values):
    k = node.op.k
    n, m = dims(values[0])
    if k >= 0:
        length = arith.minsi(n, arith.subi(m, index_const(k)))
    else:
        length = arith.minsi(arith.addi(n, index_const(k)), m)
    length = index_max(length, index_const(0))
    row, col = index_const(max(-k, 0)), index_const(max(k, 0))

    def body(args):
        i = loop_index(0)
        return tensor.extract(values[0], [arith.addi(i, row), arith.addi(i, col)])

    init = empty([length], node.outputs[0].type)
    return [generic([], init, [ir.AffineMap.get_identity(1)], ["parallel"], body)]


@rules.vjp(ExtractDiag)
def _vjp_extract_diag(node, cots, needed):
    return [AllocDiag(node.op.k)(cots[0], node.inputs[0])]



# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "ones_like", "zeros_like", "alloc", "zeros", "ones", "arange", "eye", "identity_like", "full",
    "full_like", "fill", "second", "linspace", "tril", "triu", "diag", "diagonal",
]

def ones_like(model: Any, dtype: str | None = None, opt: bool = False) -> Variable:
    """A tensor of ones shaped like `model` (`opt` is Aesara's, ignored)."""
    x = as_tensor_variable(model)
    return Fill(1, dtype or x.dtype)(x)


def zeros_like(model: Any, dtype: str | None = None, opt: bool = False) -> Variable:
    """A tensor of zeros shaped like `model` (`opt` is Aesara's, ignored)."""
    x = as_tensor_variable(model)
    return Fill(0, dtype or x.dtype)(x)


def alloc(value: Any, *dims: Any) -> Variable:
    return Alloc()(as_tensor_variable(value), *[cast(as_tensor_variable(d), "int64") for d in dims])


def zeros(shape: Any, dtype: str | None = None) -> Variable:
    return full(shape, 0, dtype or config.floatX)


def ones(shape: Any, dtype: str | None = None) -> Variable:
    return full(shape, 1, dtype or config.floatX)


def full(shape: Any, fill_value: Any, dtype: str | None = None) -> Variable:
    """A tensor of `shape` (ints, int scalars, or a vector such as `x.shape`) filled with
    `fill_value` (a scalar, converted to `dtype` when given)."""
    value = as_tensor_variable(fill_value)
    if value.ndim != 0:
        raise TypeError(f"full: fill_value must be a scalar, got {value.describe()}")
    if dtype is not None:
        value = as_tensor_variable(np.asarray(fill_value, dtypes.check(dtype))) if isinstance(
            value, Constant) else cast(value, dtype)
    return Alloc()(value, *shape_scalars(shape, "full", "shape"))


def shape_scalars(shape: Any, fn: str, what: str = "shape") -> list[Variable]:
    """A shape as int64 scalars: an int, a tuple of ints and int scalars, a constant
    vector, or a vector whose elements are known when tracing (`x.shape`)."""
    if isinstance(shape, Variable) and shape.ndim == 1:
        if isinstance(shape, Constant):
            entries = list(shape.data)
        else:
            entries = shape.owner.op.known_elements(shape.owner) if shape.owner is not None else None
            if entries is None:
                raise TypeError(f"{fn}: {what} must be a tuple of integer scalars or a vector whose length "
                                f"is known when tracing (such as x.shape), got {shape.describe()}")
    elif isinstance(shape, (list, tuple)) or (isinstance(shape, np.ndarray) and shape.ndim == 1):
        entries = list(shape)
    else:
        entries = [shape]
    scalars = []
    for i, entry in enumerate(entries):
        v = as_tensor_variable(entry)
        if v.ndim != 0 or not (dtypes.is_int(v.dtype) or v.dtype == "bool"):
            raise TypeError(f"{fn}: {what} entry {i} must be an integer scalar, got {v.describe()}")
        scalars.append(cast(v, "int64"))
    return scalars


def second(a: Any, b: Any) -> Variable:
    """b broadcast to the shape of a and b together, in b's dtype (Aesara's `second`)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    return add(b, zeros_like(a, b.dtype))


def fill(model: Any, value: Any) -> Variable:
    """`value` broadcast to `model`'s shape (Aesara's `fill`, which is `second`)."""
    return second(model, value)


def full_like(a: Any, fill_value: Any, dtype: str | None = None) -> Variable:
    """A tensor shaped like `a`, filled with `fill_value`, in `dtype` or a's dtype."""
    a = as_tensor_variable(a)
    return second(a, cast(as_tensor_variable(fill_value), dtype or a.dtype))


def eye(n: Any, m: Any = None, k: Any = 0, dtype: str | None = None) -> Variable:
    """The n x m matrix with ones on the k-th diagonal (numpy's eye)."""
    n = _int_scalar(n, "eye", "n")
    m = n if m is None else _int_scalar(m, "eye", "m")
    return Eye("eye", dtype or config.floatX)(n, m, _int_scalar(k, "eye", "k"))


def identity_like(x: Any, dtype: str | None = None) -> Variable:
    """The identity matrix shaped like the matrix x."""
    x = as_tensor_variable(x)
    if x.ndim != 2:
        raise TypeError(f"identity_like: x must be a matrix, got {x.describe()}")
    return Eye("eye", dtype or x.dtype)(x, int_constant(0))


def _int_scalar(value: Any, fn: str, what: str) -> Variable:
    v = as_tensor_variable(value)
    if v.ndim != 0 or not dtypes.is_int(v.dtype):
        raise TypeError(f"{fn}: {what} must be an integer scalar, got {v.describe()}")
    return cast(v, "int64")


def _tri(x: Any, k: Any, fn: str) -> tuple[Variable, Variable]:
    """x and the bool mask of its lower triangle `j - i <= k` over its last two dims."""
    x = as_tensor_variable(x)
    if x.ndim < 2:
        raise TypeError(f"{fn}: x must have at least 2 dims, got {x.describe()}")
    return x, Eye("tri", "bool")(x, _int_scalar(k, fn, "k"))


def tril(x: Any, k: Any = 0) -> Variable:
    """x with the elements above the k-th diagonal zeroed (numpy's tril)."""
    x, mask = _tri(x, k, "tril")
    return switch(mask, x, zeros_like(x))


def triu(x: Any, k: Any = 0) -> Variable:
    """x with the elements below the k-th diagonal zeroed (numpy's triu)."""
    x, mask = _tri(x, sub(_int_scalar(k, "triu", "k"), 1), "triu")
    return switch(mask, zeros_like(x), x)


def diag(v: Any, k: int = 0) -> Variable:
    """A vector's square diagonal matrix, or a matrix's k-th diagonal (numpy's diag)."""
    v = as_tensor_variable(v)
    if not isinstance(k, (int, np.integer)):
        raise TypeError(f"diag: k must be a Python int, got {k!r}")
    if v.ndim == 1:
        return AllocDiag(k)(v)
    if v.ndim == 2:
        return ExtractDiag(k)(v)
    raise ValueError(f"diag: v must be a vector or a matrix, got {v.describe()}")


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Variable:
    """The `offset`-th diagonal of a matrix (numpy's diagonal; matrices only)."""
    a = as_tensor_variable(a)
    if a.ndim != 2 or sorted((axis1 % 2, axis2 % 2)) != [0, 1]:
        raise ValueError(f"diagonal: only matrices with axis1, axis2 = 0, 1 are supported, got "
                         f"{a.describe()} with axes {axis1}, {axis2}")
    if not isinstance(offset, (int, np.integer)):
        raise TypeError(f"diagonal: offset must be a Python int, got {offset!r}")
    return ExtractDiag(offset if axis1 % 2 == 0 else -offset)(a)


def linspace(start: Any, end: Any, steps: Any = 50, dtype: str | None = None) -> Variable:
    """`steps` evenly spaced values from start to end, both included (Aesara's names,
    numpy's linspace)."""
    stop, num = end, steps
    start, stop = as_tensor_variable(start), as_tensor_variable(stop)
    for what, v in (("start", start), ("stop", stop)):
        if v.ndim != 0:
            raise TypeError(f"linspace: {what} must be a scalar, got {v.describe()}")
    num = _int_scalar(num, "linspace", "num")
    common = dtypes.upcast(start.dtype, stop.dtype)
    dtype = dtypes.check(dtype) if dtype else common if dtypes.is_float(common) else config.floatX
    start, stop = cast(start, dtype), cast(stop, dtype)
    i = cast(arange(num), dtype)
    step = true_div(sub(stop, start), cast(maximum(sub(num, 1), 1), dtype))
    values = add(start, i * step)
    last = and_(eq(arange(num), sub(num, 1)), gt(num, 1))
    return switch(last, stop, values)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: str | None = None) -> Variable:
    """`range` as a vector; the dtype is the upcast of the three bounds (Aesara's rule)."""
    if stop is None:
        start, stop = 0, start
    start, stop, step = as_tensor_variable(start), as_tensor_variable(stop), as_tensor_variable(step)
    if dtype:
        dtype = dtypes.check(dtype)
    else:  # Aesara: the bounds' upcast, but integer ranges are int64 (no overflow)
        dtype = dtypes.upcast(start.dtype, stop.dtype, step.dtype)
        dtype = "int64" if dtypes.is_int(dtype) or dtype == "bool" else dtype
    if isinstance(step, Constant) and not np.all(step.data):
        raise ValueError("arange: step must not be zero")
    return ARange(dtype)(cast(start, dtype), cast(stop, dtype), cast(step, dtype))
