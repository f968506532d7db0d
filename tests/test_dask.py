"""scanaot.dask: a kernel over dask arrays gives the one-process results, in threads and
on a real two-process distributed cluster whose workers have only the runtime."""
import os
import signal
import sys
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import scanaot  # noqa: E402
import scanaot.runtime as rt  # noqa: E402
import scanaot.tensor as at  # noqa: E402

sd = pytest.importorskip("scanaot.dask")

RNN_AXES = {0: 1, 1: 0}  # x (T, B, I): axis 1; h0 (B, H): axis 0


def rnn_graph():
    x, h0, W, U, b = at.dtensor3("x"), at.dmatrix("h0"), at.dmatrix("W"), at.dmatrix("U"), at.dvector("b")
    hs, _ = scanaot.scan(lambda xt, h, W, U, b: at.tanh(scanaot.dot(h, W) + scanaot.dot(xt, U) + b),
                         sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    return [x, h0, W, U, b], hs


@pytest.fixture(scope="module")
def rnn(tmp_path_factory):
    """The RNN (all states and the last one), with its gradient kernel, float64."""
    inputs, hs = rnn_graph()
    art = scanaot.compile(inputs, [hs, hs[-1]], name="rnn", grad_wrt=inputs[1:],
                          out_dir=tmp_path_factory.mktemp("rnn"))
    return rt.load(art.library).rnn


def rnn_data(T=5, B=11, H=6, I=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((H, H)) / np.sqrt(H),
            rng.standard_normal((I, H)), rng.standard_normal(H)]


def split(x, h0, batch_chunks):
    """x and h0 as dask arrays with the same (uneven) chunks along the batch."""
    return (da.from_array(x, chunks=(2, batch_chunks, -1)), da.from_array(h0, chunks=(batch_chunks, -1)))


# ---------------------------------------------------------------- threads (the default scheduler)
def test_map_batches_equals_one_process_with_uneven_chunks(rnn):
    x, h0, W, U, b = rnn_data()
    want = rnn(x, h0, W, U, b)
    X, H0 = split(x, h0, (4, 4, 3))
    hs, last = sd.map_batches(rnn, X, H0, W, U, b, batch_axis=RNN_AXES)
    # chunks and dtypes from the manifest, before anything runs
    assert hs.chunks == ((5,), (4, 4, 3), (6,)) and last.chunks == ((4, 4, 3), (6,))
    assert hs.dtype == last.dtype == np.float64 and isinstance(hs._meta, np.ndarray)
    got = dask.compute(hs, last, scheduler="threads")
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g, w)
    # an output is an ordinary dask array: slicing and reducing it stay lazy
    np.testing.assert_allclose(last[5:].sum(axis=0).compute(), want[1][5:].sum(axis=0), rtol=1e-12)


def test_map_batches_single_output_and_int_batch_axis(tmp_path):
    """batch_axis=0 for every dask argument; a single output is one array, not a tuple."""
    xs, k = at.dmatrix("xs"), at.iscalar("k")
    out, _ = scanaot.scan(lambda p, xs: p * xs, outputs_info=at.ones_like(xs), non_sequences=xs, n_steps=k)
    power = rt.load(scanaot.compile([xs, k], out[-1], name="power", out_dir=tmp_path).library).power
    values = np.arange(14.0).reshape(7, 2) / 7
    got = sd.map_batches(power, da.from_array(values, chunks=3), 3, batch_axis=0)
    assert got.chunks == ((3, 3, 1), (2,))
    np.testing.assert_array_equal(got.compute(), power(values, np.int32(3)))


def test_vjp_batches_equals_one_process_vjp(rnn):
    x, h0, W, U, b = rnn_data()
    hs, last = rnn(x, h0, W, U, b)
    rng = np.random.default_rng(1)
    cots = [rng.standard_normal(hs.shape), rng.standard_normal(last.shape)]
    want = rnn.vjp(x, h0, W, U, b, cotangents=cots)
    X, H0 = split(x, h0, (3, 1, 4, 3))
    grads = sd.vjp_batches(rnn, X, H0, W, U, b, cotangents=[da.from_array(cots[0], chunks=4), cots[1]],
                           batch_axis=RNN_AXES)
    assert [g.shape for g in grads] == [a.shape for a in (h0, W, U, b)]
    assert grads[0].chunks == ((3, 1, 4, 3), (6,))  # h0 is batched: its gradient is split like it
    got = dask.compute(*grads, scheduler="threads")
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):  # weights: the chunks' gradients added in a tree
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_vjp_batches_matches_finite_differences(rnn):
    x, h0, W, U, b = rnn_data(B=9)
    g = np.random.default_rng(2).standard_normal((x.shape[0],) + h0.shape)
    X, H0 = split(x, h0, (5, 4))
    cots = [g, np.zeros_like(h0)]
    _, gW, _, _ = dask.compute(*sd.vjp_batches(rnn, X, H0, W, U, b, cotangents=cots, batch_axis=RNN_AXES))
    loss = lambda W: float(np.sum(rnn(x, h0, W, U, b)[0] * g))  # noqa: E731
    eps = 1e-6
    for i, j in [(0, 0), (2, 5), (5, 1)]:
        step = np.zeros_like(W)
        step[i, j] = eps
        numeric = (loss(W + step) - loss(W - step)) / (2 * eps)
        assert gW[i, j] == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_errors_name_what_cannot_be_split(rnn, tmp_path):
    x, h0, W, U, b = rnn_data()
    X, H0 = split(x, h0, (4, 4, 3))
    with pytest.raises(sd.BatchError, match=r"batch chunks differ: x \(axis 1\) has \(4, 4, 3\), h0 \(axis 0\) "
                                            r"has \(6, 5\); rechunk them alike"):
        sd.map_batches(rnn, X, H0.rechunk({0: 6}), W, U, b, batch_axis=RNN_AXES)
    with pytest.raises(sd.BatchError, match="batch chunks differ: x"):
        sd.map_batches(rnn, X, H0, W, U, b, batch_axis=0)  # x's axis 0 is time
    with pytest.raises(sd.BatchError, match="no argument is a dask array"):
        sd.map_batches(rnn, x, h0, W, U, b)
    with pytest.raises(sd.BatchError, match=r"names argument 2 \(W\), which is not a dask array"):
        sd.map_batches(rnn, X, H0, W, U, b, batch_axis={0: 1, 1: 0, 2: 0})
    with pytest.raises(sd.BatchError, match=r"no axis for dask argument\(s\) 1 \(h0\)"):
        sd.map_batches(rnn, X, H0, W, U, b, batch_axis={0: 1})
    with pytest.raises(TypeError, match="takes 5 arguments"):
        sd.map_batches(rnn, X, H0, W, U, batch_axis=RNN_AXES)
    # an output with no batch axis: a reduction over the batch
    inputs, hs = rnn_graph()
    total = rt.load(scanaot.compile(inputs, hs[-1].sum(), name="total", out_dir=tmp_path).library).total
    with pytest.raises(sd.BatchError, match=r"total output 'out0' \(shape \[\]\) has no axis sized by a batched"):
        sd.map_batches(total, X, H0, W, U, b, batch_axis=RNN_AXES)


# ---------------------------------------------------------------- a real cluster: two worker processes
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_class=distributed.Nanny) as cluster, \
            distributed.Client(cluster, timeout=30) as client:
        client.wait_for_workers(2, timeout=30)
        yield client


def results(client, arrays, timeout=30):
    """The arrays computed on the cluster (a TimeoutError rather than a hang)."""
    futures = client.compute(list(arrays))
    distributed.wait(futures, timeout=timeout)
    return client.gather(futures)


def test_cluster_results_equal_one_process_and_the_library_travels_once_per_worker(rnn, client):
    def runtime_only():
        """On each worker: refuse the compiler, and count the libraries unpickled (bytes received)."""
        import importlib.abc

        class NoCompiler(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "mlir" or name.startswith("mlir."):
                    raise ImportError("this worker has only the scanaot runtime")
                return None
        sys.meta_path.insert(0, NoCompiler())
        from scanaot.runtime import library

        class Counted(dict):  # each unpickled library looks itself up here once: one per copy received
            received = 0

            def get(self, key, default=None):
                Counted.received += 1
                return super().get(key, default)
        library._unpickled = Counted(library._unpickled)

    def report():
        from scanaot.runtime import library
        return {"received": type(library._unpickled).received, "mlir": any(m.split(".")[0] == "mlir" for m in sys.modules)}

    client.run(runtime_only)
    x, h0, W, U, b = rnn_data(T=7, B=40)
    want = rnn(x, h0, W, U, b)
    X, H0 = split(x, h0, (5, 7, 3, 9, 6, 4, 6))
    hs, last = sd.map_batches(rnn, X, H0, W, U, b, batch_axis=RNN_AXES)
    got = results(client, [hs, last])
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g, w)
    reports = client.run(report)
    for worker, seen in reports.items():
        assert not seen["mlir"], worker
        assert seen["received"] <= 1, f"{worker} received the library {seen['received']} times for 7 tasks"
    assert sum(seen["received"] for seen in reports.values()) >= 1
    # the gradient on the cluster too
    cots = [np.ones_like(want[0]), np.zeros_like(want[1])]
    grads = results(client, sd.vjp_batches(rnn, X, H0, W, U, b, cotangents=cots, batch_axis=RNN_AXES))
    for g, w in zip(grads, rnn.vjp(x, h0, W, U, b, cotangents=cots)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_cluster_job_survives_a_killed_worker(rnn, client):
    x, h0, W, U, b = rnn_data(T=7, B=48, seed=3)
    want = rnn(x, h0, W, U, b)
    # the inputs arrive slowly (0.15 s a chunk), so the job is still running when a worker dies
    slow = lambda block: (time.sleep(0.15), block)[1]  # noqa: E731
    X = da.from_array(x, chunks=(-1, 4, -1)).map_blocks(slow, dtype=x.dtype)
    H0 = da.from_array(h0, chunks=(4, -1))
    hs, _ = sd.map_batches(rnn, X, H0, W, U, b, batch_axis=RNN_AXES)
    hs = client.persist(hs)
    futures = distributed.futures_of(hs)
    deadline = time.monotonic() + 20
    while sum(f.done() for f in futures) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not all(f.done() for f in futures), "the job finished before a worker could be killed"
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    np.testing.assert_array_equal(results(client, [hs], timeout=40)[0],
                                  want[0])
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it


@pytest.fixture(scope="module")
def odd_kernels(tmp_path_factory):
    """An outer product (the batch on two axes), a kernel with an int output and a
    gradient, and a power with a scalar argument."""
    v, x, xs, k = at.dvector("v"), at.dvector("x"), at.dmatrix("xs"), at.iscalar("k")
    out = tmp_path_factory.mktemp("odd")
    outer = scanaot.compile([v], v.dimshuffle(0, "x") * v.dimshuffle("x", 0), name="outer", out_dir=out)
    intout = scanaot.compile([x], [x * 2.0, at.cast(x > 0, "int32")], name="intout", out_dir=out, grad_wrt=[x])
    p, _ = scanaot.scan(lambda acc, xs: acc * xs, outputs_info=at.ones_like(xs), non_sequences=xs, n_steps=k)
    power = scanaot.compile([xs, k], p[-1], name="power", out_dir=out)
    return {n: rt.load(a.library)[n] for n, a in (("outer", outer), ("intout", intout), ("power", power))}


def test_an_output_sized_by_the_batch_twice_is_refused(odd_kernels):
    with pytest.raises(sd.BatchError, match="sized by the batch on more than one axis"):
        sd.map_batches(odd_kernels["outer"], da.from_array(np.arange(6.0), chunks=3))


def test_vjp_batches_takes_one_cotangent_per_float_output(odd_kernels):
    kernel, x = odd_kernels["intout"], np.random.default_rng(3).standard_normal(8)
    X = da.from_array(x, chunks=3)
    want = kernel.vjp(x, cotangents=np.ones(8))
    for cots in (np.ones(8), [np.ones(8)], {"out0": np.ones(8)}, [da.ones(8, chunks=5)]):
        (got,) = dask.compute(sd.vjp_batches(kernel, X, cotangents=cots))
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="missing 'out0'"):
        sd.vjp_batches(kernel, X, cotangents={})
    with pytest.raises(TypeError, match="expected 1 cotangent"):
        sd.vjp_batches(kernel, X, cotangents=[np.ones(8), np.zeros(8, "int32")])
    with pytest.raises(TypeError, match="must be an array of float64, got complex128"):
        sd.vjp_batches(kernel, X, cotangents=np.ones(8, "complex128"))


def test_whole_scalar_arguments_and_early_argument_checks(odd_kernels):
    kernel = odd_kernels["power"]
    xs = np.random.default_rng(4).standard_normal((9, 2))
    XS = da.from_array(xs, chunks=4)
    np.testing.assert_allclose(sd.map_batches(kernel, XS, np.array(3, "int32")).compute(), xs ** 3)
    with pytest.raises(TypeError, match="argument 0 \\(xs\\) must be float64 with 2 dims, got float32"):
        sd.map_batches(kernel, XS.astype("float32"), 3)
    with pytest.raises(TypeError, match="must be float64 with 2 dims, got float64 with 1"):
        sd.map_batches(kernel, da.from_array(xs[:, 0], chunks=4), 3)
    for bad in ({0: "0"}, {0: 0.5}, {0: None}, True, {True: 0}):
        with pytest.raises((TypeError, sd.BatchError), match="batch_axis"):
            sd.map_batches(kernel, XS, 3, batch_axis=bad)
