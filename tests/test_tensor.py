"""scanaot.tensor: typing rules and each op against numpy."""
import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from conftest import DTYPES, assert_close, sample


def test_constructors_follow_aesara_typing():
    assert at.iscalar().dtype == "int32" and at.iscalar().ndim == 0
    assert at.lvector().dtype == "int64" and at.dmatrix().ndim == 2
    assert at.ftensor3().dtype == "float32" and at.ftensor3().ndim == 3
    assert at.bscalar().dtype == "int8"
    assert at.vector().dtype == aesara.config.floatX
    assert at.matrix("W").name == "W"


def test_literal_typing():
    assert at.as_tensor_variable(0).dtype == "int8"
    assert at.as_tensor_variable(300).dtype == "int16"
    assert at.as_tensor_variable(2 ** 40).dtype == "int64"
    assert at.as_tensor_variable(np.asarray(0, "int32")).dtype == "int32"
    assert at.as_tensor_variable(True).dtype == "bool"


def test_float_literals_follow_aesaras_cast_policy():
    """floatX float64: float32 where exact (`fvector * 0.5` stays float32), else float64;
    floatX float32: float32."""
    with aesara.config.change_flags(floatX="float64"):
        assert at.as_tensor_variable(1.5).dtype == "float32"
        assert at.constant(0.1).dtype == "float64"
        assert (at.fvector() * 0.5).dtype == "float32"
        assert (at.fvector() * 0.1).dtype == "float64"
    with aesara.config.change_flags(floatX="float32"):
        assert at.constant(0.1).dtype == "float32"
        assert (at.fvector() * 0.1).dtype == "float32"
    assert at.as_tensor_variable(True).dtype == "bool"


def test_an_unsupported_method_says_so_and_numpy_arrays_defer():
    x = at.dmatrix("x")
    with pytest.raises(AttributeError, match="'nonzero_values'.*not supported by scanaot.*docs/tensor.md"):
        x.nonzero_values  # noqa: B018
    a = np.arange(6.0).reshape(2, 3)
    f = aesara.function([x], [a @ x.T, a * x, a + x])
    xv = np.ones((2, 3))
    got = f(xv)
    np.testing.assert_allclose(got[0], a @ xv.T)
    np.testing.assert_allclose(got[1], a * xv)
    np.testing.assert_allclose(got[2], a + xv)


def test_upcasting():
    assert (at.fvector() * 2).dtype == "float32"
    assert (at.fvector() * at.dscalar()).dtype == "float64"
    assert (at.ivector() + at.bscalar()).dtype == "int32"
    assert (at.ivector() / at.ivector()).dtype == "float64"
    assert (at.bvector() / 2).dtype == aesara.config.floatX  # Aesara: integers divide into floatX
    assert (at.fscalar() ** at.lscalar()).dtype == "float64"
    assert at.tanh(at.ivector()).dtype == "float64"
    assert at.sum(at.bvector()).dtype == "int64"
    assert (at.fvector() < 1).dtype == "bool"


def test_broadcastable_pattern():
    row = at.tensor("float64", shape=(1, None))
    out = row + at.dmatrix()
    assert out.broadcastable == (False, False)
    assert (row * 2).broadcastable == (True, False)


BINARY = {
    "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply), "max": (at.maximum, np.maximum),
    "min": (at.minimum, np.minimum), "lt": (lambda a, b: a < b, np.less),
    "ge": (lambda a, b: a >= b, np.greater_equal), "eq": (at.eq, np.equal), "neq": (at.neq, np.not_equal),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_with_broadcasting(dtype, op, rng):
    sym, ref = BINARY[op]
    x = at.tensor(dtype=dtype, shape=(None, None))
    y = at.tensor(dtype=dtype, shape=(None,))
    f = aesara.function([x, y], sym(x, y))
    xv, yv = sample(rng, (3, 4), dtype), sample(rng, (4,), dtype)
    assert_close(f(xv, yv), ref(xv, yv))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float64"])
def test_floor_division_and_mod_follow_python(dtype):
    x, y = at.tensor(dtype=dtype, shape=(None,)), at.tensor(dtype=dtype, shape=(None,))
    f = aesara.function([x, y], [x // y, x % y])
    xv = np.array([7, -7, 7, -7], dtype=dtype)
    yv = np.array([2, 2, -2, -2], dtype=dtype)
    q, r = f(xv, yv)
    assert_close(q, xv // yv)
    assert_close(r, xv % yv)


@pytest.mark.parametrize("name", ["tanh", "exp", "log", "sqrt", "abs", "sin", "cos", "sigmoid"])
def test_unary_math(name, rng):
    x = at.dvector()
    ref = {"abs": np.abs, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}.get(name, getattr(np, name, None))
    f = aesara.function([x], getattr(at, name)(x))
    xv = rng.uniform(0.1, 2.0, size=5)
    assert_close(f(xv), ref(xv))


def test_pow_switch_cast_neg():
    x = at.dvector()
    i = at.ivector()
    f = aesara.function([x, i], [x ** 2, x ** x, at.switch(x > 1, x, -x), at.cast(x, "int32"), i ** 3,
                                 (x > 1) & (x < 3), ~(x > 1)])
    xv = np.array([0.5, 1.5, 2.5, 3.5])
    iv = np.array([1, -2, 3, 0], dtype="int32")
    got = f(xv, iv)
    refs = [xv ** 2, xv ** xv, np.where(xv > 1, xv, -xv), xv.astype("int32"), iv ** 3,
            (xv > 1) & (xv < 3), ~(xv > 1)]
    for g, r in zip(got, refs):
        assert_close(g, r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_reductions(dtype, axis, rng):
    x = at.tensor(dtype=dtype, shape=(None, None))
    f = aesara.function([x], [x.sum(axis=axis), x.prod(axis=axis), x.max(axis=axis), x.min(axis=axis),
                              x.mean(axis=axis)])
    xv = sample(rng, (3, 4), dtype)
    s, p, mx, mn, mean = f(xv)
    acc = "int64" if dtype.startswith("int") else dtype
    assert_close(s, xv.sum(axis=axis, dtype=acc))
    assert_close(p, xv.prod(axis=axis, dtype=acc))
    assert_close(mx, xv.max(axis=axis))
    assert_close(mn, xv.min(axis=axis))
    assert_close(mean, xv.mean(axis=axis, dtype="float64").astype(mean.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4))])
def test_dot(dtype, shapes, rng):
    a = at.tensor(dtype=dtype, shape=(None,) * len(shapes[0]))
    b = at.tensor(dtype=dtype, shape=(None,) * len(shapes[1]))
    f = aesara.function([a, b], aesara.dot(a, b))
    av, bv = sample(rng, shapes[0], dtype), sample(rng, shapes[1], dtype)
    assert_close(f(av, bv), np.dot(av, bv))


INDEXES = [
    (lambda x: x[1], lambda x: x[1]),
    (lambda x: x[-1], lambda x: x[-1]),
    (lambda x: x[1:3], lambda x: x[1:3]),
    (lambda x: x[::2], lambda x: x[::2]),
    (lambda x: x[::-1], lambda x: x[::-1]),
    (lambda x: x[-2:0:-2], lambda x: x[-2:0:-2]),
    (lambda x: x[1, 2], lambda x: x[1, 2]),
    (lambda x: x[:, -1], lambda x: x[:, -1]),
    (lambda x: x[1:, ::-1], lambda x: x[1:, ::-1]),
    (lambda x: x[10:], lambda x: x[10:]),
    (lambda x: x[-100:2], lambda x: x[-100:2]),
]


@pytest.mark.parametrize("case", range(len(INDEXES)))
def test_indexing(case, rng):
    sym, ref = INDEXES[case]
    x = at.dmatrix()
    f = aesara.function([x], sym(x))
    xv = rng.standard_normal((5, 4))
    assert_close(f(xv), ref(xv))


def test_symbolic_index_and_bounds():
    x, i, j = at.dvector(), at.iscalar(), at.iscalar()
    f = aesara.function([x, i, j], [x[i], x[i:j]])
    xv = np.arange(6.0)
    a, b = f(xv, -2, 5)
    assert_close(a, xv[-2])
    assert_close(b, xv[-2:5])


def test_set_and_inc_subtensor():
    x, y = at.dmatrix(), at.dvector()
    f = aesara.function([x, y], [at.set_subtensor(x[1], y), at.inc_subtensor(x[:, 1:3], 10.0),
                                 at.set_subtensor(x[0, 0], 7.0), at.inc_subtensor(x[2, ::2], y[:2])])
    xv = np.arange(12.0).reshape(3, 4)
    yv = np.array([1.0, 2.0, 3.0, 4.0])
    a, b, c, d = f(xv, yv)
    ra = xv.copy(); ra[1] = yv
    rb = xv.copy(); rb[:, 1:3] += 10
    rc = xv.copy(); rc[0, 0] = 7
    rd = xv.copy(); rd[2, ::2] += yv[:2]
    for g, r in zip((a, b, c, d), (ra, rb, rc, rd)):
        assert_close(g, r)
    assert_close(xv, np.arange(12.0).reshape(3, 4))  # inputs are never written


def test_shape_arange_ones_zeros():
    x = at.dmatrix()
    n = at.iscalar()
    f = aesara.function([x, n], [at.shape(x), x.shape[1] * 2, at.arange(n), at.arange(1, n, 3),
                                 at.arange(n, 0, -2), at.ones_like(x), at.zeros((n, 2)),
                                 at.arange(0.5, 2.0, 0.5)])
    xv = np.zeros((3, 5))
    got = f(xv, 7)
    refs = [np.array([3, 5]), 10, np.arange(7), np.arange(1, 7, 3), np.arange(7, 0, -2), np.ones((3, 5)),
            np.zeros((7, 2), dtype=aesara.config.floatX), np.arange(0.5, 2.0, 0.5)]
    for g, r in zip(got, refs):
        assert_close(g, r)
    assert got[2].dtype == np.int64  # Aesara: integer ranges are int64


def test_dimshuffle_and_transpose(rng):
    x = at.dmatrix()
    f = aesara.function([x], [x.T, x.dimshuffle(1, "x", 0)])
    xv = rng.standard_normal((2, 3))
    a, b = f(xv)
    assert_close(a, xv.T)
    assert_close(b, xv.T[:, None, :])


def test_output_that_is_an_input_or_constant():
    x = at.dvector()
    f = aesara.function([x], [x, at.constant(np.arange(3.0)), x[1:]])
    xv = np.arange(4.0)
    a, b, c = f(xv)
    assert_close(a, xv)
    assert_close(b, np.arange(3.0))
    assert_close(c, xv[1:])
    a[0] = 100
    assert xv[0] == 0


def test_call_by_keyword_and_python_values():
    a, k = at.vector("A"), at.iscalar("k")
    f = aesara.function([a, k], a * k)
    assert_close(f(k=3, A=[1, 2]), np.array([3.0, 6.0], dtype=aesara.config.floatX))
    assert_close(f(range(3), 2), np.array([0.0, 2.0, 4.0], dtype=aesara.config.floatX))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (9, 3, 40), (0, 3, 4), (3, 0, 4), (20, 7, 33)])
def test_register_tiled_products_any_shape(dtype, shape, rng):
    """The tiled kernel: edges, empty dims, a transposed left operand, an accumulated sum."""
    m, k, n = shape
    a, b, c = (at.tensor(dtype, shape=(None, None)) for _ in range(3))
    f = aesara.function([a, b, c], [aesara.dot(a, b.T.T), aesara.dot(a, b), c + aesara.dot(a.T.T, b),
                                     aesara.dot(a.T.T, b) * 1 + c])
    av, bv, cv = sample(rng, (m, k), dtype), sample(rng, (k, n), dtype), sample(rng, (m, n), dtype)
    before = cv.copy()
    r1, r2, r3, r4 = f(av, bv, cv)
    for got, want in ((r1, av @ bv), (r2, av @ bv), (r3, cv + av @ bv), (r4, av @ bv + cv)):
        assert_close(got, want)
    assert_close(cv, before)  # the accumulated input is not written


def test_transposed_left_operand(rng):
    x, y = at.dmatrix(), at.dmatrix()
    f = aesara.function([x, y], aesara.dot(x.T, y))
    xv, yv = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    assert_close(f(xv, yv), xv.T @ yv)


def test_aesaras_other_variable_methods_and_eval():
    x, m = at.dvector("x"), at.dmatrix("m")
    v = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(x.exp().eval({x: v}), np.exp(v))
    np.testing.assert_allclose(abs(x).sqrt().eval({x: v}), np.sqrt(np.abs(v)))
    for L, want in ((2, np.linalg.norm(v)), (1, 5.5), (0, 3), (np.inf, 3.0), (3, np.sum(np.abs(v) ** 3) ** (1 / 3))):
        np.testing.assert_allclose(x.norm(L).eval({x: v}), want)
    assert x.ptp().eval({x: v}) == 5.0 and m.trace().eval({m: np.eye(3)}) == 3.0
    assert x.copy(name="c").name == "c" and x.conj() is x
    np.testing.assert_array_equal(x.fill(3.0).eval({x: v}), [3.0] * 3)
    np.testing.assert_allclose(x.deg2rad().rad2deg().eval({x: v}), v)
    assert m.sum(acc_dtype="float64", dtype="float32").eval({m: np.ones((2, 2))}).dtype == np.float32
    assert at.constant(np.arange(3)).sum().eval() == 3  # no inputs
