"""Calling a `scanaot.function`: the generated fast path and the converting path give
the same results, and inputs convert as in Aesara (floatX literals, allow_input_downcast)."""
import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot import config
from scanaot.packaging.function import record_functions


@pytest.fixture(scope="module")
def scaled():
    x, v = at.fscalar("x"), at.fvector("v")
    return scanaot.function([x, v], v * x)


CALLS = [
    ((np.float32(2), np.arange(3, dtype="float32")), [0, 2, 4]),        # exact dtypes: the fast path
    ((2, np.arange(3, dtype="float32")), [0, 2, 4]),                    # a Python int: converted
    ((2.0, [0, 1, 2]), [0, 2, 4]),                                      # a list: converted
    ((np.asarray(2, "float32"), range(3)), [0, 2, 4]),
    ((np.float16(2), np.arange(3, dtype="int8")), [0, 2, 4]),           # safe casts
]


@pytest.mark.parametrize("args, expected", CALLS)
def test_fast_and_converting_paths_agree(scaled, args, expected):
    got = scaled(*args)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(scaled(x=args[0], v=args[1]), expected)  # by keyword: converting path


def test_python_float_rounds_to_floatx_like_aesara(monkeypatch):
    monkeypatch.setattr(config, "floatX", "float32")  # a float32 input is floatX
    x, v = at.fscalar("x"), at.fvector("v")
    np.testing.assert_allclose(scanaot.function([x, v], v * x)(0.1, np.ones(2, "float32")), np.float32(0.1))
    monkeypatch.setattr(config, "floatX", "float64")  # a float32 input is no longer floatX
    f = scanaot.function([x, v], v * x)
    np.testing.assert_array_equal(f(0.5, np.ones(2, "float32")), [0.5, 0.5])  # exact: fine
    with pytest.raises(TypeError, match="argument 0 \\('x'\\).*float32"):
        f(0.1, np.ones(2, "float32"))


def test_allow_input_downcast():
    v, n = at.fvector("v"), at.iscalar("n")
    strict = scanaot.function([v, n], v * n)
    with pytest.raises(TypeError, match="would lose precision"):
        strict(np.ones(2), 2)
    loose = scanaot.function([v, n], v * n, allow_input_downcast=True)
    np.testing.assert_array_equal(loose(np.full(2, 0.1), 2.0), np.float32(0.1) * 2)
    with pytest.raises(TypeError, match="NaN or inf"):
        loose(np.ones(2), float("nan"))
    x = at.fscalar("x")
    refuse = scanaot.function([x], x * 2, allow_input_downcast=False)
    with pytest.raises(TypeError, match="cannot be represented"):
        refuse(0.1)


def test_nan_in_a_float_list_is_a_value_not_an_error(scaled):
    got = scaled(1.0, [np.nan, 1.0])
    assert np.isnan(got[0]) and got[1] == 1


def test_outputs_come_back_as_aesara_returns_them():
    v = at.fvector("v")
    a = np.arange(3, dtype="float32")
    assert isinstance(scanaot.function([v], v * 2)(a), np.ndarray)
    one = scanaot.function([v], [v * 2])(a)
    assert isinstance(one, list) and len(one) == 1
    two = scanaot.function([v], [v * 2, v + 1])(a)
    assert isinstance(two, list) and [t.tolist() for t in two] == [[0, 2, 4], [1, 2, 3]]


def test_errors_from_the_fast_path_name_the_argument(scaled):
    with pytest.raises(TypeError, match="argument 1 \\('v'\\)"):
        scaled(1.0, np.ones((2, 2), "float32"))
    with pytest.raises(TypeError, match="expected 2 arguments"):
        scaled(1.0, np.ones(2, "float32"), 3)


def test_status_errors_and_until_growth_through_the_fast_path():
    x, n = at.dscalar("x"), at.iscalar("n")
    r, _ = scanaot.scan(lambda p: (p + 1, scanaot.until(p > 1000)), outputs_info=x, n_steps=n)
    f = scanaot.function([x, n], r)
    # the step that sees p > 1000 still emits its output; past the first capacity the
    # checked path grows the result
    np.testing.assert_array_equal(f(0.0, 5000), np.arange(1, 1003))
    idx, v = at.iscalar("i"), at.fvector("v")
    g = scanaot.function([v, idx], v[idx])
    with pytest.raises(rt.StatusError, match="out of bounds"):
        g(np.ones(3, "float32"), 7)


def test_recorded_calls_still_recorded(scaled):
    v = at.fvector("v")
    with record_functions() as made:
        f = scanaot.function([v], v * 3)
        f(np.ones(2, "float32"))
    assert made == [f] and len(f.calls) == 1


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    a, x = at.fvector("a"), at.fmatrix("x")
    art = scanaot.compile([a, x], [x * a, (x + 1).sum(axis=0)], name="two", out_dir=tmp_path_factory.mktemp("k"))
    return rt.load(art.library).two


def test_kernel_keywords_and_out_take_the_fast_path_with_the_same_results(kernel):
    a, x = np.arange(3, dtype="float32"), np.ones((2, 3), "float32")
    want = [x * a, (x + 1).sum(axis=0)]
    for got in (kernel(a, x), kernel(a=a, x=x), kernel(a, x=x), kernel(x=x, a=a)):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    bufs = [np.empty((2, 3), "float32"), np.empty(3, "float32")]
    got = kernel(a, x, out=bufs)
    assert got[0] is bufs[0] and got[1] is bufs[1]
    np.testing.assert_array_equal(bufs[1], want[1])
    assert kernel(a=a, x=x, out=tuple(bufs))[0] is bufs[0]


@pytest.mark.parametrize("bad, pattern", [
    (lambda a, x: [x, np.empty(3, "float32")], "overlaps input"),
    (lambda a, x: [np.empty((2, 3), "float64"), np.empty(3, "float32")], "out\\[0\\]: expected a float32"),
    (lambda a, x: [np.empty((3, 2), "float32"), np.empty(3, "float32")], "shape \\(2, 3\\)"),
    (lambda a, x: [np.empty((2, 3), "float32")], "needs 2 arrays"),
])
def test_bad_out_buffers_are_refused_by_name(kernel, bad, pattern):
    a, x = np.arange(3, dtype="float32"), np.ones((2, 3), "float32")
    with pytest.raises(rt.ArgumentError, match=pattern):
        kernel(a, x, out=bad(a, x))


def test_out_buffers_meeting_an_input_or_each_other_are_refused_to_the_byte(kernel):
    """The fast path compares byte ranges: a buffer one element into another is refused,
    buffers that only touch are not (and compute the right values)."""
    base = np.zeros(32, "float32")
    a, x = np.arange(3, dtype="float32"), np.ones((2, 3), "float32")
    want = [x * a, (x + 1).sum(axis=0)]
    touching = [base[0:6].reshape(2, 3), base[6:9]]
    got = kernel(a, x, out=touching)
    assert got[0].base is base and got[1].base is base
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(rt.ArgumentError, match=r"out\[1\] overlaps out\[0\]"):
        kernel(a, x, out=[base[0:6].reshape(2, 3), base[5:8]])
    inputs = base[16:22].reshape(2, 3)
    inputs[:] = 1
    with pytest.raises(rt.ArgumentError, match=r"out\[0\] overlaps input 1"):
        kernel(a, inputs, out=[base[21:27].reshape(2, 3), base[28:31]])
    assert kernel(a, inputs, out=[base[22:28].reshape(2, 3), base[28:31]])[1] is not None
    empty = np.ones((0, 3), "float32")
    got = kernel(a, empty, out=[np.empty((0, 3), "float32"), np.empty(3, "float32")])
    np.testing.assert_array_equal(got[1], np.zeros(3, "float32"))


def test_a_zero_dim_array_argument_meeting_an_out_buffer_is_refused(scalars):
    buf = np.zeros(4, "float64")
    d = buf[0:1].reshape(())
    with pytest.raises(rt.ArgumentError, match="overlaps input 1"):
        scalars(True, d, np.float32(1), 2, out=[buf[0:1].reshape(()), np.empty((), "float64"), np.empty((), "float64")])


def test_bad_keywords_are_refused_by_name(kernel):
    a, x = np.arange(3, dtype="float32"), np.ones((2, 3), "float32")
    with pytest.raises(rt.ArgumentError, match="no argument 'y'"):
        kernel(a, y=x)
    with pytest.raises(rt.ArgumentError, match="given twice"):
        kernel(a, x, a=a)


@pytest.fixture(scope="module")
def scalars(tmp_path_factory):
    b, d, f, i = at.tensor("bool", shape=(), name="b"), at.dscalar("d"), at.fscalar("f"), at.iscalar("i")
    art = scanaot.compile([b, d, f, i], [at.switch(b, d, -d), d + f, d + i], name="sc",
                          out_dir=tmp_path_factory.mktemp("sc"))
    return rt.load(art.library).sc


def test_numpy_bool_scalars_and_python_bools(scalars):
    for flag in (True, np.True_, np.asarray(True)):
        assert scalars(flag, 2.0, 1.0, 1)[0] == 2.0
    c, x = at.tensor("bool", shape=(), name="c"), at.dscalar("x")
    g = scanaot.function([c, x], at.switch(c, x, -x))
    assert g(np.True_, 2.0) == 2.0 and g(False, 2.0) == -2.0


@pytest.mark.parametrize("position, value, pattern", [
    (1, 2**53 + 1, "not exactly representable as float64"),     # a Python int into a float64
    (2, 2**200, "not exactly representable as float32"),
    (2, 1e300, "does not fit in float32"),                      # a float that would become inf
])
def test_python_numbers_that_would_change_are_refused(scalars, position, value, pattern):
    args = [True, 1.0, 1.0, 1]
    args[position] = value
    with pytest.raises(rt.ArgumentError, match=pattern):
        scalars(*args)


def test_inf_and_nan_pass_through_float_scalars(scalars):
    got = scalars(True, float("inf"), float("nan"), 1)
    assert got[0] == np.inf and np.isnan(got[1])


def test_functions_named_like_library_attributes(tmp_path):
    x = at.fvector("x")
    art = scanaot.compile_many([("manifest", [x], x * 2), ("path", [x], x * 3)], name="odd", out_dir=tmp_path)
    lib = rt.load(art.library)
    assert isinstance(lib.manifest, dict)  # the attribute
    np.testing.assert_array_equal(lib["manifest"](np.ones(1, "float32")), [2])
    np.testing.assert_array_equal(lib["path"](np.ones(1, "float32")), [3])
    with pytest.raises(KeyError, match="no function 'nope'; it has manifest, path"):
        lib["nope"]


def test_out_must_be_a_list_or_tuple(kernel):
    a, x = np.arange(3, dtype="float32"), np.ones((2, 3), "float32")
    for bad in ((b for b in [np.empty((2, 3), "float32")]), 0, np.empty((2, 3), "float32")):
        with pytest.raises(rt.ArgumentError, match="out= must be a list or tuple of 2 arrays"):
            kernel(a, x, out=bad)


def test_a_cotangent_of_the_wrong_shape_names_its_output(tmp_path):
    x = at.dvector("x")
    art = scanaot.compile([x], x * 2, name="g", out_dir=tmp_path, grad_wrt=[x])
    lib = rt.load(art.library)
    np.testing.assert_array_equal(lib.g.vjp(np.ones(3), cotangents=np.ones(3)), [2, 2, 2])
    with pytest.raises(rt.ShapeError, match="cotangent 'cot_out0' must have the shape of output 'out0', "
                                               "\\(3,\\); got \\(4,\\)"):
        lib.g.vjp(np.ones(3), cotangents=np.ones(4))


def test_too_many_parameters_are_refused_at_compile_time(tmp_path):
    xs = [at.dscalar(f"x{i}") for i in range(1030)]
    with pytest.raises(ValueError, match="at most 1023 together"):
        scanaot.compile(xs, xs[0] * 2, name="wide", out_dir=tmp_path)


def test_keywords_bind_by_name_in_any_order_and_refuse_what_does_not_fit():
    """ByPosition: all by name (one C itemgetter), mixed, or None for the checked path."""
    from scanaot.runtime.kernel import ByPosition
    bind = ByPosition(["a", "x", "y"])
    assert bind((), {"y": 3, "a": 1, "x": 2}) == (1, 2, 3)
    assert bind((1,), {"y": 3, "x": 2}) == (1, 2, 3)
    assert bind((1, 2, 3), {}) == (1, 2, 3)
    for args, kwargs in [((), {"a": 1, "x": 2}), ((), {"a": 1, "x": 2, "z": 3}), ((1,), {"a": 1, "x": 2}),
                         ((1, 2), {"y": 3, "z": 4})]:
        assert bind(args, kwargs) is None
    assert ByPosition(["v"])((), {"v": 5}) == (5,) and ByPosition(["v"])((), {"w": 5}) is None
    assert ByPosition([])((), {"v": 5}) is None and ByPosition([])((), {}) == ()


def _views_and_odd_arrays():
    """C-contiguous arrays of every kind the fast path takes: views into a larger
    buffer, read-only, not owning their data, empty, made by numpy's other paths."""
    base = np.arange(24, dtype="float32").reshape(8, 3)
    readonly = base[2:4].copy()
    readonly.flags.writeable = False
    foreign = np.frombuffer(bytearray(np.arange(6, dtype="float32").tobytes()), "float32")
    return [(base[1], base[3:5]), (readonly[0], readonly), (foreign[:3], foreign.reshape(2, 3)),
            (np.zeros(0, "float32"), np.zeros((4, 0), "float32"))]


@pytest.mark.parametrize("data_offset", ["read", "buffer protocol"])
def test_the_fast_path_finds_every_arrays_data(kernel, monkeypatch, data_offset):
    """Data pointers come from the array object itself where numpy keeps them where the
    runtime checked at import (fastcall._data_offset), else from the buffer protocol:
    both give each kind of array's own data."""
    from scanaot.runtime import fastcall
    if data_offset == "read":
        assert fastcall._DATA_OFFSET is not None  # CPython and numpy as released
    else:
        monkeypatch.setattr(fastcall, "_DATA_OFFSET", None)
    call = kernel.fast_call(kernel.call_checked, with_out=True)
    assert ("_void_at" in call.__source__) == (data_offset == "read")
    for a, x in _views_and_odd_arrays():
        got = call(a, x)
        np.testing.assert_array_equal(got[0], x * a)
        np.testing.assert_array_equal(got[1], (x + 1).sum(axis=0))
