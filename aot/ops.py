"""The tensor ops a traced program is made of, with their typing and shape rules.

Each op's emission rule lives in `scanaot.emit_rules`, keyed by the op class.
"""
from __future__ import annotations

from typing import Sequence

from . import dtypes
from .graph import Apply, Constant, Op, TensorType, Variable

# name -> (number of inputs, typing rule). Rules: "upcast": result has the inputs'
# common dtype; "float": like upcast but integers become floats (Aesara's
# upgrade_to_float); "bool": comparisons; "switch": cond ? a : b.
SCALAR_OPS: dict[str, tuple[int, str]] = {
    "add": (2, "upcast"), "sub": (2, "upcast"), "mul": (2, "upcast"),
    "true_div": (2, "float"), "int_div": (2, "upcast"), "mod": (2, "upcast"),
    "pow": (2, "upcast"), "maximum": (2, "upcast"), "minimum": (2, "upcast"),
    "lt": (2, "bool"), "gt": (2, "bool"), "le": (2, "bool"), "ge": (2, "bool"),
    "eq": (2, "bool"), "neq": (2, "bool"),
    "and": (2, "upcast"), "or": (2, "upcast"), "xor": (2, "upcast"),
    "neg": (1, "upcast"), "abs": (1, "upcast"), "invert": (1, "upcast"),
    "sign": (1, "upcast"),
    "tanh": (1, "float"), "exp": (1, "float"), "log": (1, "float"), "sqrt": (1, "float"),
    "sin": (1, "float"), "cos": (1, "float"), "sigmoid": (1, "float"),
    "ceil": (1, "float"), "floor": (1, "float"),
    "switch": (3, "switch"),
}


def broadcast_pattern(types: Sequence[TensorType]) -> tuple[bool, ...]:
    """Aesara's broadcasting: align on the right; a dim broadcasts only if marked so."""
    ndim = max(t.ndim for t in types)
    pattern = []
    for axis in range(ndim):
        flags = []
        for t in types:
            offset = axis - (ndim - t.ndim)
            flags.append(True if offset < 0 else t.broadcastable[offset])
        pattern.append(all(flags))
    return tuple(pattern)


class Elemwise(Op):
    """A scalar function applied elementwise with broadcasting."""

    def __init__(self, scalar: str):
        if scalar not in SCALAR_OPS:
            raise KeyError(f"unknown elementwise op {scalar!r}")
        self.scalar = scalar

    def __str__(self) -> str:
        return self.scalar

    def compute_dtype(self, in_dtypes: Sequence[str]) -> str:
        """The dtype the inputs are converted to before the scalar function runs."""
        rule = SCALAR_OPS[self.scalar][1]
        if rule == "switch":
            return dtypes.upcast(*in_dtypes[1:])
        common = dtypes.upcast(*in_dtypes)
        if rule == "float":
            return dtypes.upgrade_to_float(common)
        return common

    def make_node(self, *inputs: Variable) -> Apply:
        nin, rule = SCALAR_OPS[self.scalar]
        if len(inputs) != nin:
            raise TypeError(f"{self.scalar} takes {nin} inputs, got {len(inputs)}")
        in_dtypes = [v.dtype for v in inputs]
        if self.scalar in ("and", "or", "xor", "invert") and any(dtypes.is_float(d) for d in in_dtypes):
            raise TypeError(f"{self.scalar} needs integer or bool inputs, got {', '.join(in_dtypes)}")
        out = "bool" if rule == "bool" else self.compute_dtype(in_dtypes)
        return Apply(self, inputs, [TensorType(out, broadcast_pattern([v.type for v in inputs]))])

    def infer_shape(self, node, input_shapes):
        out = node.outputs[0]
        shape = []
        for axis in range(out.ndim):
            dim = None
            for var, in_shape in zip(node.inputs, input_shapes):
                offset = axis - (out.ndim - var.ndim)
                if offset >= 0 and not var.broadcastable[offset]:
                    dim = in_shape[offset]
                    break
            shape.append(dim if dim is not None else int_constant(1))
        return [shape]


class Cast(Op):
    """Conversion to another dtype (to bool means `!= 0`)."""

    def __init__(self, dtype: str):
        self.dtype = dtypes.check(dtype)

    def __str__(self) -> str:
        return f"cast_{self.dtype}"

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [TensorType(self.dtype, x.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


class Fill(Op):
    """`ones_like`/`zeros_like`: a tensor shaped like the input, filled with a constant."""

    def __init__(self, value: float, dtype: str):
        self.value = value
        self.dtype = dtypes.check(dtype)

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [TensorType(self.dtype, x.broadcastable)])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0])]


class Alloc(Op):
    """A tensor of the given dims filled with a scalar value (`at.alloc`, `at.zeros`)."""

    def make_node(self, value: Variable, *dims: Variable) -> Apply:
        if value.ndim != 0:
            raise TypeError(f"alloc: the fill value must be a scalar, got {value.describe()}")
        for d in dims:
            _require_int_scalar(d, "alloc dimension")
        bcast = [isinstance(d, Constant) and int(d.data) == 1 for d in dims]
        return Apply(self, [value, *dims], [TensorType(value.dtype, bcast)])

    def infer_shape(self, node, input_shapes):
        return [list(node.inputs[1:])]


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
        from . import basic
        start, stop, step = node.inputs
        if all(dtypes.is_int(v.dtype) or v.dtype == "bool" for v in node.inputs):
            size = basic.neg(basic.int_div(start - stop, step))
        else:
            size = basic.ceil(basic.true_div(stop - start, step))
        return [[basic.maximum(basic.cast(size, "int64"), int_constant(0))]]


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


class Dot(Op):
    """Matrix/vector products: (1,1)->0, (2,1)->1, (1,2)->1, (2,2)->2 dims."""

    def make_node(self, x: Variable, y: Variable) -> Apply:
        if x.ndim not in (1, 2) or y.ndim not in (1, 2):
            raise TypeError(f"dot: expected vectors or matrices, got {x.describe()} and {y.describe()}")
        bcast = list(x.broadcastable[:-1]) + list(y.broadcastable[1:])
        return Apply(self, [x, y], [TensorType(dtypes.upcast(x.dtype, y.dtype), bcast)])

    def infer_shape(self, node, input_shapes):
        xs, ys = input_shapes
        return [list(xs[:-1]) + list(ys[1:])]


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
        from . import basic
        x = node.inputs[0]
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
            shape.append(basic.slice_length(dim, start, stop, step))
        shape.extend(input_shapes[0][len(self.spec):])
        del x
        return [shape]


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


class MakeVector(Op):
    """Scalars stacked into a vector (`x.shape`)."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def make_node(self, *scalars: Variable) -> Apply:
        return Apply(self, scalars, [TensorType(self.dtype, [len(scalars) == 1])])

    def infer_shape(self, node, input_shapes):
        return [[int_constant(len(node.inputs))]]


class FinalValue(Op):
    """The last row of a stacked tensor, or `initial` when it has no rows.

    What a loop's final state is, including after zero steps; gradients use it
    for the last window and accumulators of their reversed scans."""

    def make_node(self, stacked: Variable, initial: Variable) -> Apply:
        if stacked.ndim != initial.ndim + 1 or stacked.dtype != initial.dtype:
            raise TypeError(f"final value: {stacked.describe()} is not a stack of {initial.describe()}")
        return Apply(self, [stacked, initial], [initial.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[1])]


def int_constant(value: int) -> Constant:
    import numpy as np
    return Constant(np.asarray(value, dtype="int64"))


def _require_int_scalar(v: Variable, what: str) -> None:
    if v.ndim != 0 or not (dtypes.is_int(v.dtype) or v.dtype == "bool"):
        raise TypeError(f"{what} must be an integer scalar, got {v.describe()}")
