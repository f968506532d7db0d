"""W4's RNN (hidden 256, input 64, float32) as batch inference over 8192 sequences with
scanaot.dask on a distributed LocalCluster: 1 worker against 2 (one thread each), the
overhead per task and the bytes each worker receives. The figures are in docs/scale-out.md.

    pytest -m benchmark tests/benchmarks/test_dask_scale_out.py -s
    SCANAOT_BENCH_SIZE=short pytest -m benchmark tests/benchmarks/test_dask_scale_out.py   # correctness only

T is 128 steps rather than W4's 1000 so that a round takes seconds; a task's work is
proportional to T, so a longer T only makes the per-task overhead matter less.
"""
import os
import pickle
import time

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
from scanaot.tools import bench

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
sd = pytest.importorskip("scanaot.dask")

pytestmark = pytest.mark.benchmark

SHORT = os.environ.get("SCANAOT_BENCH_SIZE", "full") == "short"
T, B, H, I, CHUNK = (4, 64, 16, 8, 16) if SHORT else (128, 8192, 256, 64, 512)
ROUNDS = 1 if SHORT else 3
AXES = {0: 1, 1: 0}


@pytest.fixture(scope="module")
def rnn(tmp_path_factory):
    inputs, hs = bench._rnn_graph()
    return rt.load(scanaot.compile(inputs, hs, name="rnn", out_dir=tmp_path_factory.mktemp("rnn")).library).rnn


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T, B, I)).astype("float32") * 0.1, np.zeros((B, H), "float32"),
            (rng.standard_normal((H, H)) / np.sqrt(H)).astype("float32"),
            (rng.standard_normal((I, H)) / np.sqrt(I)).astype("float32"), np.zeros(H, "float32"))


def count_receptions():
    """On a worker: count the copies of a library it unpickles (each lookup of its digest)."""
    from scanaot.runtime import library

    class Counted(dict):
        received = 0

        def get(self, key, default=None):
            Counted.received += 1
            return super().get(key, default)
    library._unpickled = Counted(library._unpickled)


def receptions():
    """The copies counted since the last call (and start counting again)."""
    from scanaot.runtime import library
    counted = type(library._unpickled)
    received, counted.received = counted.received, 0
    return received


def timed(client, states) -> float:
    """Seconds to run the RNN on the cluster and bring back one score per sequence (the
    sum of its states: the states themselves stay on the workers)."""
    start = time.perf_counter()
    client.compute(states.sum(axis=(0, 2))).result(timeout=120)
    return time.perf_counter() - start


def run_on(n_workers: int, rnn, x, h0, W, U, b) -> dict:
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster, timeout=30) as client:
        client.run(count_receptions)
        # the sequences already live on the cluster (as they would be read there)
        X, H0 = client.persist([da.from_array(x, chunks=(-1, CHUNK, -1)), da.from_array(h0, chunks=(CHUNK, -1))])
        distributed.wait([X, H0], timeout=60)
        hs = sd.map_batches(rnn, X, H0, W, U, b, batch_axis=AXES)
        first, last = client.compute([hs[:, :CHUNK], hs[:, -CHUNK:]], sync=True)
        np.testing.assert_array_equal(first, rnn(np.ascontiguousarray(x[:, :CHUNK]), h0[:CHUNK], W, U, b))
        np.testing.assert_array_equal(last, rnn(np.ascontiguousarray(x[:, -CHUNK:]), h0[-CHUNK:], W, U, b))
        client.run(receptions)
        seconds = [timed(client, hs)]
        copies = sorted(client.run(receptions).values())  # in one computation of B // CHUNK tasks
        seconds = min(seconds + [timed(client, hs) for _ in range(ROUNDS - 1)])
        # the overhead of a chunk (its kernel task, its output, its partial sum): 256 chunks
        # of one sequence and one step each, whose kernel calls take microseconds
        tiny_x, tiny_h0 = client.persist([da.from_array(x[:1, :256], chunks=(1, 1, -1)),
                                          da.from_array(h0[:256], chunks=(1, -1))])
        distributed.wait([tiny_x, tiny_h0], timeout=60)
        tiny = sd.map_batches(rnn, tiny_x, tiny_h0, W, U, b, batch_axis=AXES)
        tiny_seconds = min(timed(client, tiny) for _ in range(ROUNDS))
        return {"seconds": seconds, "sequences_per_s": B / seconds,
                "task_overhead_ms": tiny_seconds * n_workers / 256 * 1e3,
                "library_copies_per_worker": copies}


def test_w4_batch_inference_one_vs_two_workers(benchmark, rnn):
    args = data()
    one = run_on(1, rnn, *args)
    two = benchmark.pedantic(run_on, args=(2, rnn, *args), rounds=1, iterations=1)
    library_bytes = len(pickle.dumps(rnn))
    weights_bytes = sum(a.nbytes for a in args[2:])
    figures = {"T": T, "B": B, "H": H, "I": I, "chunk": CHUNK, "tasks": B // CHUNK,
               "one_worker_s": one["seconds"], "two_workers_s": two["seconds"],
               "speedup": one["seconds"] / two["seconds"],
               "sequences_per_s": [one["sequences_per_s"], two["sequences_per_s"]],
               "task_overhead_ms": [one["task_overhead_ms"], two["task_overhead_ms"]],
               "library_copies_per_worker": two["library_copies_per_worker"],
               "library_bytes": library_bytes, "weights_bytes": weights_bytes}
    benchmark.group = "scale-out: W4 rnn batch inference (scanaot.dask)"
    benchmark.extra_info.update(figures)
    print("\n" + "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    assert all(copies <= 1 for copies in two["library_copies_per_worker"]), two
