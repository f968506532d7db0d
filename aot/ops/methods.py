"""Variable's operators and methods, as Aesara's tensor variables have them
(`x + y`, `x[i]`, `x.T`, `x.sum()`, ...), installed on `graph.basic.Variable`."""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..graph.basic import Variable, as_tensor_variable
from . import elemwise
from .elemwise import round as round_  # noqa: I001
from .elemwise import (abs_, add, and_, cast, clip, ge, gt, int_div, invert, le, lt, mod, mul, neg, or_, pow_, sub,
                       true_div, xor)
from .indexing import getitem
from .linalg import dot, matmul
from .reduction import (all, any, argmax, argmin, argsort, cumprod, cumsum, max, mean, min, prod, sort,  # noqa: A004
                        std, sum, var)
from .join import repeat, trace
from .shape import take, dimshuffle, flatten, reshape, shape, squeeze, swapaxes, transpose
from .creation import diagonal, fill, ones_like, zeros_like


def _binary(fn, reflected: bool = False):
    if reflected:
        return lambda self, other: fn(as_tensor_variable(other), self)
    return lambda self, other: fn(self, other)


_OPERATORS = {"add": add, "sub": sub, "mul": mul, "truediv": true_div, "floordiv": int_div,
              "mod": mod, "pow": pow_, "and": and_, "or": or_, "xor": xor}


def _no_bool(self: Variable) -> bool:
    raise TypeError(f"the truth value of the symbolic {self.describe()} is unknown while tracing; "
                    "use at.switch(...) or scanaot.scan.utils.until(...) instead of Python `if`")


def _no_iter(self: Variable):
    raise TypeError(f"cannot iterate over the symbolic {self.describe()}; use scan over it")


def _axes_argument(axes: tuple):
    """`x.transpose()`, `x.transpose(1, 0)` and `x.transpose((1, 0))` as numpy takes them."""
    if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
        return axes[0]
    return axes or None


def install() -> None:
    for name, fn in _OPERATORS.items():
        setattr(Variable, f"__{name}__", _binary(fn))
        setattr(Variable, f"__r{name}__", _binary(fn, reflected=True))
    Variable.__lt__ = _binary(lt)
    Variable.__gt__ = _binary(gt)
    Variable.__le__ = _binary(le)
    Variable.__ge__ = _binary(ge)
    Variable.__neg__ = lambda self: neg(self)
    Variable.__abs__ = lambda self: abs_(self)
    Variable.__invert__ = lambda self: invert(self)
    Variable.__getitem__ = getitem
    Variable.__bool__ = _no_bool
    Variable.__iter__ = _no_iter
    Variable.shape = property(shape)
    Variable.T = property(transpose)
    Variable.dimshuffle = dimshuffle
    Variable.reshape = lambda self, shape, ndim=None: reshape(self, shape, ndim)
    Variable.flatten = lambda self, ndim=1: flatten(self, ndim)
    Variable.ravel = lambda self: flatten(self)
    Variable.swapaxes = lambda self, axis1, axis2: swapaxes(self, axis1, axis2)
    Variable.squeeze = lambda self, axis=None: squeeze(self, axis)
    Variable.transpose = lambda self, *axes: transpose(self, _axes_argument(axes))
    Variable.repeat = lambda self, repeats, axis=None: repeat(self, repeats, axis)
    Variable.diagonal = lambda self, offset=0, axis1=0, axis2=1: diagonal(self, offset, axis1, axis2)
    Variable.sum = lambda self, axis=None, dtype=None, keepdims=False, acc_dtype=None: sum(
        self, axis, dtype, keepdims, acc_dtype)
    Variable.prod = lambda self, axis=None, dtype=None, keepdims=False, acc_dtype=None: prod(
        self, axis, dtype, keepdims, acc_dtype)
    Variable.mean = lambda self, axis=None, dtype=None, keepdims=False, acc_dtype=None: mean(
        self, axis, dtype, keepdims=keepdims, acc_dtype=acc_dtype)
    Variable.max = lambda self, axis=None, keepdims=False: max(self, axis, keepdims)
    Variable.min = lambda self, axis=None, keepdims=False: min(self, axis, keepdims)
    Variable.all = lambda self, axis=None, keepdims=False: all(self, axis, keepdims)
    Variable.any = lambda self, axis=None, keepdims=False: any(self, axis, keepdims)
    Variable.argmax = lambda self, axis=None, keepdims=False: argmax(self, axis, keepdims)
    Variable.argmin = lambda self, axis=None, keepdims=False: argmin(self, axis, keepdims)
    Variable.var = lambda self, axis=None, ddof=0, keepdims=False, corrected=False: var(
        self, axis, ddof, keepdims, corrected)
    Variable.std = lambda self, axis=None, ddof=0, keepdims=False, corrected=False: std(
        self, axis, ddof, keepdims, corrected)
    Variable.cumsum = lambda self, axis=None: cumsum(self, axis)
    Variable.cumprod = lambda self, axis=None: cumprod(self, axis)
    Variable.sort = lambda self, axis=-1, kind="quicksort", order=None: sort(self, axis, kind, order)
    Variable.argsort = lambda self, axis=-1, kind="quicksort", order=None: argsort(self, axis, kind, order)
    Variable.take = lambda self, indices, axis=None, mode="raise": take(self, indices, axis, mode)
    Variable.astype = lambda self, dtype: cast(self, dtype)
    Variable.clip = lambda self, a_min, a_max: clip(self, a_min, a_max)
    Variable.round = lambda self, mode=None: round_(self, mode)
    Variable.dot = lambda self, other: dot(self, other)
    Variable.__matmul__ = lambda self, other: matmul(self, other)
    Variable.__rmatmul__ = lambda self, other: matmul(as_tensor_variable(other), self)
    for name in _UNARY_METHODS:
        setattr(Variable, name, _unary_method(getattr(elemwise, name)))
    Variable.copy = lambda self, name=None: _named(self * 1 if self.dtype != "bool" else self, name)
    Variable.conj = Variable.conjugate = lambda self: self  # real dtypes only
    Variable.fill = lambda self, value: fill(self, value)
    Variable.ones_like = lambda self, dtype=None: ones_like(self, dtype)
    Variable.zeros_like = lambda self, dtype=None: zeros_like(self, dtype)
    Variable.trace = lambda self: trace(self)
    Variable.ptp = lambda self, axis=None, keepdims=False: max(self, axis, keepdims) - min(self, axis, keepdims)
    Variable.norm = _norm
    Variable.deg2rad = lambda self: self * (np.pi / 180.0)
    Variable.rad2deg = lambda self: self * (180.0 / np.pi)
    Variable.eval = _eval


# Aesara's unary elementwise methods (`x.exp()`, `x.sqrt()`, ...)
_UNARY_METHODS = ("arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "ceil", "cos", "cosh", "exp",
                  "exp2", "expm1", "floor", "log", "log10", "log1p", "log2", "sin", "sinh", "sqrt", "tan", "tanh",
                  "trunc")


def _unary_method(fn):
    return lambda self: fn(self)


def _named(var: Variable, name: str | None) -> Variable:
    if name is not None:
        var.name = name
    return var


def _norm(self: Variable, L: float, axis: Any = None, keepdims: bool = False) -> Variable:
    """Aesara's `x.norm(L, axis)`: (sum |x|^L)^(1/L); L=0 counts the non-zeros, inf is max |x|."""
    if L == 0:
        return sum(cast(elemwise.neq(self, 0), "int64"), axis, keepdims=keepdims)
    if L == float("inf"):
        return max(abs_(self), axis, keepdims)
    if L == 1:
        return sum(abs_(self), axis, keepdims=keepdims)
    if L == 2:
        return elemwise.sqrt(sum(self * self, axis, keepdims=keepdims))
    return pow_(sum(pow_(abs_(self), L), axis, keepdims=keepdims), 1.0 / L)


def _eval(self: Variable, inputs_to_values: dict | None = None) -> Any:
    """Aesara's `x.eval({x: value})`: compile (cached like any function) and run.
    scanaot.function lives above the ops, so it is looked up when eval is called."""
    given = dict(inputs_to_values or {})
    function = importlib.import_module("scanaot.packaging.function").function
    return function(list(given), self, on_unused_input="ignore")(*given.values())


install()
