"""The build cache's structural key (aot/graph/fingerprint.py): a hit emits nothing, and
no two graphs that compute different things ever share an entry."""
import shutil

import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot.graph.fingerprint import fingerprint
from scanaot.packaging import artifact


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SCANAOT_CACHE", str(root))
    return root


def _scan_program(step, name="h"):
    h0 = at.dvector(name)
    hs, _ = scanaot.scan(step, outputs_info=h0, n_steps=3)
    return [h0], hs


def _key(program):
    inputs, out = program
    return fingerprint([("f", inputs, [out], None)])


def test_the_same_program_traced_twice_has_one_fingerprint():
    step = lambda h: at.tanh(h) * 2 + h.sum()  # noqa: E731
    assert _key(_scan_program(step)) == _key(_scan_program(step))


# pairs that differ in one thing emission reads: a constant inside the step, an op's
# attribute (axis), a dtype, a variable's name (it is in the run-time check messages)
STEPS = {
    "constant in the step": (lambda h: h * 2, lambda h: h * 3),
    "reduction axis": (lambda h: h + at.outer(h, h * h + 1).sum(axis=0), lambda h: h + at.outer(h, h * h + 1).sum(axis=1)),
    "transpose": (lambda h: h + at.dot(at.outer(h, at.arange(3.0)), at.ones(3)),
                  lambda h: h + at.dot(at.outer(h, at.arange(3.0)).T, at.ones(h.shape[0]))[:h.shape[0]]),
    "cast": (lambda h: h + at.cast(h * 0.5, "int64"), lambda h: h + at.cast(h * 0.5, "int32") * 2),
}


@pytest.mark.parametrize("what", sorted(STEPS))
def test_programs_differing_inside_a_step_have_other_fingerprints(what):
    first, second = STEPS[what]
    assert _key(_scan_program(first)) != _key(_scan_program(second))


def test_names_are_part_of_the_fingerprint():
    assert _key(_scan_program(lambda h: h * 2, "h")) != _key(_scan_program(lambda h: h * 2, "g"))


@pytest.mark.parametrize("what", sorted(STEPS))
def test_each_program_runs_its_own_code_from_the_cache(private_cache, what):
    h = np.array([0.5, -1.25, 2.0])
    results = []
    for _ in range(2):  # the second round is served from the cache
        for step in STEPS[what]:
            inputs, out = _scan_program(step)
            results.append(scanaot.function(inputs, out)(h))
    np.testing.assert_allclose(results[0], results[2])
    np.testing.assert_allclose(results[1], results[3])
    assert not np.allclose(results[0], results[1])


def test_a_cache_hit_emits_nothing(private_cache, monkeypatch):
    x = at.dvector("x")
    scanaot.function([x], at.exp(x) + 1)

    def refuse(*args, **kwargs):
        raise AssertionError("a cache hit emitted IR")

    monkeypatch.setattr(artifact, "_emit", refuse)
    y = at.dvector("x")
    again = scanaot.function([y], at.exp(y) + 1)
    np.testing.assert_allclose(again(np.array([0.0, 1.0])), np.exp([0.0, 1.0]) + 1)


def test_a_swapped_entry_of_another_graph_is_refused(private_cache):
    """The library and its record of `x * 3` copied under the key of `x * 2`: the sealed
    manifest names another graph, so the entry is rebuilt, not served."""
    x = at.fvector("x")
    times2, times3 = scanaot.function([x], x * 2), scanaot.function([x], x * 3)
    for suffix in (".so", ".json"):
        target = times2.library_path.with_suffix(suffix)
        target.chmod(0o600)
        shutil.copyfile(times3.library_path.with_suffix(suffix), target)
    again = scanaot.function([x], x * 2)
    np.testing.assert_array_equal(again(np.ones(3, "float32")), [2, 2, 2])


def test_an_attribute_it_cannot_write_down_falls_back_to_the_ir(private_cache, monkeypatch):
    x = at.dvector("x")
    out = at.exp(x) * 2
    # emission ignores it; the fingerprint cannot judge it
    monkeypatch.setattr(out.owner.op, "opaque", object(), raising=False)
    assert fingerprint([("f", [x], [out], None)]) is None
    f = scanaot.function([x], out)
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), 2 * np.exp([0.0, 1.0]))
    assert "graph" not in f.manifest["compiler"]
