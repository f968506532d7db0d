"""Building graph nodes: the functions behind `scanaot.tensor` and Variable's operators."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import config, dtypes
from .graph import Constant, TensorType, Variable
from .ops import (Alloc, ARange, Cast, DimShuffle, Dot, Elemwise, Fill, IncSubtensor,
                  MakeVector, Reduce, ShapeI, Subtensor, int_constant)


# ---------------------------------------------------------------- variables
def _make(dtype: str | None, ndim: int):
    def constructor(name: str | None = None, dtype: str | None = dtype, shape=None) -> Variable:
        bcast = [False] * ndim
        if shape is not None:
            if len(shape) != ndim:
                raise ValueError(f"shape {shape} has {len(shape)} dims, expected {ndim}")
            bcast = [s == 1 for s in shape]
        return Variable(TensorType(dtype or config.floatX, bcast), name=name)
    return constructor


def tensor(dtype: str | None = None, shape: Sequence[int | None] | None = None,
           name: str | None = None, broadcastable: Sequence[bool] | None = None) -> Variable:
    """A symbolic tensor of any rank (`shape` entries of 1 are broadcastable)."""
    if broadcastable is None:
        if shape is None:
            raise TypeError("tensor() needs shape= or broadcastable=")
        broadcastable = [s == 1 for s in shape]
    return Variable(TensorType(dtype or config.floatX, broadcastable), name=name)


def as_tensor_variable(x: Any, name: str | None = None, ndim: int | None = None,
                       dtype: str | None = None) -> Variable:
    """A Variable as is; anything else becomes a Constant with Aesara's literal typing."""
    if isinstance(x, Variable):
        var = x
    elif isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in x):
        var = stack([as_tensor_variable(e) for e in x])
    else:
        try:
            var = Constant(dtypes.literal_array(x, dtype), name=name)
        except (TypeError, ValueError) as err:
            raise TypeError(f"cannot turn {x!r} into a tensor: {err}") from None
    if ndim is not None and var.ndim != ndim:
        raise TypeError(f"expected a {ndim}-d tensor, got {var.describe()}")
    return var


def constant(x: Any, name: str | None = None, ndim: int | None = None,
             dtype: str | None = None) -> Constant:
    var = as_tensor_variable(x, name=name, ndim=ndim, dtype=dtype)
    if not isinstance(var, Constant):
        raise TypeError(f"constant() needs a value, got the variable {var.describe()}")
    return var


def _wrap(x: Any) -> Variable:
    return x if isinstance(x, Variable) else as_tensor_variable(x)


# ---------------------------------------------------------------- elementwise
def elemwise(name: str, *args: Any) -> Variable:
    return Elemwise(name)(*[_wrap(a) for a in args])


def _binary(name: str):
    def op(a: Any, b: Any) -> Variable:
        return elemwise(name, a, b)
    op.__name__ = name
    return op


def _unary(name: str):
    def op(a: Any) -> Variable:
        return elemwise(name, a)
    op.__name__ = name
    return op


add, sub, mul, true_div, int_div, mod = (_binary(n) for n in ("add", "sub", "mul", "true_div", "int_div", "mod"))
pow_, maximum, minimum = _binary("pow"), _binary("maximum"), _binary("minimum")
lt, gt, le, ge, eq, neq = (_binary(n) for n in ("lt", "gt", "le", "ge", "eq", "neq"))
and_, or_, xor = _binary("and"), _binary("or"), _binary("xor")
neg, abs_, invert, sgn = _unary("neg"), _unary("abs"), _unary("invert"), _unary("sign")
tanh, exp, log, sqrt = (_unary(n) for n in ("tanh", "exp", "log", "sqrt"))
sin, cos, sigmoid, ceil, floor = (_unary(n) for n in ("sin", "cos", "sigmoid", "ceil", "floor"))


def switch(cond: Any, ift: Any, iff: Any) -> Variable:
    """Elementwise `ift if cond else iff` (cond is converted to bool)."""
    c = _wrap(cond)
    if c.dtype != "bool":
        c = cast(c, "bool")
    return elemwise("switch", c, ift, iff)


def cast(x: Any, dtype: str) -> Variable:
    x = _wrap(x)
    dtype = dtypes.check(dtype)
    return x if x.dtype == dtype else Cast(dtype)(x)


def ones_like(x: Any, dtype: str | None = None) -> Variable:
    x = _wrap(x)
    return Fill(1, dtype or x.dtype)(x)


def zeros_like(x: Any, dtype: str | None = None) -> Variable:
    x = _wrap(x)
    return Fill(0, dtype or x.dtype)(x)


def alloc(value: Any, *dims: Any) -> Variable:
    return Alloc()(_wrap(value), *[cast(_wrap(d), "int64") for d in dims])


def zeros(shape: Any, dtype: str | None = None) -> Variable:
    return alloc(np.asarray(0, dtype or config.floatX), *_dims(shape))


def ones(shape: Any, dtype: str | None = None) -> Variable:
    return alloc(np.asarray(1, dtype or config.floatX), *_dims(shape))


def _dims(shape: Any) -> list:
    if isinstance(shape, Variable):
        if shape.ndim == 0:
            return [shape]
        if isinstance(shape.owner.op if shape.owner else None, MakeVector):
            return list(shape.owner.inputs)
        raise TypeError("shape must be a tuple of scalars")
    return list(shape) if isinstance(shape, (list, tuple)) else [shape]


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: str | None = None) -> Variable:
    """`range` as a vector; the dtype is the upcast of the three bounds (Aesara's rule)."""
    if stop is None:
        start, stop = 0, start
    start, stop, step = _wrap(start), _wrap(stop), _wrap(step)
    dtype = dtypes.check(dtype) if dtype else dtypes.upcast(start.dtype, stop.dtype, step.dtype)
    if isinstance(step, Constant) and not np.all(step.data):
        raise ValueError("arange: step must not be zero")
    return ARange(dtype)(cast(start, dtype), cast(stop, dtype), cast(step, dtype))


def stack(values: Sequence[Any]) -> Variable:
    vals = [_wrap(v) for v in values]
    if all(v.ndim == 0 for v in vals):
        dtype = dtypes.upcast(*[v.dtype for v in vals])
        return MakeVector(dtype)(*[cast(v, dtype) for v in vals])
    raise TypeError("stack: only scalars can be stacked")


# ---------------------------------------------------------------- shapes
def shape_i(x: Any, axis: int) -> Variable:
    x = _wrap(x)
    if axis < 0:
        axis += x.ndim
    if 0 <= axis < x.ndim and x.broadcastable[axis]:
        return int_constant(1)
    if isinstance(x, Constant) and 0 <= axis < x.ndim:
        return int_constant(x.data.shape[axis])
    return ShapeI(axis)(x)


def shape(x: Any) -> Variable:
    x = _wrap(x)
    if x.ndim == 0:
        return as_tensor_variable(np.zeros(0, dtype="int64"))
    return MakeVector("int64")(*[shape_i(x, i) for i in range(x.ndim)])


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


# ---------------------------------------------------------------- reductions and products
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
    x = _wrap(x)
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
    x = _wrap(x)
    axes = _axes(x, axis)
    total = _reduce("sum", x, axes, dtypes.upgrade_to_float(x.dtype))
    count = int_constant(1)
    for a in axes:
        count = count * shape_i(x, a)
    return true_div(total, cast(count, total.dtype))


def dot(x: Any, y: Any) -> Variable:
    """Matrix product for vectors/matrices; scalars multiply elementwise (Aesara's rule)."""
    x, y = _wrap(x), _wrap(y)
    if x.ndim == 0 or y.ndim == 0:
        return mul(x, y)
    return Dot()(x, y)


def dimshuffle(x: Variable, *order: Any) -> Variable:
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = tuple(order[0])
    return DimShuffle(x.broadcastable, tuple(order))(x)


def transpose(x: Any) -> Variable:
    x = _wrap(x)
    return dimshuffle(x, *reversed(range(x.ndim)))


# ---------------------------------------------------------------- indexing
def _index_spec(x: Variable, key: Any) -> tuple[tuple, list[Variable]]:
    if not isinstance(key, tuple):
        key = (key,)
    spec, scalars = [], []
    for entry in key:
        if entry is Ellipsis or entry is None:
            raise IndexError("Ellipsis and None (newaxis) indices are not supported; use dimshuffle")
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
    v = _wrap(value)
    if v.ndim != 0 or not (dtypes.is_int(v.dtype) or v.dtype == "bool"):
        raise IndexError(f"{what} must be an integer scalar, got {v.describe()}")
    return cast(v, "int64")


def getitem(x: Variable, key: Any) -> Variable:
    if isinstance(key, Variable) and key.ndim > 0:
        raise IndexError("advanced (array) indexing is not supported; index with scalars and slices")
    # x.shape[i] of a MakeVector is its i-th scalar, as in Aesara's shape feature
    if (x.owner is not None and isinstance(x.owner.op, MakeVector)
            and isinstance(key, (int, np.integer))):
        return x.owner.inputs[int(key)]
    spec, scalars = _index_spec(x, key)
    return Subtensor(spec)(x, *scalars)


def _inc_or_set(x: Variable, y: Any, set_: bool) -> Variable:
    node = x.owner
    if node is None or not isinstance(node.op, Subtensor):
        what = "set_subtensor" if set_ else "inc_subtensor"
        raise TypeError(f"{what}: the first argument must be an indexed tensor such as x[i, 1:3], "
                        f"got {x.describe()}")
    base, scalars = node.inputs[0], node.inputs[1:]
    y = _wrap(y)
    if y.ndim > x.ndim:
        raise TypeError(f"the value has {y.ndim} dims but the indexed region has {x.ndim}")
    if y.dtype != base.dtype:
        if not isinstance(y, Constant) and not np.can_cast(y.dtype, base.dtype, "same_kind"):
            raise TypeError(f"cannot write {y.describe()} into a {base.dtype} tensor without a downcast")
        y = cast(y, base.dtype)
    return IncSubtensor(node.op.spec, set_)(base, y, *scalars)


def set_subtensor(x: Variable, y: Any) -> Variable:
    """A copy of the tensor `x` was indexed from, with that region set to `y`."""
    return _inc_or_set(x, y, True)


def inc_subtensor(x: Variable, y: Any) -> Variable:
    """A copy of the tensor `x` was indexed from, with `y` added to that region."""
    return _inc_or_set(x, y, False)


# ---------------------------------------------------------------- operators on Variable
def _install_operators() -> None:
    def binop(fn, reflected=False):
        if reflected:
            return lambda self, other: fn(_wrap(other), self)
        return lambda self, other: fn(self, other)

    table = {
        "add": add, "sub": sub, "mul": mul, "truediv": true_div, "floordiv": int_div,
        "mod": mod, "pow": pow_, "and": and_, "or": or_, "xor": xor,
    }
    for name, fn in table.items():
        setattr(Variable, f"__{name}__", binop(fn))
        setattr(Variable, f"__r{name}__", binop(fn, reflected=True))
    Variable.__lt__ = binop(lt)
    Variable.__gt__ = binop(gt)
    Variable.__le__ = binop(le)
    Variable.__ge__ = binop(ge)
    Variable.__neg__ = lambda self: neg(self)
    Variable.__abs__ = lambda self: abs_(self)
    Variable.__invert__ = lambda self: invert(self)
    Variable.__getitem__ = getitem
    Variable.__bool__ = _no_bool
    Variable.__iter__ = _no_iter
    Variable.shape = property(shape)
    Variable.T = property(transpose)
    Variable.dimshuffle = dimshuffle
    Variable.sum = lambda self, axis=None, dtype=None: sum(self, axis, dtype)
    Variable.prod = lambda self, axis=None, dtype=None: prod(self, axis, dtype)
    Variable.mean = lambda self, axis=None: mean(self, axis)
    Variable.max = lambda self, axis=None: max(self, axis)
    Variable.min = lambda self, axis=None: min(self, axis)
    Variable.astype = lambda self, dtype: cast(self, dtype)
    Variable.dot = lambda self, other: dot(self, other)


def _no_bool(self: Variable) -> bool:
    raise TypeError(f"the truth value of the symbolic {self.describe()} is unknown while tracing; "
                    "use at.switch(...) or scanaot.scan.utils.until(...) instead of Python `if`")


def _no_iter(self: Variable):
    raise TypeError(f"cannot iterate over the symbolic {self.describe()}; use scan over it")


_install_operators()
