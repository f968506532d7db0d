"""Compile time of the guide's examples, cold and from the cache (per-call overhead is
W7 of the suite, test_suite.py).

Run with `pytest -m benchmark tests/benchmarks/test_compile_time.py -s`.
"""
import time

import pytest

import scanaot
from scanaot.packaging.function import record_functions
from scanaot.tools import guide_examples

pytestmark = pytest.mark.benchmark


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
