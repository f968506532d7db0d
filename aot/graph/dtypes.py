"""Aesara's dtype rules: which dtypes exist, how they upcast, and Python-literal typing."""
from __future__ import annotations

import numpy as np

from .. import config

SUPPORTED = ("bool", "int8", "int16", "int32", "int64", "float32", "float64")
INTS = ("int8", "int16", "int32", "int64")
FLOATS = ("float32", "float64")


def check(dtype: object) -> str:
    """Normalise a dtype spelling; refuse the ones scanaot cannot compile."""
    if dtype == "floatX":
        dtype = config.floatX
    if isinstance(dtype, str) and dtype in SUPPORTED:
        return dtype  # the common case, without numpy's (slow) dtype naming
    try:
        name = str(np.dtype(dtype))
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {', '.join(SUPPORTED)}") from None
    if name not in SUPPORTED:
        raise TypeError(f"dtype {name} is not supported; expected one of {', '.join(SUPPORTED)}")
    return name


def upcast(*names: str) -> str:
    """The dtype of an elementwise result: numpy's promotion of 0-d arrays (Aesara's rule)."""
    return str(np.result_type(*[np.dtype(n) for n in names]))


def upgrade_to_float(name: str) -> str:
    """Aesara's rule for ops that produce floats (`/`, tanh, exp...) from integers."""
    if name in FLOATS:
        return name
    return "float32" if name in ("bool", "int8", "int16") else "float64"


def is_float(name: str) -> bool:
    return name in FLOATS


def is_int(name: str) -> bool:
    return name in INTS


def literal_array(value: object, dtype: str | None = None) -> np.ndarray:
    """A Python or numpy value as an array with Aesara's typing of literals.

    Python ints get the narrowest signed int that holds them (`0` is int8), Python
    floats `float_literal_dtype`, bools are bool; numpy values keep their dtype;
    lists get numpy's dtype (Aesara 2.9's rules).
    """
    if dtype is not None:
        return np.asarray(value, dtype=check(dtype))
    if isinstance(value, (np.ndarray, np.generic)):  # before float: np.float64 is a float
        arr = np.asarray(value)
        if arr.dtype.kind == "u":
            return _widen_unsigned(arr)
        check(arr.dtype)
        return arr
    if isinstance(value, bool):
        return np.asarray(value, dtype="bool")
    if isinstance(value, int):
        for name in INTS:
            info = np.iinfo(name)
            if info.min <= value <= info.max:
                return np.asarray(value, dtype=name)
        raise OverflowError(f"integer {value} does not fit in int64")
    if isinstance(value, float):
        return np.asarray(value, dtype=float_literal_dtype(value))
    # Python lists and tuples: numpy's dtype (int64, float64, bool), as Aesara's
    # constant(); an empty one is floatX
    arr = np.asarray(value)
    if arr.size == 0 and arr.dtype == np.float64:
        return arr.astype(config.floatX)
    if arr.dtype.kind == "u":
        return _widen_unsigned(arr)
    check(arr.dtype)
    return arr


def float_literal_dtype(value: float) -> str:
    """Aesara's "custom" cast policy for a Python float: floatX when that is float32;
    with floatX float64, float32 where it holds the value exactly (`fvector * 0.5`
    stays float32), else float64 (`fvector * 0.1` is float64, as in Aesara)."""
    if config.floatX == "float32":
        return "float32"
    return "float32" if float(np.float32(value)) == value else "float64"


def _widen_unsigned(arr: np.ndarray) -> np.ndarray:
    """Unsigned values become the next wider signed type (scanaot has no unsigned dtypes)."""
    bigger = {1: "int16", 2: "int32", 4: "int64"}.get(arr.dtype.itemsize)
    if bigger is None:
        raise TypeError("uint64 values are not supported")
    return arr.astype(bigger)
