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
