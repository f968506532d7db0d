"""`scanaot.tensor.random.basic`: Aesara's random variables as functions of an `rng`
(a stream state: an int64 shared vector `[key0, key1, counter]`, from `new_state`).

Each returns the sample; for the core draws (uniform, normal, bernoulli, integers,
binomial, poisson, gamma, beta) `sample.owner.outputs[0]` is the next state, as in
Aesara. choice, permutation and multivariate_normal are graphs over one core draw
on `rng` (`core_draw(sample, rng)` finds it).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ... import config
from ...graph import dtypes
from ...graph.basic import Variable, as_tensor_variable, toposort
from ...graph.shared import SharedVariable, shared
from ...ops.creation import arange, shape_scalars
from ...ops.elemwise import broadcast_pattern, cast, le, log, minimum, neg, true_div
from ...ops.linalg import tensordot
from ...ops.nlinalg import cholesky
from ...ops.random import RandomVariable, random_variable
from ...ops.reduction import argsort, cumsum
from ...ops.reduction import sum as sum_
from ...ops.shape import dimshuffle, flatten, reshape, shape_i, take

__all__ = ["uniform", "normal", "bernoulli", "integers", "binomial", "poisson", "gamma", "beta",
           "choice", "permutation", "multivariate_normal", "new_state"]

def state_value(seed: int | None, draw: int = 0) -> np.ndarray:
    """A stream state `[key0, key1, 0]`: the key from numpy's SeedSequence(seed) with
    spawn key (draw,), so every draw of a stream gets its own key (deterministic in
    seed; a fresh one from the OS when seed is None)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(draw,))
    key = sequence.generate_state(2, np.uint32).astype(np.int64)
    return np.array([key[0], key[1], 0], dtype=np.int64)


def new_state(seed: int | None = None, draw: int = 0, name: str | None = None) -> SharedVariable:
    """A shared stream state for `rng=` (see `state_value`)."""
    return shared(state_value(seed, draw), name=name)


def _rng(rng: Variable | None, what: str) -> Variable:
    if rng is None:
        return new_state()
    if not isinstance(rng, Variable) or rng.dtype != "int64" or rng.ndim != 1:
        raise TypeError(f"{what}: rng must be a stream state (an int64 shared vector from new_state or "
                        f"RandomStream), got {rng!r}")
    return rng


def _size(size: Any, what: str) -> list[Any] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) or (isinstance(size, Variable) and size.ndim == 0):
        return [size]
    if isinstance(size, Variable):  # a vector known when tracing, such as x.shape
        return shape_scalars(size, what, "size")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{what}: size must be None, an int or a tuple, got {type(size).__name__}")
    for i, s in enumerate(size):
        if isinstance(s, (int, np.integer)) and s < 0:
            raise ValueError(f"{what}: size[{i}] must be >= 0, got {s}")
    return list(size)


def _shape_of(params: list[Variable], size: list[Any] | None, what: str) -> tuple[list[Any], list[bool]]:
    """Aesara's rule: the size when given (static 1s broadcast), else the parameters'
    broadcast shape."""
    if size is not None:
        for i, p in enumerate(params):
            if p.ndim > len(size):
                raise ValueError(f"{what}: parameter {i} ({p.describe()}) has more dims than size {tuple(size)}")
        return size, [isinstance(s, (int, np.integer)) and s == 1 for s in size]
    if not params:
        return [], []
    bcast = list(broadcast_pattern([p.type for p in params]))
    ndim = len(bcast)
    dims: list[Any] = []
    for axis in range(ndim):
        owner = [p for p in params if axis - (ndim - p.ndim) >= 0 and not p.broadcastable[axis - (ndim - p.ndim)]]
        dims.append(shape_i(owner[0], axis - (ndim - owner[0].ndim)) if owner else 1)
    return dims, bcast


def _dtype(dtype: str | None, kind: str, what: str) -> str:
    if dtype is None:
        return config.floatX if kind == "float" else "int64"
    dtype = dtypes.check(dtype)
    # counts may be stored as floats (Aesara's RBM samples binomial(..., dtype=floatX))
    if (kind == "float" and not dtypes.is_float(dtype)) or dtype == "bool":
        raise TypeError(f"{what}: dtype must be a {'float' if kind == 'float' else 'numeric'} dtype, got {dtype}")
    return dtype


def draw(distribution: str, params: Sequence[Any], size: Any, rng: Variable | None, dtype: str | None,
         kind: str) -> Variable:
    """The sample of one core draw (its node's first output is the next state)."""
    params = [as_tensor_variable(p) for p in params]
    shape, bcast = _shape_of(params, _size(size, distribution), distribution)
    out_dtype = _dtype(dtype, kind, distribution)
    return random_variable(distribution, _rng(rng, distribution), shape, bcast, params, out_dtype)[1]


def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None, rng: Variable | None = None,
            dtype: str | None = None) -> Variable:
    """Uniform on [low, high) (floatX)."""
    return draw("uniform", [low, high], size, rng, dtype, "float")


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None, rng: Variable | None = None,
           dtype: str | None = None) -> Variable:
    """Normal(loc, scale) by Box-Muller (floatX)."""
    return draw("normal", [loc, scale], size, rng, dtype, "float")


def bernoulli(p: Any, size: Any = None, rng: Variable | None = None, dtype: str | None = None) -> Variable:
    """1 with probability p, else 0 (int64)."""
    return draw("bernoulli", [p], size, rng, dtype, "int")


def integers(low: Any, high: Any = None, size: Any = None, rng: Variable | None = None,
             dtype: str | None = None) -> Variable:
    """Integers in [low, high), or [0, low) without high (int64; Lemire's method)."""
    if high is None:
        low, high = 0, low
    return draw("integers", [low, high], size, rng, dtype, "int")


def binomial(n: Any, p: Any, size: Any = None, rng: Variable | None = None, dtype: str | None = None) -> Variable:
    """Successes in n trials of probability p (int64; inversion, at most n steps)."""
    return draw("binomial", [n, p], size, rng, dtype, "int")


def poisson(lam: Any = 1.0, size: Any = None, rng: Variable | None = None, dtype: str | None = None) -> Variable:
    """Poisson(lam) (int64; inversion below lam = 10, PTRS above)."""
    return draw("poisson", [lam], size, rng, dtype, "int")


def gamma(shape: Any, rate: Any, size: Any = None, rng: Variable | None = None,
          dtype: str | None = None) -> Variable:
    """Gamma with `shape` and `rate` (Aesara 2.9's parameters: numpy's scale is 1 / rate)."""
    return draw("gamma", [shape, true_div(1.0, as_tensor_variable(rate))], size, rng, dtype, "float")


def beta(alpha: Any, beta: Any, size: Any = None, rng: Variable | None = None,
         dtype: str | None = None) -> Variable:
    """Beta(alpha, beta) as X / (X + Y) of two gammas (floatX)."""
    return draw("beta", [alpha, beta], size, rng, dtype, "float")


def _vector(a: Any) -> Variable:
    a = as_tensor_variable(a)
    if a.ndim == 0:
        return arange(a)
    return a


def _picked(a: Variable, index: Variable) -> Variable:
    """a[index] along a's first axis (index of any shape: take needs a vector)."""
    if index.ndim <= 1:
        return take(a, index, axis=0)
    rows = take(a, flatten(index), axis=0)
    shape = [shape_i(index, k) for k in range(index.ndim)] + [shape_i(a, k) for k in range(1, a.ndim)]
    return reshape(rows, shape)


def choice(a: Any, size: Any = None, replace: bool = True, p: Any = None, rng: Variable | None = None) -> Variable:
    """Elements of `a` (or of arange(a) for a scalar): with replacement by integers (or
    by the inverse CDF of `p`); without, the first entries of a random order (uniform
    keys, or exponential keys -log(u)/p: Efraimidis-Spirakis weighted sampling)."""
    a = _vector(a)
    shape = _size(size, "choice") or []
    n = shape_i(a, 0)
    if not isinstance(replace, (bool, np.bool_)):
        raise TypeError(f"choice: replace must be a Python bool, got {replace!r}")
    if replace:
        if p is None:
            return _picked(a, integers(0, n, size=shape, rng=rng))
        return _picked(a, _inverse_cdf(as_tensor_variable(p), shape, rng))
    keys = uniform(0.0, 1.0, size=(n,), rng=rng, dtype="float64")
    if p is not None:
        keys = true_div(neg(log(1.0 - keys)), as_tensor_variable(p))
    order = argsort(keys)
    if not shape:
        return _picked(a, order[0])
    count = shape[0]
    for extent in shape[1:]:
        count = count * extent
    return _picked(a, reshape(order[:count], shape))  # numpy: the first prod(size), laid out as size


def _inverse_cdf(p: Variable, shape: list[Any], rng: Variable | None) -> Variable:
    if p.ndim != 1:
        raise ValueError(f"choice: p must be a vector of probabilities, got {p.describe()}")
    cdf = cumsum(p)
    u = uniform(0.0, 1.0, size=shape, rng=rng, dtype="float64") * cdf[-1]
    expanded = dimshuffle(u, *range(len(shape)), "x")
    index = sum_(le(cdf, expanded), axis=-1)
    return minimum(index, shape_i(p, 0) - 1)


def permutation(x: Any, rng: Variable | None = None) -> Variable:
    """A random order of arange(x) (x a scalar: in x's dtype, as Aesara) or of x's rows
    (the argsort of uniform keys)."""
    x = as_tensor_variable(x)
    n = x if x.ndim == 0 else shape_i(x, 0)
    order = argsort(uniform(0.0, 1.0, size=(n,), rng=rng, dtype="float64"))
    return cast(order, x.dtype) if x.ndim == 0 else _picked(x, order)


def multivariate_normal(mean: Any = None, cov: Any = None, size: Any = None, rng: Variable | None = None,
                        dtype: str | None = None) -> Variable:
    """mean + z @ cholesky(cov).T with z standard normal of shape size + (d,)."""
    if mean is None or cov is None:
        raise TypeError("multivariate_normal: mean and cov are required")
    mean, cov = as_tensor_variable(mean), as_tensor_variable(cov)
    if mean.ndim != 1 or cov.ndim != 2:
        raise ValueError(f"multivariate_normal: expected mean to be a vector and cov a matrix, got "
                         f"{mean.describe()} and {cov.describe()}")
    shape = (_size(size, "multivariate_normal") or []) + [shape_i(mean, 0)]
    z = normal(0.0, 1.0, size=shape, rng=rng, dtype=dtype)
    low = cast(cholesky(cov), z.dtype)
    return cast(mean, z.dtype) + tensordot(z, low, axes=[[z.ndim - 1], [1]])


def core_draw(sample: Variable, rng: Variable) -> Variable:
    """The next state of the draw on `rng` that `sample` is made from."""
    for node in toposort([sample]):
        if isinstance(node.op, RandomVariable) and node.inputs[0] is rng:
            return node.outputs[0]
    raise ValueError(f"no random draw on {rng!r} is part of this sample")

