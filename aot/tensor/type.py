"""Type constructors (`at.vector`, `at.dmatrix`, `at.tensor`, ...), as in
`aesara.tensor.type`."""
from __future__ import annotations

from typing import Callable, Sequence

from .. import config
from ..graph.basic import TensorType, Variable


def _make(dtype: str | None, ndim: int) -> Callable[..., Variable]:
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
