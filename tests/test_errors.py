"""Every user mistake is an exception that says what is wrong; none crashes."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from scanaot.runtime import ShapeError, StatusError
from scanaot.scan import ScanError


def test_step_returns_too_many_outputs():
    s0 = at.dscalar()
    with pytest.raises(ScanError, match="returned 2 output.* outputs_info describes 1"):
        aesara.scan(lambda s: [s + 1, s * 2], outputs_info=s0, n_steps=3)


def test_step_returns_wrong_kind():
    with pytest.raises(ScanError, match="output 0 is a str"):
        aesara.scan(lambda x: "oops", sequences=at.dvector())


def test_until_must_be_last():
    s0 = at.dscalar()
    with pytest.raises(ScanError, match="until.* last"):
        aesara.scan(lambda s: [aesara.scan.utils.until(s > 1), s], outputs_info=[s0], n_steps=3)


def test_step_function_arity():
    with pytest.raises(ScanError, match="cannot be called with the 2 argument"):
        aesara.scan(lambda a: a, sequences=at.dvector(), non_sequences=at.dscalar())


def test_needs_sequences_or_n_steps():
    with pytest.raises(ScanError, match="sequences or n_steps"):
        aesara.scan(lambda s: s + 1, outputs_info=at.dscalar())


def test_scalar_sequence():
    with pytest.raises(ScanError, match="sequences\\[0\\] is a scalar"):
        aesara.scan(lambda s: s, sequences=at.dscalar())


def test_taps_the_initial_state_cannot_cover_at_trace_time():
    with pytest.raises(ScanError, match="need an initial block"):
        aesara.scan(lambda a, b: a + b, outputs_info=dict(initial=at.dscalar(), taps=[-2, -1]), n_steps=2)


def test_taps_the_initial_state_cannot_cover_at_run_time():
    x0 = at.dvector("x0")
    out, _ = aesara.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-3, -1]), n_steps=2)
    f = aesara.function([x0], out)
    with pytest.raises(ShapeError, match="x0.shape\\[0\\] >= 3 must hold .*initial state rows"):
        f(np.ones(2))


def test_positive_output_taps_are_refused():
    with pytest.raises(ScanError, match="negative"):
        aesara.scan(lambda a: a, outputs_info=dict(initial=at.dvector(), taps=[1]), n_steps=2)


def test_implicit_downcast_names_output_and_dtypes():
    up_to = at.iscalar("up_to")
    seq = at.arange(up_to)
    with pytest.raises(ScanError) as err:
        aesara.scan(lambda v, s: s + v, outputs_info=at.as_tensor_variable(0), sequences=seq)
    msg = str(err.value)
    assert "output 0" in msg and "int64" in msg and "int8" in msg and "downcast" in msg


def test_state_rank_mismatch():
    with pytest.raises(ScanError, match="has 1 dims but its initial state gives 0"):
        aesara.scan(lambda s, v: v * s, outputs_info=at.dscalar(), non_sequences=at.dvector(), n_steps=2)


def test_strict_names_the_free_variable():
    w = at.dvector("w_free")
    with pytest.raises(ScanError, match="w_free"):
        aesara.scan(lambda a: a * w, sequences=at.dvector(), strict=True)


def test_input_created_inside_step():
    with pytest.raises(ScanError, match="created inside"):
        aesara.scan(lambda a: a * at.dscalar("inner"), sequences=at.dvector())


def test_updates_of_what_is_not_shared_are_refused():
    x = at.dvector()
    with pytest.raises(TypeError, match=r"updates\[0\]: 1 is not a shared variable"):
        aesara.function([x], x * 2, updates={1: 2})
    with pytest.raises(TypeError, match="must be a dict, an OrderedDict or a list"):
        aesara.function([x], x * 2, updates=3)


def test_missing_input():
    x, y = at.dvector("x"), at.dvector("y")
    with pytest.raises(ValueError, match="'y'.*not among the inputs"):
        aesara.function([x], x + y)


def test_set_subtensor_needs_an_indexed_tensor():
    with pytest.raises(TypeError, match="indexed tensor"):
        at.set_subtensor(at.dvector(), 1.0)


def test_python_if_on_symbolic_value():
    with pytest.raises(TypeError, match="truth value"):
        if at.dscalar() > 0:
            pass


@pytest.fixture(scope="module")
def axpy():
    a, x, k = at.fvector("a"), at.fmatrix("x"), at.iscalar("k")
    return aesara.function([a, x, k], (x * a) * k)


@pytest.mark.parametrize("args, error, pattern", [
    ((np.ones(3, "float64"), np.ones((2, 3), "float32"), 1), TypeError, "argument 0 \\('a'\\).*float32.*float64"),
    ((np.ones((1, 3), "float32"), np.ones((2, 3), "float32"), 1), TypeError, "argument 0 \\('a'\\).*1 dims"),
    ((np.ones(3, "float32"), np.ones(3, "float32"), 1), TypeError, "argument 1 \\('x'\\).*2 dims"),
    ((np.ones(3, "float32"), np.ones((2, 3), "float32"), 1.5), TypeError, "argument 2 \\('k'\\).*int32"),
    ((np.ones(3, "float32"), np.ones((2, 3), "float32"), "1"), TypeError, "argument 2 \\('k'\\)"),
    ((np.ones(3, "float32"), np.ones((2, 3), "float32"), None), TypeError, "argument 2 \\('k'\\)"),
    ((np.ones(3, "float32"), np.ones((2, 3), "float32")), TypeError, "missing argument 2"),
    ((np.ones(4, "float32"), np.ones((2, 3), "float32"), 1), ShapeError, "x.shape\\[1\\] == a.shape\\[0\\]"),
])
def test_bad_call_arguments(axpy, args, error, pattern):
    with pytest.raises(error, match=pattern):
        axpy(*args)


def test_non_contiguous_arguments_are_accepted(axpy):
    x = np.arange(12, dtype="float32").reshape(3, 4)[:, ::2]
    a = np.ones(2, "float32")
    np.testing.assert_allclose(axpy(a, x, 2), x * 2)


def test_unknown_keyword(axpy):
    with pytest.raises(TypeError, match="unexpected keyword argument 'b'"):
        axpy(b=1)


def test_index_out_of_bounds_at_run_time():
    x, i = at.dvector(), at.iscalar()
    f = aesara.function([x, i], x[i])
    with pytest.raises(StatusError, match="out of bounds"):
        f(np.ones(3), 3)
    with pytest.raises(StatusError, match="out of bounds"):
        f(np.ones(3), -4)


def test_negative_n_steps_at_run_time():
    s0, n = at.dscalar(), at.iscalar()
    out, _ = aesara.scan(lambda s: s + 1, outputs_info=s0, n_steps=n)
    f = aesara.function([s0, n], out)
    with pytest.raises(ShapeError, match="n_steps"):
        f(0.0, -1)


def test_last_value_of_zero_steps():
    s0, n = at.dscalar(), at.iscalar()
    out, _ = aesara.scan(lambda s: s + 1, outputs_info=s0, n_steps=n)
    f = aesara.function([s0, n], out[-1])
    with pytest.raises(StatusError, match="zero steps"):
        f(0.0, 0)


def test_step_changing_state_shape_at_run_time():
    s0, v = at.dvector(), at.dvector()
    out, _ = aesara.scan(lambda s, v: s * v, outputs_info=s0, non_sequences=v, n_steps=3)
    f = aesara.function([s0, v], out)
    with pytest.raises(StatusError):
        f(np.ones(3), np.ones(5))


def test_dot_shape_mismatch():
    a, b = at.dmatrix(), at.dvector()
    f = aesara.function([a, b], aesara.dot(a, b))
    with pytest.raises(ShapeError, match="dot: inner dims"):
        f(np.ones((2, 3)), np.ones(4))


def test_unknown_ir_stage():
    x = at.dvector()
    f = aesara.function([x], x * 2)
    with pytest.raises(KeyError, match="unknown stage"):
        f.ir("nope")


def test_output_shape_computed_inside_the_program_is_refused():
    x = at.ivector("x")
    with pytest.raises(ValueError, match="shape of output 0 .* cannot be computed from the arguments"):
        aesara.function([x], at.arange(x.sum()))
