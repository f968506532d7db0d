"""The benchmark suite: W1-W7, scanaot against its peers, each checked before it is timed.

    scanaot bench [--short] [--plot]          # runs this file and prints the table
    pytest -m benchmark tests/benchmarks/test_suite.py
"""
import pytest

from scanaot.tools import bench

pytestmark = pytest.mark.benchmark

CASES = [(w, impl) for w in bench.WORKLOADS for impl in w.implementations]


@pytest.mark.parametrize("workload, impl", CASES, ids=[f"{w.name}-{i}" for w, i in CASES])
def test_workload(benchmark, workload, impl):
    try:
        run = workload.implementations[impl]()
    except bench.Unavailable as why:
        pytest.skip(str(why))
    args = workload.data()
    bench.check(run(*args), workload.reference(*args), workload.rtol)
    benchmark.group = f"{workload.name} {workload.title}"
    benchmark.extra_info.update({"workload": workload.name, "implementation": impl})
    benchmark(run, *args)
