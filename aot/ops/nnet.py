"""Neural-network functions (Aesara's `aesara.tensor.nnet` and the softplus/logsumexp of
`aesara.tensor.math`), as compositions of elemwise and reduction ops.

No op of their own: each is a small graph, so emission, fusion and the VJP come from
the ops it is made of. Each is written in its numerically stable form (shifted by
the max, or through log1p(exp(-|x|))), so large |x| gives finite values and
finite gradients where the mathematical ones are finite.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import dtypes
from ..graph.basic import Variable, as_tensor_variable
from .creation import arange
from .elemwise import abs_, eq, exp, isinf, log, log1p, sigmoid, switch
from .reduction import _axes, max, sum  # noqa: A004
from .shape import dimshuffle, shape_i

__all__ = [  # the user functions scanaot.tensor exports
    "sigmoid", "softplus", "relu", "softmax", "log_softmax", "logsumexp", "binary_crossentropy",
    "categorical_crossentropy",
]


def _like(value: float, x: Variable) -> Any:
    """`value` as a constant of x's float dtype (a Python float would be floatX and round a
    float64 program's constants); for integer x, the Python float (Aesara's typing)."""
    return np.asarray(value, dtype=x.dtype) if x.dtype.startswith("float") else value


def softplus(x: Any) -> Variable:
    """log(1 + exp(x)), as log1p(exp(-|x|)) + max(x, 0): no overflow for large x; the max
    is written (x + |x|) / 2 so the gradient at 0 is sigmoid(0) = 1/2."""
    x = as_tensor_variable(x)
    return log1p(exp(-abs_(x))) + (x + abs_(x)) * _like(0.5, x)


def relu(x: Any, alpha: Any = 0) -> Variable:
    """Aesara's relu: max(x, 0) for alpha = 0, else the leaky max(x, alpha * x), both
    written with abs as Aesara does (so the gradient at 0 is (1 + alpha) / 2)."""
    x = as_tensor_variable(x)
    if isinstance(alpha, (int, float)) and alpha == 0:
        return (x + abs_(x)) * _like(0.5, x)
    if isinstance(alpha, (int, float)):
        return x * _like(0.5 * (1 + alpha), x) + abs_(x) * _like(0.5 * (1 - alpha), x)
    alpha = as_tensor_variable(alpha)
    return (1 + alpha) * 0.5 * x + (1 - alpha) * 0.5 * abs_(x)


def _shifted(x: Variable, axis: Any) -> Variable:
    """x minus its max along `axis` (kept as broadcast dims); an all -inf slice is not
    shifted, so it gives -inf rather than nan (inf - inf)."""
    m = max(x, axis, keepdims=True)
    return x - switch(isinf(m), 0, m)


def _check_axis(fn: str, x: Variable, axis: Any) -> None:
    if x.ndim == 0:
        raise TypeError(f"{fn}: x must have at least one dimension, got {x.describe()}")
    if axis is not None and not isinstance(axis, (int, np.integer, tuple, list)):
        raise TypeError(f"{fn}: axis must be an int, a tuple of ints or None, got {axis!r}")


def softmax(x: Any, axis: Any = -1) -> Variable:
    """exp(x) / sum(exp(x)) along `axis` (Aesara 2.9's default, -1), shifted by the max."""
    x = as_tensor_variable(x)
    _check_axis("softmax", x, axis)
    e = exp(_shifted(x, axis))
    return e / sum(e, axis, keepdims=True)


def log_softmax(x: Any, axis: Any = -1) -> Variable:
    """log(softmax(x)) as x - max - log(sum(exp(x - max))): finite for large |x|."""
    x = as_tensor_variable(x)
    _check_axis("log_softmax", x, axis)
    s = _shifted(x, axis)
    return s - log(sum(exp(s), axis, keepdims=True))


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    """log(sum(exp(x), axis)) (Aesara's `at.logsumexp`), computed as max + log(sum(exp(x - max)))."""
    x = as_tensor_variable(x)
    if axis is not None and not isinstance(axis, (int, np.integer, tuple, list)):
        raise TypeError(f"logsumexp: axis must be an int, a tuple of ints or None, got {axis!r}")
    m = max(x, axis, keepdims=True)
    m = switch(isinf(m), 0, m)
    out = log(sum(exp(x - m), axis, keepdims=True)) + m
    if keepdims:
        return out
    reduced = _axes(x, axis)
    return dimshuffle(out, *[a for a in range(x.ndim) if a not in reduced])


def binary_crossentropy(output: Any, target: Any) -> Variable:
    """-(target * log(output) + (1 - target) * log(1 - output)), elementwise, as Aesara."""
    output, target = as_tensor_variable(output), as_tensor_variable(target)
    return -(target * log(output) + (1.0 - target) * log(1.0 - output))


def categorical_crossentropy(coding_dist: Any, true_dist: Any) -> Variable:
    """-sum(true_dist * log(coding_dist)) over the last axis, as Aesara. true_dist is a
    probability (or one-hot) tensor of coding_dist's rank, or an int vector of class
    indices for a matrix coding_dist: then -log(coding_dist[i, true_dist[i]]), taken
    through a one-hot mask (log of 1 elsewhere, so zero probabilities of the other
    classes give no nan, neither in the value nor in the gradient)."""
    coding_dist, true_dist = as_tensor_variable(coding_dist), as_tensor_variable(true_dist)
    if coding_dist.ndim == 0:
        raise TypeError(f"categorical_crossentropy: coding_dist must have at least one dimension, "
                        f"got {coding_dist.describe()}")
    if true_dist.ndim == coding_dist.ndim:
        return -sum(true_dist * log(coding_dist), axis=coding_dist.ndim - 1)
    if coding_dist.ndim != 2 or true_dist.ndim != 1 or not dtypes.is_int(true_dist.dtype):
        raise TypeError("categorical_crossentropy: true_dist must have coding_dist's rank (probabilities), "
                        "or be an int vector of class indices for a matrix coding_dist; got coding_dist "
                        f"{coding_dist.describe()} and true_dist {true_dist.describe()}")
    classes = arange(shape_i(coding_dist, 1), dtype=true_dist.dtype)
    one_hot = eq(dimshuffle(true_dist, 0, "x"), dimshuffle(classes, "x", 0))
    return -sum(log(switch(one_hot, coding_dist, 1)), axis=1)
