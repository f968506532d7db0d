"""Random streams (aot/ops/random.py, scanaot.tensor.random): Philox4x32-10 against the
Random123 known answers, the IR's words against a Python Philox, each distribution
against scipy's (seeded, so every p-value is fixed: the bound 1e-4 is a regression
check, not a flaky one), Aesara 2.9's shapes and dtypes, the same numbers for every
CPU level and between `function` and a compiled library, streams that advance per
call and per scan step, and cuda compiles."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot import config
from scanaot.runtime.status import StatusError
from scanaot.tensor.random import basic as rb
from scanaot.tensor.random.utils import RandomStream

P_MIN = 1e-4
N = 20000
MASK = 0xFFFFFFFF


# ---------------------------------------------------------------- a Python Philox
def philox4x32_10(counter, key):
    """Random123's philox4x32 with 10 rounds, in Python integers."""
    c, (k0, k1) = list(counter), key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK]
    return c


def element_words(state, i, block=0):
    """The words element i of a draw uses (docs/random.md's counter layout)."""
    counter = [i & MASK, ((i >> 32) & 0xFFFF) | (block << 16), state[2] & MASK, (state[2] >> 32) & MASK]
    return philox4x32_10(counter, (state[0], state[1]))


@pytest.mark.parametrize("counter, key, expected", [
    ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    ([MASK] * 4, [MASK, MASK], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
     [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
])
def test_reference_philox_matches_random123_known_answers(counter, key, expected):
    assert philox4x32_10(counter, key) == expected


def _run(inputs, outputs, name, tmp_path, *args, **compile_kw):
    art = scanaot.compile(inputs, outputs, name=name, out_dir=tmp_path, **compile_kw)
    return rt.load(art.library)[name](*args)


def test_emitted_words_match_the_reference(tmp_path):
    """integers(0, 2**32) is word 0 exactly (Lemire with span 2**32 takes the high
    word); integers(0, 2**62) is words 0 and 1's top 30 bits; float32 uniform is
    word 0's top 24 bits. The counter's high word is used (counter > 2**32)."""
    state = at.lvector("state")
    outs = [rb.integers(0, 2 ** 32, size=(7,), rng=state), rb.integers(0, 2 ** 62, size=(7,), rng=state),
            rb.uniform(size=(7,), rng=state, dtype="float32")]
    for value in ([0, 0, 0], [0xA4093822, 0x299F31D0, (5 << 32) + 17], [MASK, 1, 3]):
        w0, w62, u32 = _run([state], outs, "words", tmp_path, np.array(value, dtype=np.int64))
        ref = [element_words(value, i) for i in range(7)]
        assert w0.tolist() == [w[0] for w in ref]
        assert w62.tolist() == [(w[0] << 30) | (w[1] >> 2) for w in ref]
        assert u32.tolist() == [np.float32((w[0] >> 8) * 2.0 ** -24) for w in ref]
    assert w0.dtype == np.int64 and u32.dtype == np.float32


def test_known_answer_through_the_ir(tmp_path):
    state = at.lvector("state")
    w0 = _run([state], rb.integers(0, 2 ** 32, rng=state), "kat", tmp_path, np.zeros(3, dtype=np.int64))
    assert int(w0) == 0x6627e8d5


def test_next_state_advances_the_counter_only(tmp_path):
    state = at.lvector("state")
    x = rb.normal(size=(4,), rng=state)
    new, _ = _run([state], [x.owner.outputs[0], x], "next", tmp_path, np.array([7, 8, 9], dtype=np.int64))
    assert new.tolist() == [7, 8, 10]


def test_an_element_depends_on_its_flat_index_only(tmp_path):
    state = at.lvector("state")
    outs = [rb.normal(size=(6,), rng=state), rb.normal(size=(2, 3), rng=state)]
    a, b = _run([state], outs, "flat", tmp_path, np.array([1, 2, 3], dtype=np.int64))
    assert np.array_equal(a.reshape(2, 3), b)


# ---------------------------------------------------------------- distributions
CONTINUOUS = [  # name, draw(rng, size), scipy frozen distribution
    ("uniform", lambda r, s: rb.uniform(2.0, 5.0, size=s, rng=r), stats.uniform(2.0, 3.0)),
    ("normal", lambda r, s: rb.normal(1.0, 2.0, size=s, rng=r), stats.norm(1.0, 2.0)),
    ("normal32", lambda r, s: rb.normal(-1.0, 0.5, size=s, rng=r, dtype="float32"), stats.norm(-1.0, 0.5)),
    ("gamma", lambda r, s: rb.gamma(2.5, 2.0, size=s, rng=r), stats.gamma(2.5, scale=0.5)),
    ("gamma_small", lambda r, s: rb.gamma(0.3, 1.0, size=s, rng=r), stats.gamma(0.3)),
    ("gamma_large", lambda r, s: rb.gamma(50.0, 0.1, size=s, rng=r), stats.gamma(50.0, scale=10.0)),
    ("beta", lambda r, s: rb.beta(2.0, 3.0, size=s, rng=r), stats.beta(2.0, 3.0)),
    ("beta_small", lambda r, s: rb.beta(0.5, 0.4, size=s, rng=r), stats.beta(0.5, 0.4)),
]
DISCRETE = [  # name, draw, scipy frozen distribution, support to bin (the rest pooled)
    ("bernoulli", lambda r, s: rb.bernoulli(0.3, size=s, rng=r), stats.bernoulli(0.3), range(2)),
    ("binomial", lambda r, s: rb.binomial(10, 0.3, size=s, rng=r), stats.binom(10, 0.3), range(9)),
    ("binomial_flip", lambda r, s: rb.binomial(25, 0.8, size=s, rng=r), stats.binom(25, 0.8), range(12, 26)),
    ("poisson", lambda r, s: rb.poisson(3.0, size=s, rng=r), stats.poisson(3.0), range(11)),
    ("poisson_ptrs", lambda r, s: rb.poisson(40.0, size=s, rng=r), stats.poisson(40.0), range(25, 58)),
    ("integers", lambda r, s: rb.integers(-3, 7, size=s, rng=r), stats.randint(-3, 7), range(-3, 7)),
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Every distribution's N samples from one library (one compile)."""
    table = CONTINUOUS + [d[:3] for d in DISCRETE]
    outs = [draw(rb.new_state(seed=100 + i), (N,)) for i, (_, draw, _) in enumerate(table)]
    art = scanaot.compile([], outs, name="dists", out_dir=tmp_path_factory.mktemp("dists"))
    values = rt.load(art.library)["dists"]()
    return {name: v for (name, _, _), v in zip(table, values)}


def _moments_agree(x: np.ndarray, dist) -> None:
    mean, var = dist.stats("mv")
    z = (x.mean() - mean) / np.sqrt(var / len(x))
    assert abs(z) < 4.5, (x.mean(), mean)
    assert abs(x.var() / var - 1) < 8 * np.sqrt(2 / len(x)) + 0.02, (x.var(), var)


@pytest.mark.parametrize("name, draw, dist", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_distribution(samples, name, draw, dist):
    x = samples[name]
    assert x.dtype == (np.float32 if name.endswith("32") else np.float64)
    assert stats.kstest(x, dist.cdf).pvalue > P_MIN
    _moments_agree(x.astype(np.float64), dist)


@pytest.mark.parametrize("name, draw, dist, support", DISCRETE, ids=[d[0] for d in DISCRETE])
def test_discrete_distribution(samples, name, draw, dist, support):
    x = samples[name]
    assert x.dtype == np.int64
    assert np.all(dist.pmf(x) > 0)  # only values of the support
    observed = [np.sum(x == k) for k in support] + [np.sum((x < support[0]) | (x > support[-1]))]
    probs = [dist.pmf(k) for k in support]
    expected = np.array(probs + [1 - sum(probs)]) * len(x)
    keep = expected > 0
    assert stats.chisquare(np.array(observed)[keep], expected[keep]).pvalue > P_MIN
    _moments_agree(x, dist)


def test_binomial_with_large_n_uses_the_normal_approximation(tmp_path):
    """(1 - p)**n underflows for n p above ~575: the moments still hold."""
    x = _run([], rb.binomial(100000, 0.3, size=(N,), rng=rb.new_state(3)), "bigbin", tmp_path)
    _moments_agree(x, stats.binom(100000, 0.3))
    assert x.min() >= 0 and x.max() <= 100000


def test_choice_and_permutation_statistics():
    srng = RandomStream(seed=11)
    p = np.array([0.1, 0.0, 0.2, 0.7])
    weighted = srng.choice(np.array([10, 20, 30, 40]), size=(N // 4, 4), p=p)
    plain = srng.choice(5, size=(N,))
    no_replace = srng.choice(10, size=(4,), replace=False)
    perm = srng.permutation(6)
    rows = srng.permutation(np.arange(12.0).reshape(4, 3))
    w, c, nr, pm, rw = scanaot.function([], [weighted, plain, no_replace, perm, rows])()
    counts = [np.sum(w == v) for v in (10, 30, 40)]
    assert np.sum(w == 20) == 0
    assert stats.chisquare(counts, np.array([0.1, 0.2, 0.7]) * w.size).pvalue > P_MIN
    assert stats.chisquare(np.bincount(c, minlength=5)).pvalue > P_MIN
    assert len(set(nr.tolist())) == 4 and nr.min() >= 0 and nr.max() < 10
    assert sorted(pm.tolist()) == list(range(6)) and pm.dtype == np.int8  # Aesara: x's dtype
    assert sorted(rw[:, 0].tolist()) == [0, 3, 6, 9] and np.array_equal(rw[:, 1] - rw[:, 0], np.ones(4))


def test_permutations_are_uniform():
    srng = RandomStream(seed=5)
    f = scanaot.function([], srng.permutation(3))  # the stream advances per call
    codes = [tuple(f().tolist()) for _ in range(600)]
    counts = [codes.count(c) for c in sorted(set(codes))]
    assert len(counts) == 6 and stats.chisquare(counts).pvalue > P_MIN


def test_weighted_choice_without_replacement_first_pick():
    srng = RandomStream(seed=9)
    f = scanaot.function([], srng.choice(3, size=(2,), replace=False, p=np.array([0.6, 0.3, 0.1])))
    firsts = np.array([f()[0] for _ in range(400)])
    assert stats.chisquare(np.bincount(firsts, minlength=3), np.array([0.6, 0.3, 0.1]) * 400).pvalue > P_MIN


def test_multivariate_normal():
    srng = RandomStream(seed=2)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    mean = np.array([1.0, -2.0, 0.5])
    x = scanaot.function([], srng.multivariate_normal(mean, cov, size=(N,)))()
    assert x.shape == (N, 3)
    assert np.allclose(x.mean(0), mean, atol=0.05) and np.allclose(np.cov(x.T), cov, atol=0.06)
    projected = (x - mean) @ np.linalg.inv(np.linalg.cholesky(cov)).T
    assert stats.kstest(projected[:, 2], "norm").pvalue > P_MIN


# ---------------------------------------------------------------- Aesara's typing
def test_types_follow_aesara():
    """What Aesara 2.9.4 gives for the same calls (checked against it)."""
    srng = RandomStream(1)
    cases = [
        (srng.normal(at.vector(), 1.0), "float64", (False,)),
        (srng.normal(0, 1, size=(3, 1)), "float64", (False, True)),
        (srng.normal(at.fvector(), 1.0), "float64", (False,)),
        (srng.uniform(size=(2,)), "float64", (False,)),
        (srng.integers(0, 5, size=(2,)), "int64", (False,)),
        (srng.integers(at.iscalar(), 5, size=(2,)), "int64", (False,)),
        (srng.choice(5, size=(2,)), "int64", (False,)),
        (srng.choice(at.vector(), size=(2,)), "float64", (False,)),
        (srng.permutation(5), "int8", (False,)),
        (srng.binomial(10, 0.5), "int64", ()),
        (srng.poisson(3.0), "int64", ()),
        (srng.bernoulli(0.5, size=(4,)), "int64", (False,)),
        (srng.gamma(2.0, 3.0), "float64", ()),
        (srng.beta(2.0, 3.0, size=(2, 2)), "float64", (False, False)),
    ]
    for var, dtype, bcast in cases:
        assert (var.dtype, var.broadcastable) == (dtype, bcast)
    assert srng.multivariate_normal(at.vector(), at.matrix(), size=(3,)).ndim == 2
    with config.change_flags(floatX="float32"):
        assert srng.normal(0, 1).dtype == "float32"


def test_parameters_broadcast_against_the_size():
    srng = RandomStream(4)
    loc = at.vector("loc")
    x = srng.normal(loc, 1e-9, size=(2, 3))
    y = srng.normal(at.matrix("m"), at.vector("s"))  # no size: the broadcast shape
    f = scanaot.function([loc], x)
    assert np.allclose(f(np.array([1.0, 2.0, 3.0])), [[1, 2, 3], [1, 2, 3]])
    g = scanaot.function([y.owner.inputs[-2], y.owner.inputs[-1]], y)
    assert g(np.zeros((4, 3)), np.ones(3)).shape == (4, 3)
    with pytest.raises(StatusError):
        f(np.ones(4))  # 4 does not broadcast to 3


def test_bad_arguments_are_named():
    srng = RandomStream(0)
    with pytest.raises(ValueError, match="more dims than size"):
        srng.normal(at.matrix(), 1.0, size=(3,))
    with pytest.raises(TypeError, match="dtype must be a float"):
        srng.normal(0, 1, dtype="int32")
    with pytest.raises(TypeError, match="rng must be a stream state"):
        rb.normal(0, 1, rng=at.vector())
    with pytest.raises(TypeError, match="size must be"):
        srng.uniform(size="3")
    with pytest.raises(ValueError, match="rng"):
        srng.gen(rb.normal, 0, 1, rng=rb.new_state(1))
    with pytest.raises(AttributeError, match="no distribution"):
        srng.lognormal  # noqa: B018


# ---------------------------------------------------------------- the same numbers everywhere
def _mixed(rng_for):
    return [rb.uniform(size=(50,), rng=rng_for(0)), rb.normal(size=(50,), rng=rng_for(1)),
            rb.gamma(0.7, 1.0, size=(50,), rng=rng_for(2)), rb.poisson(30.0, size=(50,), rng=rng_for(3)),
            rb.binomial(8, 0.4, size=(50,), rng=rng_for(4)), rb.integers(0, 7, size=(50,), rng=rng_for(5)),
            rb.beta(0.5, 0.5, size=(50,), rng=rng_for(6))]


def test_same_numbers_for_every_cpu_level_and_function(tmp_path):
    states = [rb.new_state(seed=3, draw=i) for i in range(7)]
    outs = _mixed(lambda i: states[i])
    results = []
    for cpu in ("x86-64-v2", "x86-64-v3"):
        art = scanaot.compile([], outs, name=f"lvl{cpu[-1]}", cpu=cpu, out_dir=tmp_path)
        results.append(rt.load(art.library)[f"lvl{cpu[-1]}"]())
    results.append(scanaot.function([], outs)())
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


def test_streams_advance_per_call_and_reseed():
    srng = RandomStream(seed=3)
    f = scanaot.function([], srng.normal(0, 1, size=(3,)))
    first, second = f(), f()
    assert not np.array_equal(first, second)
    srng.seed(3)
    assert np.array_equal(f(), first)
    srng.seed(4)
    assert not np.array_equal(f(), first)


def test_two_streams_with_one_seed_agree_and_draws_differ():
    a, b = RandomStream(seed=8), RandomStream(seed=8)
    xa, ya = a.uniform(size=(5,)), a.uniform(size=(5,))
    xb = b.uniform(size=(5,))
    va, wa = scanaot.function([], [xa, ya])()
    assert np.array_equal(va, scanaot.function([], xb)())
    assert not np.array_equal(va, wa)


def test_a_draw_inside_scan_differs_per_step():
    srng = RandomStream(seed=1)
    out, updates = scanaot.scan(lambda: srng.normal(0, 1, size=(2,)), n_steps=4)
    f = scanaot.function([], out, updates=updates)
    steps = f()
    assert steps.shape == (4, 2) and len({tuple(r) for r in steps.tolist()}) == 4
    assert not np.array_equal(f(), steps)


# ---------------------------------------------------------------- cuda
def test_draws_compile_for_cuda(tmp_path):
    """Every distribution, its state as an input and as a stream's shared state."""
    state = at.lvector("state")
    art = scanaot.compile([state], _mixed(lambda i: state), name="rand", target="cuda", out_dir=tmp_path)
    assert art.library.exists()
    srng = RandomStream(seed=3)
    shared = scanaot.compile([], [srng.normal(size=(4,)), srng.binomial(5, 0.3, size=(4,))], name="streams",
                             target="cuda", out_dir=tmp_path)
    assert {v["name"] for v in shared.manifest["shared"]} and all(v["updated"] for v in shared.manifest["shared"])


def test_symbolic_and_empty_sizes():
    srng = RandomStream(1)
    n = at.lscalar("n")
    f = scanaot.function([n], [srng.normal(size=(n, 2)), srng.gamma(0.5, 1.0, size=(0,))])
    assert [a.shape for a in f(0)] == [(0, 2), (0,)]
    assert [a.shape for a in f(3)] == [(3, 2), (0,)]


def test_choice_without_replacement_fills_a_multi_dim_size():
    f = scanaot.function([], RandomStream(5).choice(10, size=(2, 3), replace=False))
    for _ in range(5):
        got = f()
        assert got.shape == (2, 3) and len(set(got.ravel().tolist())) == 6 and set(got.ravel()) <= set(range(10))
