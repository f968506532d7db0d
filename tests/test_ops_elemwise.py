"""The elementwise scalar functions (ops/elemwise.py) against numpy/scipy: Aesara's
typing, float32/float64/int values, edge values (0-size, inf, nan), gradients against
float64 finite differences, inside a scan step, and a cuda compile. Several functions
share one compiled function to keep the file fast."""
import numpy as np
import pytest
import scipy.special as sp

import scanaot as aesara
import scanaot.tensor as at
from conftest import check_grads
from scanaot.graph.rules import NullGradientError

TOL = {"float32": dict(rtol=2e-6, atol=2e-6), "float64": dict(rtol=1e-11, atol=1e-12)}

# name -> (numpy/scipy reference, domain); domains: any real, (-1, 1), > 0, >= 1
UNARY = {
    "sqr": (np.square, "real"), "square": (np.square, "real"), "reciprocal": (np.reciprocal, "positive"),
    "inv": (np.reciprocal, "positive"), "log1p": (np.log1p, "unit"), "expm1": (np.expm1, "real"),
    "log2": (np.log2, "positive"), "log10": (np.log10, "positive"), "exp2": (np.exp2, "real"),
    "erf": (sp.erf, "real"), "erfc": (sp.erfc, "real"), "erfinv": (sp.erfinv, "unit"),
    "gammaln": (sp.gammaln, "gamma"), "psi": (sp.psi, "gamma"), "digamma": (sp.psi, "gamma"),
    "tri_gamma": (lambda v: sp.polygamma(1, v), "gamma"), "tan": (np.tan, "unit"),
    "arcsin": (np.arcsin, "unit"), "arccos": (np.arccos, "unit"), "arctan": (np.arctan, "real"),
    "sinh": (np.sinh, "real"), "cosh": (np.cosh, "real"), "arcsinh": (np.arcsinh, "real"),
    "arccosh": (np.arccosh, "above1"), "arctanh": (np.arctanh, "unit"), "trunc": (np.trunc, "real"),
    "expit": (sp.expit, "real"),
}
DOMAINS = {
    "real": np.array([-3.7, -2.5, -1.0, -0.3, 0.0, 0.25, 0.5, 1.5, 2.9]),
    "unit": np.array([-0.999, -0.7, -0.2, 0.0, 0.1, 0.4, 0.5, 0.6, 0.95]),
    "positive": np.array([0.01, 0.3, 0.7, 1.0, 2.5, 7.0, 13.0, 100.0, 1e5]),
    "above1": np.array([1.0, 1.01, 1.5, 2.0, 3.0, 10.0, 55.0, 1e3, 1e6]),
    # away from lgamma's and psi's roots (1, 2; 1.4616...), where only absolute accuracy holds
    "gamma": np.array([-3.3, -0.5, 0.001, 0.3, 0.7, 2.5, 5.9, 11.0, 170.0]),
}


def _batch(dtype, names):
    """One function over one input per domain; returns {name: result} for `names`."""
    inputs = {d: at.tensor(dtype, shape=(None,), name=d) for d in DOMAINS}
    f = aesara.function(list(inputs.values()), [getattr(at, n)(inputs[UNARY[n][1]]) for n in names])
    return dict(zip(names, f(*[v.astype(dtype) for v in DOMAINS.values()])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_functions_match_numpy_and_scipy(dtype):
    got = _batch(dtype, list(UNARY))
    for name, (ref, domain) in UNARY.items():
        expected = ref(DOMAINS[domain].astype(dtype).astype("float64"))
        assert got[name].dtype == dtype, name
        np.testing.assert_allclose(got[name], expected, **TOL[dtype], err_msg=name)


def test_typing_follows_aesara():
    iv, bv, fv = at.ivector(), at.bvector(), at.fvector()
    assert at.log1p(iv).dtype == "float64" and at.erfinv(iv).dtype == "float64"
    assert at.reciprocal(bv).dtype == "float32" and at.gammaln(bv).dtype == "float32"
    assert at.sqr(iv).dtype == "int32" and at.sqr(fv).dtype == "float32"
    assert at.arctan2(iv, fv).dtype == "float64" and at.arctan2(fv, fv).dtype == "float32"
    assert at.clip(iv, 0, 5).dtype == "int32" and at.clip(fv, at.dscalar(), 1).dtype == "float64"
    assert at.isnan(fv).dtype == "bool" and at.isinf(iv).dtype == "bool"
    assert at.round(fv).dtype == "float32" and at.iround(fv).dtype == "int64"
    assert at.where(fv > 0, iv, 0).dtype == "int32"
    assert at.clip(at.dmatrix(), at.dvector(), 1.0).broadcastable == (False, False)


def test_rounding_needs_floats_and_a_known_mode():
    with pytest.raises(TypeError, match="round_half_to_even needs float inputs"):
        at.round(at.ivector())
    with pytest.raises(ValueError, match="mode must be one of"):
        at.round(at.dvector(), mode="up")
    with pytest.raises(TypeError, match="clip takes 3 inputs|missing"):
        at.clip(at.dvector(), 0)  # noqa


def test_integer_inputs():
    iv = at.ivector("i")
    f = aesara.function([iv], [at.log1p(iv), at.sqr(iv), at.clip(iv, -1, 2), at.isnan(iv), at.isinf(iv),
                               at.reciprocal(iv), at.arctan2(iv, 2)])
    v = np.array([0, 1, -3, 4, 7], dtype="int32")
    log1p, sqr, clip, nan, inf, rec, atan2 = f(v)
    np.testing.assert_allclose(log1p[:2], np.log1p(v[:2].astype("float64")), rtol=1e-14)
    assert sqr.dtype == "int32" and np.array_equal(sqr, v * v)
    assert clip.dtype == "int32" and np.array_equal(clip, np.clip(v, -1, 2))
    assert nan.dtype == "bool" and not nan.any() and not inf.any()
    np.testing.assert_allclose(rec[1:], 1.0 / v[1:], rtol=1e-14)
    np.testing.assert_allclose(atan2, np.arctan2(v, 2.0), rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_ternary_and_broadcasting(dtype):
    m, row, col = at.tensor(dtype, shape=(None, None)), at.tensor(dtype, shape=(1, None)), \
        at.tensor(dtype, shape=(None, 1))
    f = aesara.function([m, row, col], [at.arctan2(m, row), at.clip(m, col, row + 1), at.where(m > 0, m, row),
                                        at.maximum(row, col), at.minimum(m, col), at.switch(col < 0, m, 0)])
    rng = np.random.default_rng(0)
    mv, rv, cv = (rng.uniform(-2, 2, size=s).astype(dtype) for s in [(3, 4), (1, 4), (3, 1)])
    expected = [np.arctan2(mv, rv), np.where(mv < cv, cv, np.where(mv > rv + 1, rv + 1, mv)),
                np.where(mv > 0, mv, rv), np.maximum(rv, cv), np.minimum(mv, cv), np.where(cv < 0, mv, 0)]
    for name, g, e in zip(["arctan2", "clip", "where", "maximum", "minimum", "switch"], f(mv, rv, cv), expected):
        assert g.shape == (3, 4) and g.dtype == dtype, name
        np.testing.assert_allclose(g, e, **TOL[dtype], err_msg=name)


def test_round_modes():
    x = at.dvector("x")
    f = aesara.function([x], [at.round(x), at.round(x, "half_away_from_zero"), at.round_half_to_even(x),
                              at.round_half_away_from_zero(x), at.iround(x)])
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -3.7, np.inf, np.nan])
    even, away, even2, away2, iround = f(v)
    np.testing.assert_array_equal(even, np.round(v))
    np.testing.assert_array_equal(even2, np.round(v))
    expected_away = np.sign(v) * np.floor(np.abs(v) + 0.5)
    np.testing.assert_array_equal(away, expected_away)
    np.testing.assert_array_equal(away2, expected_away)
    assert iround.dtype == "int64" and list(iround[:6]) == [-2, -2, 0, 0, 2, 2]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(dtype):
    x = at.tensor(dtype, shape=(None,), name="x")
    names = ["isnan", "isinf", "erf", "erfc", "erfinv", "gammaln", "log1p", "expm1", "arctanh", "reciprocal"]
    f = aesara.function([x], [getattr(at, n)(x) for n in names])
    v = np.array([np.nan, np.inf, -np.inf, 1.0, -1.0, 0.0, 1.5, -0.0], dtype=dtype)
    refs = {"isnan": np.isnan, "isinf": np.isinf, "erf": sp.erf, "erfc": sp.erfc, "erfinv": sp.erfinv,
            # C's lgamma(-inf) is inf
            "gammaln": lambda v: np.where(v == -np.inf, np.inf, sp.gammaln(v)), "log1p": np.log1p, "expm1": np.expm1, "arctanh": np.arctanh,
            "reciprocal": np.reciprocal}
    with np.errstate(all="ignore"):
        for name, got in zip(names, f(v)):
            np.testing.assert_allclose(got, refs[name](v), **TOL[dtype], err_msg=name)
        empty = f(np.zeros(0, dtype))
    assert all(r.shape == (0,) for r in empty)
    assert empty[0].dtype == "bool"


def test_erfinv_near_one_and_large_gamma():
    x = at.dvector("x")
    f = aesara.function([x], [at.erfinv(x), at.gammaln(x), at.psi(x)])
    poles = np.array([-1.0, -7.0, -np.inf])
    np.testing.assert_array_equal(f(poles)[1], [np.inf] * 3)
    assert np.isnan(f(poles)[2]).all()
    tails = np.array([1 - 1e-15, -(1 - 1e-12), 1e-300, 0.5 - 1e-17])
    np.testing.assert_allclose(f(tails)[0], sp.erfinv(tails), rtol=1e-12)
    big = np.array([1e10, 1e100, 12345.678])
    _, lg, psi = f(big)
    np.testing.assert_allclose(lg, sp.gammaln(big), rtol=1e-13)
    np.testing.assert_allclose(psi, sp.psi(big), rtol=1e-13)


# ---------------------------------------------------------------- gradients
def test_gradients_of_the_unary_functions():
    skip = {"trunc", "tri_gamma"}  # piecewise constant; no gradient (as Aesara)
    inputs = [at.dvector(d) for d in DOMAINS]
    by_domain = dict(zip(DOMAINS, inputs))
    # keep inside each function's domain with margin for the finite differences
    args = {"real": np.array([-1.7, -0.3, 0.2, 0.9]), "unit": np.array([-0.8, -0.2, 0.3, 0.7]),
            "positive": np.array([0.4, 1.0, 2.5, 6.0]), "above1": np.array([1.2, 2.0, 3.5, 9.0]),
            "gamma": np.array([-2.5, -0.5, 0.3, 3.7])}
    cost = 0
    for k, (name, (_, domain)) in enumerate(UNARY.items()):
        if name not in skip:
            cost = cost + (k + 1) * getattr(at, name)(by_domain[domain]).sum()
    check_grads(inputs, cost, [args[d] for d in DOMAINS], rtol=1e-5)


def test_gradients_of_arctan2_clip_where():
    a, b, lo = at.dvector("a"), at.dvector("b"), at.dvector("lo")
    cost = (at.arctan2(a, b) * b).sum() + (at.clip(a, lo, 0.5) ** 2).sum() + at.where(a > 0, a * b, b).sum()
    check_grads([a, b, lo], cost, [np.array([-0.9, -0.2, 0.3, 0.8]), np.array([0.5, -1.2, 0.7, 2.0]),
                                   np.array([-0.5, -0.6, 0.1, 0.0])])


def test_clip_gradient_at_the_bounds_is_aesaras():
    x, lo, hi = at.dvector("x"), at.dvector("lo"), at.dvector("hi")
    grads = aesara.function([x, lo, hi], aesara.grad(at.clip(x, lo, hi).sum(), [x, lo, hi]))
    gx, glo, ghi = grads(np.array([0.0, 1.0, -2.0, 3.0]), np.array([0.0, 0.0, 0.0, 0.0]),
                         np.array([1.0, 1.0, 1.0, 1.0]))
    assert list(gx) == [1, 1, 0, 0] and list(glo) == [0, 0, 1, 0] and list(ghi) == [0, 0, 0, 1]


def test_second_derivative_of_tri_gamma_is_refused():
    x = at.dvector("x")
    with pytest.raises(NullGradientError, match="tri_gamma"):
        aesara.grad(at.tri_gamma(x).sum(), x)


def test_in_a_scan_step_with_its_gradient():
    x0, seq = at.dscalar("x0"), at.dvector("seq")

    def step(s, h):
        return at.log1p(at.sqr(h)) + at.erf(s) * at.arctan(h) + at.clip(s, -0.5, 0.5)

    hs, _ = aesara.scan(step, sequences=[seq], outputs_info=[x0])
    cost = hs[-1]
    args = [np.array(0.3), np.array([0.2, -0.4, 0.9, 0.1])]
    f = aesara.function([x0, seq], cost)
    h = 0.3
    for s in args[1]:
        h = np.log1p(h * h) + sp.erf(s) * np.arctan(h) + np.clip(s, -0.5, 0.5)
    np.testing.assert_allclose(f(*args), h, rtol=1e-12)
    check_grads([x0, seq], cost, args)


def test_compiles_for_cuda(tmp_path):
    x, y = at.fvector("x"), at.fvector("y")
    outs = [at.erfinv(x), at.gammaln(y), at.psi(y), at.round(x), at.isnan(x), at.arctan2(x, y),
            at.clip(x, -0.5, 0.5), at.log1p(at.sqr(x)), at.sinh(x)]
    art = aesara.compile([x, y], outs, name="elemwise_special", target="cuda", out_dir=tmp_path)
    assert art.manifest["target"]["name"] == "cuda"
    assert art.manifest["target"]["device_code"]["kernels"] >= 1


def test_variable_methods():
    x = at.dvector("x")
    f = aesara.function([x], [x.clip(0, 1), x.round(), x.round("half_away_from_zero")])
    clipped, even, away = f(np.array([-0.5, 0.5, 1.5, 2.5]))
    assert list(clipped) == [0, 0.5, 1, 1] and list(even) == [-0, 0, 2, 2] and list(away) == [-1, 1, 2, 3]


def test_float32_exp_is_within_one_ulp_and_handles_the_edges():
    """exp (and sigmoid, which uses it) in float32 is a vectorizable polynomial, not a
    libm call per element: it must stay within 1 ulp, give subnormals, inf and 0."""
    x = at.fvector("x")
    f = aesara.function([x], [at.exp(x), at.sigmoid(x)])
    v = np.linspace(-110, 95, 400001, dtype="float32")
    specials = np.array([np.inf, -np.inf, np.nan, 0.0, 88.72, 88.73, -87.33, -87.34, -104.0], "float32")
    e, s = f(np.concatenate([v, specials]))
    ref = np.exp(v.astype("float64"))
    normal = (ref > np.finfo("float32").tiny) & (ref < np.finfo("float32").max)
    ulps = np.abs(e[:len(v)][normal] - ref[normal]) / np.spacing(ref[normal].astype("float32"))
    assert ulps.max() <= 1.0
    subnormal = (ref > 0) & ~normal & (ref < 1)
    assert (np.abs(e[:len(v)][subnormal] - ref[subnormal]) <= 2 * np.finfo("float32").smallest_subnormal).all()
    with np.errstate(over="ignore"):
        want = np.exp(specials)
    np.testing.assert_array_equal(np.isinf(e[len(v):]), np.isinf(want))
    assert np.isnan(e[len(v) + 2]) and e[len(v) + 8] == 0.0
    np.testing.assert_allclose(s[:len(v)], 1 / (1 + np.exp(-v.astype("float64"))), atol=2e-7)


def test_float32_log_is_within_one_ulp_and_handles_the_edges():
    x = at.fvector("x")
    f = aesara.function([x], at.log(x))
    v = np.concatenate([np.geomspace(1e-45, 3e38, 200001).astype("float32"),
                        np.linspace(0.5, 2, 100001, dtype="float32")])
    ref = np.log(v.astype("float64"))
    assert (np.abs(f(v) - ref) / np.spacing(np.abs(ref).astype("float32"))).max() <= 1.0
    got = f(np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0], "float32"))
    np.testing.assert_array_equal(got[[0, 1, 3, 6]], [-np.inf, -np.inf, np.inf, 0.0])
    assert np.isnan(got[[2, 4, 5]]).all()
