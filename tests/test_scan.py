"""scan against independent numpy loops, feature by feature, in four dtypes."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import DTYPES, assert_close, sample


def vec(dtype, name=None):
    return at.tensor(dtype=dtype, shape=(None,), name=name)


def mat(dtype, name=None):
    return at.tensor(dtype=dtype, shape=(None, None), name=name)


def scal(dtype, name=None):
    return at.tensor(dtype=dtype, shape=(), name=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_map_over_sequence_with_non_sequence(dtype, rng):
    x, c = mat(dtype, "x"), vec(dtype, "c")
    out, updates = aesara.scan(lambda row, c: row * c + row, sequences=x, non_sequences=c)
    assert updates == {}
    f = aesara.function([x, c], out)
    xv, cv = sample(rng, (5, 3), dtype), sample(rng, (3,), dtype)
    assert_close(f(xv, cv), np.array([r * cv + r for r in xv]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accumulating_state(dtype, rng):
    x, s0 = mat(dtype), vec(dtype)
    out, _ = aesara.scan(lambda row, acc: acc + row, sequences=x, outputs_info=s0)
    f = aesara.function([x, s0], out)
    xv, s0v = sample(rng, (6, 4), dtype), sample(rng, (4,), dtype)
    ref, acc = [], s0v
    for row in xv:
        acc = acc + row
        ref.append(acc)
    assert_close(f(xv, s0v), np.array(ref), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequence_taps_negative_zero_positive(dtype, rng):
    x = vec(dtype)
    out, _ = aesara.scan(lambda a, b, c: a * 2 + b - c, sequences=dict(input=x, taps=[-2, 0, 3]))
    f = aesara.function([x], out)
    xv = sample(rng, (11,), dtype)
    ref = [xv[t - 2] * 2 + xv[t] - xv[t + 3] for t in range(2, 11 - 3)]
    assert_close(f(xv), np.array(ref, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_state_with_several_negative_taps(dtype, rng):
    x0 = vec(dtype)
    n = at.iscalar("n")
    # Fibonacci-like: x[t] = x[t-3] + 2*x[t-1]
    out, _ = aesara.scan(lambda a, b: a + b * 2, outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=n)
    f = aesara.function([x0, n], out)
    x0v = sample(rng, (3,), dtype)
    hist = list(x0v)
    for _ in range(7):
        hist.append(hist[-3] + 2 * hist[-1])
    assert_close(f(x0v, 7), np.array(hist[3:], dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_initial_block_longer_than_taps_uses_first_rows(dtype, rng):
    x0 = vec(dtype)
    out, _ = aesara.scan(lambda a, b: a - b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=4)
    f = aesara.function([x0], out)
    x0v = sample(rng, (5,), dtype)
    hist = list(x0v[:2])
    for _ in range(4):
        hist.append(hist[-2] - hist[-1])
    assert_close(f(x0v), np.array(hist[2:], dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_several_outputs_mixing_states_and_maps(dtype, rng):
    x, a0, b0 = vec(dtype), scal(dtype), scal(dtype)

    def step(xt, a, b):
        return a + xt, xt * xt, b * a + 1
    (A, M, B), _ = aesara.scan(step, sequences=x, outputs_info=[a0, None, b0])
    f = aesara.function([x, a0, b0], [A, M, B])
    xv = sample(rng, (6,), dtype)
    a, b = dtype_scalar(dtype, 1), dtype_scalar(dtype, 2)
    ra, rm, rb = [], [], []
    for xt in xv:
        a, b = a + xt, b * a + 1
        ra.append(a), rm.append(xt * xt), rb.append(b)
    got = f(xv, dtype_scalar(dtype, 1), dtype_scalar(dtype, 2))
    for g, r in zip(got, [ra, rm, rb]):
        assert_close(g, np.array(r, dtype=dtype), dtype)


def dtype_scalar(dtype, v):
    return np.asarray(v, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_truncates_to_shortest_sequence(dtype, rng):
    x, y = vec(dtype), vec(dtype)
    out, _ = aesara.scan(lambda a, b: a - b, sequences=[x, y])
    f = aesara.function([x, y], out)
    xv, yv = sample(rng, (7,), dtype), sample(rng, (4,), dtype)
    assert_close(f(xv, yv), xv[:4] - yv, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [0, 1, 5])
def test_n_steps_symbolic_without_sequences(dtype, steps, rng):
    s0, n = vec(dtype), at.lscalar("n")
    out, _ = aesara.scan(lambda s: s * 2 - 1, outputs_info=s0, n_steps=n)
    f = aesara.function([s0, n], out)
    s0v = sample(rng, (3,), dtype)
    ref, s = [], s0v
    for _ in range(steps):
        s = s * 2 - 1
        ref.append(s)
    assert_close(f(s0v, steps), np.array(ref, dtype=dtype).reshape(steps, 3), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_n_steps_constant_with_sequence_takes_the_smaller(dtype, rng):
    x = vec(dtype)
    out, _ = aesara.scan(lambda a: a + 1, sequences=x, n_steps=3)
    f = aesara.function([x], out)
    xv = sample(rng, (8,), dtype)
    assert_close(f(xv), xv[:3] + 1, dtype)


def test_n_steps_zero_constant():
    s0 = at.dvector()
    out, _ = aesara.scan(lambda s: s + 1, outputs_info=s0, n_steps=0)
    assert aesara.function([s0], out)(np.ones(2)).shape == (0, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_go_backwards(dtype, rng):
    x, s0 = vec(dtype), scal(dtype)
    out, _ = aesara.scan(lambda a, b, s: s * 2 + a - b, sequences=dict(input=x, taps=[-1, 0]), outputs_info=s0,
                         go_backwards=True)
    f = aesara.function([x, s0], out)
    xv = sample(rng, (6,), dtype)
    r = xv[::-1]
    ref, s = [], dtype_scalar(dtype, 1)
    for t in range(1, 6):
        s = s * 2 + r[t - 1] - r[t]
        ref.append(s)
    del r
    assert_close(f(xv, dtype_scalar(dtype, 1)), np.array(ref, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_until_stops_after_condition(dtype):
    limit, s0 = scal(dtype), scal(dtype)

    def step(s, limit):
        return s * 3, aesara.scan.utils.until(s * 3 > limit)
    out, _ = aesara.scan(step, outputs_info=s0, non_sequences=limit, n_steps=100)
    f = aesara.function([s0, limit], out)
    ref, s = [], 1
    while len(ref) < 100:
        s *= 3
        ref.append(s)
        if s > 500:
            break
    assert_close(f(dtype_scalar(dtype, 1), dtype_scalar(dtype, 500)), np.array(ref, dtype=dtype), dtype)


def test_until_reaching_n_steps_runs_all_steps():
    s0 = at.dscalar()
    out, _ = aesara.scan(lambda s: (s + 1, aesara.scan.until(s > 1e9)), outputs_info=s0, n_steps=4)
    assert_close(aesara.function([s0], out)(np.float64(0)), np.arange(1, 5, dtype="float64"))


def test_until_with_sequence_and_state():
    x, s0 = at.dvector("x"), at.dscalar("s0")
    out, _ = aesara.scan(lambda xt, s: (s + xt, aesara.scan.utils.until(s + xt > 10)),
                         sequences=x, outputs_info=s0)
    f = aesara.function([x, s0], out)
    xv = np.arange(1.0, 20.0)
    assert_close(f(xv, 0.0), np.cumsum(xv)[:5])  # 15 > 10: that step is kept, then it stops


@pytest.mark.parametrize("dtype", DTYPES)
def test_free_variable_is_captured(dtype, rng):
    x, w = vec(dtype), vec(dtype, "w")
    scale = w * 2  # an outer expression, used inside without being passed
    out, _ = aesara.scan(lambda a: a * scale, sequences=x, outputs_info=None)
    f = aesara.function([x, w], out)
    xv, wv = sample(rng, (4,), dtype), sample(rng, (3,), dtype)
    assert_close(f(xv, wv), np.array([a * wv * 2 for a in xv], dtype=dtype), dtype)


def test_variables_created_inside_step():
    x = at.dmatrix()

    def step(row):
        z = at.zeros_like(row)
        return at.set_subtensor(z[0], row.sum()) + at.arange(3)
    out, _ = aesara.scan(step, sequences=x)
    f = aesara.function([x], out)
    xv = np.arange(12.0).reshape(4, 3)
    ref = np.array([[r.sum(), 0, 0] + np.arange(3) for r in xv])
    assert_close(f(xv), ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_scan(dtype, rng):
    x = mat(dtype)

    def outer(row):
        inner, _ = aesara.scan(lambda v, acc: acc + v, sequences=row,
                               outputs_info=at.as_tensor_variable(np.asarray(0, dtype)))
        return inner
    out, _ = aesara.scan(outer, sequences=x)
    f = aesara.function([x], out)
    xv = sample(rng, (3, 5), dtype)
    assert_close(f(xv), np.cumsum(xv, axis=1, dtype=dtype), dtype)


def test_nested_scan_uses_outer_step_variable():
    A = at.dmatrix("A")
    k = at.iscalar("k")

    def outer(row, k):
        powers, _ = aesara.scan(lambda p, row: p * row, outputs_info=at.ones_like(row),
                                non_sequences=row, n_steps=k)
        return powers[-1]
    out, _ = aesara.scan(outer, sequences=A, non_sequences=k)
    f = aesara.function([A, k], out)
    Av = np.arange(6.0).reshape(2, 3)
    assert_close(f(Av, 3), Av ** 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_last_value_only(dtype, rng):
    A, k = vec(dtype), at.iscalar()
    result, _ = aesara.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    f = aesara.function([A, k], result[-1])
    assert 'keep = "last"' in f.ir("scan-opt")
    Av = sample(rng, (5,), dtype)
    assert_close(f(Av, 3), Av * Av * Av, dtype)


def test_last_value_of_multi_tap_state_uses_ring():
    x0 = at.dvector()
    out, _ = aesara.scan(lambda a, b, c: a + b + c, outputs_info=dict(initial=x0, taps=[-3, -2, -1]),
                         n_steps=10)
    f = aesara.function([x0], out[-1])
    hist = [1.0, 1.0, 1.0]
    for _ in range(10):
        hist.append(hist[-3] + hist[-2] + hist[-1])
    assert_close(f(np.ones(3)), np.float64(hist[-1]))


def test_result_and_last_value_both_used():
    s0 = at.dscalar()
    out, _ = aesara.scan(lambda s: s + 1, outputs_info=s0, n_steps=4)
    f = aesara.function([s0], [out, out[-1]])
    stacked, last = f(0.0)
    assert_close(stacked, np.arange(1.0, 5.0))
    assert_close(last, np.float64(4))


def test_scan_output_used_in_outer_arithmetic():
    x = at.dvector()
    out, _ = aesara.scan(lambda a: a * 2, sequences=x)
    f = aesara.function([x], out.sum() + out[1:].mean())
    xv = np.arange(5.0)
    assert_close(f(xv), (xv * 2).sum() + (xv * 2)[1:].mean())


def test_return_list_and_name():
    x = at.dvector()
    outs, _ = aesara.scan(lambda a: a + 1, sequences=x, return_list=True, name="inc")
    assert isinstance(outs, list) and outs[0].name == "inc"


def test_last_value_when_the_initial_state_is_an_argument():
    x = at.dvector("x")
    out, _ = aesara.scan(lambda v: v * 2, outputs_info=x, n_steps=3)
    f = aesara.function([x], [out[-1], x + 0])
    xv = np.arange(4.0)
    last, same = f(xv)
    assert_close(last, xv * 8)
    assert_close(same, xv)  # the argument was not written by the loop


def test_loop_invariant_work_is_hoisted_out_of_the_step():
    x, W, h0 = at.dmatrix("x"), at.dmatrix("W"), at.dvector("h0")
    out, _ = aesara.scan(lambda row, h, W: aesara.dot(h, W.T * 2) + row, sequences=x, outputs_info=h0,
                         non_sequences=W)
    op = out.owner.op
    assert op.n_params == 2  # W, and W.T * 2 computed once before the loop
    f = aesara.function([x, h0, W], out)
    xv, Wv, hv = np.arange(6.0).reshape(2, 3), np.arange(9.0).reshape(3, 3) / 10, np.ones(3)
    want, h = [], hv
    for row in xv:
        h = h @ (Wv.T * 2) + row
        want.append(h)
    assert_close(f(xv, hv, Wv), np.array(want))
    projected, _ = aesara.scan(lambda row, W: aesara.dot(row, W.T * 2), sequences=x, non_sequences=W)
    assert_close(aesara.function([x, W], projected)(xv, Wv), xv @ (Wv.T * 2))  # one product, no loop work
