"""Bad input to a kernel call gets an error naming the argument (or output) and what was
expected; no bare ValueError/MemoryError/TypeError from inside scanaot. `until` loops
use memory for the steps they ran, not for their n_steps bound."""
import tracemalloc

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.runtime import kernel as rt_library

BIG = 10 ** 12


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("errors")


@pytest.fixture(scope="module")
def scale(out_dir):
    """scale(x, k) = x * k and a plain scan of k steps (outputs sized by k)."""
    x, k = at.fvector("x"), at.lscalar("k")
    rows, _ = scanaot.scan(lambda acc: acc + x, outputs_info=at.zeros_like(x), n_steps=k, name="rows")
    fn = scanaot.function([x, k], [x * k, rows])
    return fn, rt.load(scanaot.compile([x, k], [x * k, rows], name="scale", out_dir=out_dir).library).scale


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.5, -0.5])
def test_a_float_for_an_integer_scalar_names_the_argument(scale, bad):
    fn, kernel = scale
    x = np.ones(3, "float32")
    with pytest.raises(rt.ArgumentError, match=r"argument 'k'.*int64"):
        kernel(x, bad)
    with pytest.raises(rt.ArgumentError, match=r"argument 'k'.*int64"):
        kernel(x=x, k=bad)
    with pytest.raises(TypeError, match=r"argument 1 \('k'\).*int64"):
        fn(x, bad)


def test_a_huge_n_steps_names_the_output_its_shape_and_the_argument(scale):
    fn, kernel = scale
    x = np.ones(3, "float32")
    for call in (lambda: kernel(x, BIG), lambda: kernel.call_checked(x, BIG), lambda: fn(x, BIG)):
        with pytest.raises(rt_library.OutputTooLarge, match=r"output 'rows'.*\(1000000000000, 3\).*\[k, x.shape\[0\]\]"
                                                           r".*argument\(s\) k, x") as err:
            call()
        assert isinstance(err.value, MemoryError) and isinstance(err.value, rt.ShapeError)


def doubling(limit_name="m"):
    s0, m, n = at.fscalar("s0"), at.fscalar(limit_name), at.lscalar("n")
    vals, _ = scanaot.scan(lambda p, m: (p * 2, scanaot.scan.utils.until(p * 2 > m)),
                           outputs_info=s0, non_sequences=m, n_steps=n, name="dbl")
    return [s0, m, n], vals


def counting_reference(a, b, limit, n):
    """The until loop below in Python: Fibonacci-like pairs and a collected running count."""
    state, counts = [a, b], []
    for t in range(n):
        new = np.float32(state[-1] + state[-2] * np.float32(0.5))
        state.append(new)
        counts.append(np.float32(t + 1))
        if new > limit:
            break
    return np.array(state[2:], "float32"), np.array(counts, "float32")


@pytest.fixture(scope="module")
def two_outputs(out_dir):
    """A state with taps [-2, -1] and a second output, stopped by until."""
    init, lim, n = at.fvector("init"), at.fscalar("lim"), at.lscalar("n")

    def step(prev2, prev1, count, lim):
        new = prev1 + prev2 * np.float32(0.5)
        return [new, count + 1], scanaot.scan.utils.until(new > lim)
    (vals, counts), _ = scanaot.scan(step, outputs_info=[{"initial": init, "taps": [-2, -1]}, at.constant(np.float32(0))],
                                     non_sequences=lim, n_steps=n, name="pairs")
    inputs = [init, lim, n]
    fn = scanaot.function(inputs, [vals, counts])
    lib = rt.load(scanaot.compile(inputs, [vals, counts], name="pairs", out_dir=out_dir).library)
    return fn, lib.pairs


@pytest.mark.parametrize("limit, n", [(50.0, 10), (50.0, 3), (50.0, 0), (1e6, BIG), (1e30, 1000), (1e30, 300)])
def test_until_results_match_the_reference(two_outputs, limit, n):
    fn, kernel = two_outputs
    init = np.array([1, 1], "float32")
    want = counting_reference(np.float32(1), np.float32(1), np.float32(limit), min(n, 10 ** 4))
    for got in (fn(init, np.float32(limit), n), kernel(init, np.float32(limit), n),
                kernel.call_checked(init, np.float32(limit), n)):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_until_memory_follows_the_steps_run_not_the_bound(out_dir):
    inputs, vals = doubling()
    fn = scanaot.function(inputs, vals)
    kernel = rt.load(scanaot.compile(inputs, vals, name="dbl", out_dir=out_dir).library).dbl
    for call in (lambda: fn(1.0, 45.0, BIG), lambda: kernel(np.float32(1), np.float32(45), BIG),
                 lambda: kernel.call_checked(np.float32(1), np.float32(45), BIG)):
        tracemalloc.start()
        got = call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_array_equal(got, [2, 4, 8, 16, 32, 64])
        assert peak < 64 * 1024
        assert got.base is None or got.base.nbytes <= rt_library.FIRST_CAPACITY * 4
    # 2**126 > 1e38: 126 steps; a state running past the first capacity grows it
    long = kernel(np.float32(1), np.float32(np.finfo("float32").max), BIG)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(long, 2.0 ** np.arange(1, 129, dtype="float32"))


def test_until_capacity_grows_past_the_first_buffer(two_outputs):
    fn, kernel = two_outputs
    init = np.array([1, 1], "float32")
    # counting with lim = inf never stops: every one of n steps runs (3 capacity doublings)
    got = kernel(init, np.float32(np.inf), 2000)
    assert got[0].shape == (2000,) and got[1][-1] == 2000


def test_gradient_kernel_of_an_until_loop(out_dir):
    inputs, vals = doubling()
    total = (vals * vals).sum()
    lib = rt.load(scanaot.compile(inputs, [vals, total], name="dblg", grad_wrt=[inputs[0]], out_dir=out_dir).library)
    for n in (3, 10, 1000):
        got = lib.dblg(np.float32(1.5), np.float32(45), n)
        steps = len(got[0])
        assert steps == min(n, 5)
        cot = np.ones(steps, "float32")
        grad = lib.dblg.vjp(np.float32(1.5), np.float32(45), n, cotangents=[cot, 1.0])
        k = np.arange(1, steps + 1)
        np.testing.assert_allclose(grad, (2.0 ** k).sum() + (2 * 1.5 * 4.0 ** k).sum(), rtol=1e-6)


@pytest.fixture(scope="module")
def sum_of_squares(out_dir):
    x = at.fvector("x")
    total = (x * x).sum()
    total.name = "total"
    return rt.load(scanaot.compile([x], [total], name="sq", grad_wrt=[x], out_dir=out_dir).library).sq


@pytest.mark.parametrize("cot", [1.0, 2, np.float32(1.0), np.float64(1.0), np.array(1.0, "float32")])
def test_a_scalar_cotangent_for_a_rank0_output(sum_of_squares, cot):
    x = np.arange(3, dtype="float32")
    np.testing.assert_allclose(sum_of_squares.vjp(x, cotangents=cot), 2 * x * float(cot))


def test_a_bad_cotangent_names_it(sum_of_squares):
    x = np.arange(3, dtype="float32")
    with pytest.raises(rt.ArgumentError, match="cotangents= must be.*cot_total.*got complex"):
        sum_of_squares.vjp(x, cotangents=1j)
    with pytest.raises(rt.ArgumentError, match="cotangents= must be.*cot_total.*got str"):
        sum_of_squares.vjp(x, cotangents="one")
    with pytest.raises(rt.ArgumentError, match="cotangent .cot_total. must be a float32 scalar"):
        sum_of_squares.vjp(x, cotangents=np.complex64(1j))
    with pytest.raises(rt.ArgumentError, match="expected 1 cotangent"):
        sum_of_squares.vjp(x, cotangents=[1.0, 2.0])


def test_a_scalar_cotangent_for_an_array_output_names_it(out_dir):
    x = at.fvector("x")
    y = x * 2
    y.name = "y"
    lib = rt.load(scanaot.compile([x], [y], name="twice", grad_wrt=[x], out_dir=out_dir).library)
    with pytest.raises(rt.ArgumentError, match="cotangent 'cot_y' must be a float32 array with 1 dims"):
        lib.twice.vjp(np.ones(3, "float32"), cotangents=1.0)


@pytest.fixture(scope="module")
def rnn():
    x, h0, W = at.fmatrix("x"), at.fvector("h0"), at.fmatrix("W")
    hs, _ = scanaot.scan(lambda xt, h, W: at.tanh(at.dot(W, h) + xt), sequences=x, outputs_info=h0,
                         non_sequences=W, name="rnn")
    return scanaot.function([x, h0, W], hs)


def test_a_failed_check_in_a_scan_step_names_the_op_the_scan_and_the_variables(rnn):
    with pytest.raises(rt.StatusError, match=r"incompatible shapes.*first failing check: scan 'rnn', in its step: "
                                             r"Dot of 'W' \(float32, ndim=2\), 'h0\[t-1\]'"):
        rnn(np.ones((3, 2), "float32"), np.ones(2, "float32"), np.eye(3, dtype="float32"))
    assert rnn(np.ones((3, 2), "float32"), np.ones(2, "float32"), np.eye(2, dtype="float32")).shape == (3, 2)


def test_an_index_out_of_bounds_names_the_indexed_variable(out_dir):
    v, i = at.fvector("v"), at.lscalar("i")
    fn = scanaot.function([v, i], v[i])
    kernel = rt.load(scanaot.compile([v, i], v[i], name="pick", out_dir=out_dir).library).pick
    for call in (lambda: fn(np.ones(3, "float32"), 5), lambda: kernel(np.ones(3, "float32"), 5),
                 lambda: kernel.call_checked(np.ones(3, "float32"), 5)):
        with pytest.raises(rt.StatusError, match=r"out of bounds.*first failing check: .* of 'v' \(float32, ndim=1\), 'i'"):
            call()


def test_the_first_failing_check_is_the_one_named(out_dir):
    """Two checks fail; the message names the one the kernel ran first."""
    v, i, j = at.fvector("v"), at.lscalar("i"), at.lscalar("j")
    fn = scanaot.function([v, i, j], v[i] + v[j])
    with pytest.raises(rt.StatusError, match=r"first failing check: [^;]*'i'") as err:
        fn(np.ones(3, "float32"), 7, 9)
    assert "'j'" not in str(err.value)
