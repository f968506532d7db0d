import os
import tempfile

import numpy as np
import pytest

# keep the compile cache inside the test session unless the caller chose one
os.environ.setdefault("SCANAOT_CACHE", os.path.join(tempfile.gettempdir(), "scanaot-test-cache"))

DTYPES = ["float32", "float64", "int32", "int64"]


@pytest.fixture(scope="module")
def float32_programs():
    """floatX=float32, as deployments set it (Aesara's default, and scanaot's, is
    float64): for tests whose programs and IR checks are written in float32."""
    from scanaot import config
    with config.change_flags(floatX="float32"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def sample(rng, shape, dtype):
    """Small values of `dtype` (ints stay small so products do not overflow)."""
    if dtype.startswith("float"):
        return rng.uniform(-1, 1, size=shape).astype(dtype)
    return rng.integers(-3, 4, size=shape).astype(dtype)


def assert_close(actual, expected, dtype=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype is not None:
        assert str(actual.dtype) == dtype, (actual.dtype, dtype)
    if actual.dtype.kind == "f":
        tol = 1e-4 if actual.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(actual, expected)


def numeric_grad(f, args, i, eps=1e-6):
    """Central finite differences of the scalar `f(*args)` with respect to args[i], in
    float64 (the other arguments are passed as they are)."""
    args = [np.array(a, dtype="float64", copy=True) if isinstance(a, (np.ndarray, float)) else a for a in args]
    x = args[i] = np.array(args[i], dtype="float64", copy=True)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = float(f(*args))
        x[idx] = old - eps
        minus = float(f(*args))
        x[idx] = old
        g[idx] = (plus - minus) / (2 * eps)
    return g


def check_grads(inputs, cost, args, wrt_positions=None, rtol=1e-5, atol=1e-7):
    """Compile `cost` and its gradients with respect to inputs[wrt_positions] (all by
    default), and compare each with finite differences."""
    import scanaot as aesara
    positions = list(range(len(inputs))) if wrt_positions is None else list(wrt_positions)
    f_cost = aesara.function(inputs, cost)
    got = aesara.function(inputs, aesara.grad(cost, [inputs[i] for i in positions]))(*args)
    for i, g in zip(positions, got):
        np.testing.assert_allclose(g, numeric_grad(f_cost, args, i), rtol=rtol, atol=atol,
                                   err_msg=f"gradient wrt input {i} ({inputs[i]})")
