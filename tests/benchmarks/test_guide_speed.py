"""Speed of the guide's loops against a plain numpy loop, side by side in one run.

Run with `pytest -m benchmark tests/benchmarks` (kept out of the default run).
"""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def triangular():
    up_to = at.iscalar("up_to")
    seq = at.arange(up_to)
    out, _ = aesara.scan(lambda v, s: s + v, outputs_info=at.as_tensor_variable(np.asarray(0, seq.dtype)),
                         sequences=seq)
    return aesara.function([up_to], out)


@pytest.fixture(scope="module")
def power():
    k, A = at.iscalar("k"), at.vector("A")
    result, _ = aesara.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    return aesara.function([A, k], result[-1])


def numpy_triangular(n):
    out = np.empty(n, dtype="int32")
    acc = np.int32(0)
    for i in range(n):
        acc = acc + np.int32(i)
        out[i] = acc
    return out


def numpy_power(a, k):
    result = np.ones_like(a)
    for _ in range(k):
        result = result * a
    return result


@pytest.mark.benchmark(group="triangular 1e6")
def test_triangular_scanaot(benchmark, triangular):
    out = benchmark(triangular, 10**6)
    np.testing.assert_array_equal(out[:5], [0, 1, 3, 6, 10])


@pytest.mark.benchmark(group="triangular 1e6")
def test_triangular_numpy_loop(benchmark):
    benchmark.pedantic(numpy_triangular, args=(10**6,), rounds=3, iterations=1)


A = np.linspace(0.99999, 1.00001, 1000, dtype="float32")  # no underflow to denormals


@pytest.mark.benchmark(group="power 1000x1e5")
def test_power_scanaot(benchmark, power):
    out = benchmark(power, A, 10**5)
    np.testing.assert_allclose(out, numpy_power(A, 10**5), rtol=1e-3)


@pytest.mark.benchmark(group="power 1000x1e5")
def test_power_numpy_loop(benchmark):
    benchmark.pedantic(numpy_power, args=(A, 10**5), rounds=3, iterations=1)
