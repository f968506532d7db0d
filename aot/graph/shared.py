"""Shared variables: graph leaves that carry a value between calls (Aesara's
`aesara.shared`). A function's shared variables are implicit inputs; its updates
(and each shared variable's `default_update`) are stored after the call.

The value is typed like Aesara 2.9's: its dtype comes from the value (a Python int is
int64, a float float64), its broadcastable pattern from `shape` only (a length-1 dim
of the value is not broadcastable unless `shape` says 1).
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from . import dtypes
from .basic import TensorType, Variable, free_inputs

_numbers = itertools.count()


class OrderedUpdates(OrderedDict):
    """What `scan` returns beside its outputs, and what `function(updates=...)` takes:
    shared variable -> the expression that becomes its value after the call."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(key, SharedVariable):
            raise TypeError(f"updates: the key must be a shared variable, got {key!r}")
        if key in self and self[key] is not value:
            raise ValueError(f"updates: {key.describe()} is updated twice")
        super().__setitem__(key, value)


class SharedVariable(Variable):
    """A graph leaf with a value kept between calls (`get_value`, `set_value`)."""

    def __init__(self, value: np.ndarray, type: TensorType, name: str | None, strict: bool,
                 allow_downcast: bool | None):
        super().__init__(type, name=name)
        self.scope = 0  # usable inside any scan step: captured like an outer variable
        self.strict = strict
        self.allow_downcast = allow_downcast
        self.default_update: Variable | None = None
        self.number = next(_numbers)
        self._value = value

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The value; with `borrow=True` the array itself (changing it changes the variable)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Store `value` (converted as Aesara's filter does); with `borrow=True` a
        suitable ndarray is kept without a copy."""
        converted = filter_value(value, self.type, self.strict, self.allow_downcast, self.describe())
        self._value = converted if (borrow and converted is value) else np.array(converted, copy=True)

    def __repr__(self) -> str:
        return self.name or f"<shared {self.dtype} {self.ndim}-d #{self.number}>"

    def describe(self) -> str:
        label = repr(self.name) if self.name else f"shared variable #{self.number}"
        return f"{label} ({self.dtype}, ndim={self.ndim})"


def filter_value(value: Any, type: TensorType, strict: bool, allow_downcast: bool | None,
                 what: str) -> np.ndarray:
    """`value` as an array of `type`, by Aesara's rules: `strict` takes only an ndarray
    of the exact dtype; otherwise safe casts are made, and a lossy one only with
    `allow_downcast` (or a Python float for a floatX variable when it is None)."""
    if strict:
        if not isinstance(value, np.ndarray) or str(value.dtype) != type.dtype:
            raise TypeError(f"{what} is strict: expected an ndarray of dtype {type.dtype}, got "
                            f"{type_name(value)}")
        data = value
    else:
        data = np.asarray(value)
        if str(data.dtype) != type.dtype:
            data = _cast(value, data, type.dtype, allow_downcast, what)
    if data.ndim != type.ndim:
        raise TypeError(f"{what}: wrong number of dimensions: expected {type.ndim}, got {data.ndim} "
                        f"with shape {data.shape}")
    for axis, (size, bcast) in enumerate(zip(data.shape, type.broadcastable)):
        if bcast and size != 1:
            raise TypeError(f"{what}: dim {axis} is broadcastable and must have length 1, got shape {data.shape}")
    return data


def _cast(value: Any, data: np.ndarray, dtype: str, allow_downcast: bool | None, what: str) -> np.ndarray:
    from .. import config
    if allow_downcast or (allow_downcast is None and isinstance(value, float) and dtype == config.floatX):
        return data.astype(dtype)
    if data.dtype.kind in "biuf" and np.can_cast(data.dtype, dtype, "safe"):
        return data.astype(dtype)
    converted = data.astype(dtype)
    if data.dtype.kind in "biuf" and np.array_equal(converted, data):
        return converted  # exact: ints that fit, floats with integral values
    raise TypeError(f"{what} cannot store {type_name(value)} of dtype {data.dtype} accurately as {dtype}; "
                    "cast it explicitly, or pass allow_downcast=True")


def type_name(value: Any) -> str:
    return type(value).__name__


def shared(value: Any, name: str | None = None, strict: bool = False, allow_downcast: bool | None = None,
           borrow: bool = False, shape: Sequence[int | None] | None = None) -> SharedVariable:
    """A shared variable holding `value` (copied unless `borrow=True`); Aesara's `shared`."""
    if isinstance(value, Variable):
        raise TypeError(f"shared: value must be a number or an array, not the symbolic {value.describe()}")
    data = np.asarray(value)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"shared: cannot hold a value of dtype {data.dtype}; expected one of "
                        f"{', '.join(dtypes.SUPPORTED)}")
    try:
        dtype = dtypes.check(data.dtype)
    except TypeError:
        raise TypeError(f"shared: dtype {data.dtype} is not supported (expected one of "
                        f"{', '.join(dtypes.SUPPORTED)}); convert the value first") from None
    if shape is None:
        bcast = [False] * data.ndim
    else:
        if len(shape) != data.ndim:
            raise ValueError(f"shared: shape {tuple(shape)} has {len(shape)} dims but the value has {data.ndim}")
        for axis, (want, size) in enumerate(zip(shape, data.shape)):
            if want is not None and want != size:
                raise ValueError(f"shared: shape {tuple(shape)} does not fit the value's shape {data.shape} "
                                 f"(dim {axis})")
        bcast = [s == 1 for s in shape]
    var_type = TensorType(dtype, bcast)
    stored = data if (borrow and data is value) else np.array(data, copy=True)
    return SharedVariable(stored, var_type, name, strict, allow_downcast)


def with_default_updates(graph: list[Variable], pairs: list) -> list:
    """`pairs` (shared variable, new value) with the `default_update` of every shared
    variable the graph or the new values read (a random stream's next state), unless an
    explicit update replaces it: applied by `function` after each call and by `scan`
    after each step, as in Aesara."""
    pairs = list(pairs)
    while True:
        explicit = {id(s) for s, _ in pairs}
        found = [v for v in free_inputs(graph + [u for _, u in pairs])
                 if isinstance(v, SharedVariable) and v.default_update is not None and id(v) not in explicit]
        if not found:
            return pairs
        pairs += [(v, v.default_update) for v in found]
