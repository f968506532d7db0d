"""Per-call overhead of the runtime against a bare ctypes call of the same kernel, and
compile time of the guide's examples, cold and from the cache.

Run with `pytest -m benchmark tests/benchmarks`.
"""
import ctypes
import time

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.compiled import record_functions
from scanaot.runtime.memref import descriptor_for
from scanaot.tools import guide_examples

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    x = at.fvector("x")
    out, _ = scanaot.scan(lambda v: v * 2, outputs_info=x, n_steps=1)
    art = scanaot.compile([x], out[-1], name="tiny", out_dir=tmp_path_factory.mktemp("tiny"))
    return rt.load(art.library)


@pytest.mark.benchmark(group="call overhead (length-4 one-step scan)")
def test_runtime_call(benchmark, tiny):
    x = np.arange(4, dtype="float32")
    out = benchmark(tiny.tiny, x)
    np.testing.assert_array_equal(out, x * 2)


@pytest.mark.benchmark(group="call overhead (length-4 one-step scan)")
def test_runtime_call_with_out(benchmark, tiny):
    x = np.arange(4, dtype="float32")
    out = [np.empty(4, "float32")]
    benchmark(tiny.tiny, x, out=out)
    np.testing.assert_array_equal(out[0], x * 2)


@pytest.mark.benchmark(group="call overhead (length-4 one-step scan)")
def test_bare_ctypes_call(benchmark, tiny):
    x = np.arange(4, dtype="float32")
    out, dims = np.empty(4, "float32"), np.empty(1, "int64")
    fn = getattr(tiny._handle, "_mlir_ciface_tiny")
    fn.restype = ctypes.c_int32
    descs = [ctypes.byref(descriptor_for(a)) for a in (x, out, dims)]
    status = benchmark(fn, *descs)
    assert status == 0
    np.testing.assert_array_equal(out, x * 2)


@pytest.mark.parametrize("example", sorted(guide_examples.EXAMPLES))
def test_compile_time_cold_and_cached(example, tmp_path, monkeypatch, capsys):
    with record_functions() as made:
        guide_examples.run(example)
    spec = made[0].spec
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    start = time.perf_counter()
    scanaot.compile(spec.inputs, spec.outputs, name=example, out_dir=tmp_path / "cold")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    scanaot.compile(spec.inputs, spec.outputs, name=example, out_dir=tmp_path / "warm")
    cached = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ncompile {example}: cold {cold * 1000:.0f} ms, cached {cached * 1000:.1f} ms")
    assert cached < cold
