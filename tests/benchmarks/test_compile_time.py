"""Compile time of the guide's examples and of the suite's W8-W11 (LSTM, GRU, GRU gradient,
HMM), cold (an empty SCANAOT_CACHE) and from the cache (per-call overhead is W7 of the suite,
test_suite.py). The W8-W11 kernels are built at the suite's sizes (SCANAOT_BENCH_SIZE) for
the default portable library.

Run with `pytest -m benchmark tests/benchmarks/test_compile_time.py -s`.
"""
import time

import pytest

import scanaot
from scanaot.packaging.function import record_functions
from scanaot.tools import bench, guide_examples

pytestmark = pytest.mark.benchmark


def _cold_and_cached(name, inputs, outputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    start = time.perf_counter()
    scanaot.compile(inputs, outputs, name=name, out_dir=tmp_path / "cold")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    scanaot.compile(inputs, outputs, name=name, out_dir=tmp_path / "warm")
    cached = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ncompile {name}: cold {cold * 1000:.0f} ms, cached {cached * 1000:.1f} ms")
    assert cached < cold


@pytest.mark.parametrize("example", sorted(guide_examples.EXAMPLES))
def test_compile_time_cold_and_cached(example, tmp_path, monkeypatch, capsys):
    with record_functions() as made:
        guide_examples.run(example)
    spec = made[0].spec
    _cold_and_cached(example, spec.inputs, spec.outputs, tmp_path, monkeypatch, capsys)


SUITE = {"W8-lstm": bench.scanaot_lstm, "W8-lstm-four-matmul": bench.scanaot_lstm_four_matmul,
         "W9-gru": bench.scanaot_gru, "W10-gru-grad": bench.scanaot_gru_grad, "W11-hmm": bench.scanaot_hmm}


@pytest.mark.parametrize("workload", list(SUITE))
def test_suite_compile_time_cold_and_cached(workload, tmp_path, monkeypatch, capsys):
    name, inputs, outputs = SUITE[workload]()
    _cold_and_cached(name, inputs, outputs, tmp_path, monkeypatch, capsys)
