"""scan-interchange: elementwise scans run chunk by chunk with the state in registers.

Results are checked against numpy loops and, bit for bit, against the same
function compiled with the pass switched off (the step-by-step loop)."""
import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot.targets import cpu as cpu_target
from scanaot.runtime.status import StatusError



@pytest.fixture(scope="module", autouse=True)
def _float32(float32_programs):
    """This module's programs are written in float32, as deployed (floatX=float32),
    also those its module-scoped fixtures build."""


def interchanged(f) -> bool:
    return "scan.interchanged" in f.ir("scf")


def power_function():
    k, a = at.iscalar("k"), at.vector("A")
    result, _ = scanaot.scan(fn=lambda p, a: p * a, outputs_info=at.ones_like(a), non_sequences=a, n_steps=k)
    return scanaot.function(inputs=[a, k], outputs=result[-1])


def tanh_function():
    """rank 2, a rank-0 param, a splat constant, several generics and a polynomial tanh"""
    k, a, c = at.iscalar("k"), at.matrix("A"), at.scalar("c")
    result, _ = scanaot.scan(fn=lambda p, a, c: at.tanh(p * a + c) * 2, outputs_info=at.ones_like(a),
                             non_sequences=[a, c], n_steps=k)
    return scanaot.function(inputs=[a, c, k], outputs=result[-1])


@pytest.fixture
def step_loop(monkeypatch, tmp_path):
    """Compile with the pass off (in a cache of its own: the key does not see the patch)."""
    def build(make):
        with monkeypatch.context() as m:
            m.setattr(cpu_target, "scan_interchange", lambda op, vector_bytes: None)
            m.setenv("SCANAOT_CACHE", str(tmp_path))
            return make()
    return build


def test_power_runs_interchanged_and_matches_a_numpy_loop():
    f = power_function()
    assert interchanged(f)
    rng = np.random.default_rng(0)
    for n in (1, 7, 127, 128, 129, 1000):   # partial, full and several chunks
        a = rng.uniform(0.5, 1.5, n).astype("float32")
        for k in (1, 2, 9):
            want = np.ones_like(a)
            for _ in range(k):
                want = want * a
            np.testing.assert_array_equal(f(a, k), want)


def test_bit_identical_to_the_step_loop(step_loop):
    f, g = tanh_function(), step_loop(tanh_function)
    assert interchanged(f) and not interchanged(g)
    a = np.random.default_rng(1).uniform(-1, 1, (37, 5)).astype("float32")
    c = np.float32(0.3)
    np.testing.assert_array_equal(f(a, c, 7), g(a, c, 7))
    want = np.ones_like(a)
    for _ in range(7):
        want = np.tanh(want * a + c) * 2
    np.testing.assert_allclose(f(a, c, 7), want, rtol=1e-5, atol=1e-6)


def test_zero_steps_and_empty_state_report_like_the_step_loop(step_loop):
    f, g = power_function(), step_loop(power_function)
    a = np.arange(5, dtype="float32")
    for fn in (f, g):
        with pytest.raises(StatusError, match="ran zero steps"):
            fn(a, 0)
    assert f(np.zeros(0, "float32"), 3).shape == (0,)


def test_independent_states_of_different_lengths():
    k, x, y = at.iscalar("k"), at.vector("x"), at.vector("y")
    (r1, r2), _ = scanaot.scan(fn=lambda p, q, x, y: (p * x, q + y), outputs_info=[at.ones_like(x), at.zeros_like(y)],
                               non_sequences=[x, y], n_steps=k)
    f = scanaot.function(inputs=[x, y, k], outputs=[r1[-1], r2[-1]])
    assert interchanged(f)
    xv, yv = np.linspace(0.5, 1, 300, dtype="float32"), np.arange(5, dtype="float32")
    p, q = f(xv, yv, 3)
    np.testing.assert_array_equal(p, xv * xv * xv)
    np.testing.assert_array_equal(q, yv + yv + yv)


def test_mismatched_shapes_raise_like_the_step_loop(step_loop):
    def make():
        k, x, y = at.iscalar("k"), at.vector("x"), at.vector("y")
        r, _ = scanaot.scan(fn=lambda p, y: p * y, outputs_info=x, non_sequences=y, n_steps=k)
        return scanaot.function(inputs=[x, y, k], outputs=r[-1])
    f, g = make(), step_loop(make)
    x, y = np.ones(300, "float32"), np.ones(5, "float32")
    messages = []
    for fn in (f, g):
        with pytest.raises(StatusError) as err:
            fn(x, y, 3)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "incompatible shapes" in messages[0]


@pytest.mark.parametrize("dtype", ["float64", "int32", "int64"])
def test_other_dtypes(dtype):
    k, a = at.iscalar("k"), at.vector("A", dtype=dtype)
    result, _ = scanaot.scan(fn=lambda p, a: p * a + 1, outputs_info=at.ones_like(a), non_sequences=a, n_steps=k)
    f = scanaot.function(inputs=[a, k], outputs=result[-1])
    assert interchanged(f)
    a = np.arange(-40, 60).astype(dtype) // 7 if dtype != "float64" else np.linspace(-1.1, 1.1, 100)
    want = np.ones_like(a)
    for _ in range(5):
        want = want * a + 1
    np.testing.assert_array_equal(f(a, 5), want)


def test_scans_that_are_not_elementwise_keep_the_step_loop():
    k, a, m = at.iscalar("k"), at.vector("A"), at.matrix("M")
    stacked, _ = scanaot.scan(fn=lambda p, a: p * a, outputs_info=at.ones_like(a), non_sequences=a, n_steps=k)
    matvec, _ = scanaot.scan(fn=lambda p, m: at.dot(m, p), outputs_info=a, non_sequences=m, n_steps=k)
    with_seq, _ = scanaot.scan(fn=lambda x, p: p * x, sequences=m, outputs_info=a)
    for out in (stacked, matvec[-1], with_seq[-1]):
        f = scanaot.function(inputs=[a, m, k], outputs=out, on_unused_input="ignore")
        assert not interchanged(f)


def test_cuda_target_keeps_the_step_loop(tmp_path):
    f = power_function()
    art = scanaot.compile(f.spec.inputs, f.spec.outputs, name="power", target="cuda", out_dir=tmp_path)
    assert not interchanged(art)
