"""Shared variables and updates, as Aesara 2.9 has them: typing and aliasing of
values, `function`'s updates (simultaneous, checked, givens, default updates), and
updates inside `scan` (the tutorial's counter, `until`, zero steps, `strict`)."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from scanaot.scan import ScanError


# ---------------------------------------------------------------- values
def test_shared_typing_follows_the_value():
    assert aesara.shared(0).dtype == "int64" and aesara.shared(0.5).dtype == "float64"
    assert aesara.shared(np.float32(1)).dtype == "float32"
    assert aesara.shared(np.zeros((1, 3))).broadcastable == (False, False)  # Aesara 2.9: from shape= only
    assert aesara.shared(np.zeros((1, 3)), shape=(1, None)).broadcastable == (True, False)
    assert aesara.shared(np.ones(2), name="w").name == "w"
    with pytest.raises(ValueError, match="does not fit the value's shape"):
        aesara.shared(np.zeros((2, 3)), shape=(1, None))
    with pytest.raises(TypeError, match="dtype complex128"):
        aesara.shared(np.zeros(2, dtype=complex))


def test_get_and_set_value_copy_unless_borrowed():
    a = np.ones(3)
    s = aesara.shared(a)
    a[0] = 5
    assert s.get_value()[0] == 1  # copied on creation
    b = aesara.shared(a, borrow=True)
    a[1] = 7
    assert b.get_value()[1] == 7 and b.get_value(borrow=True) is a
    got = b.get_value()
    got[2] = -1
    assert b.get_value()[2] == 1
    new = np.zeros(3)
    b.set_value(new, borrow=True)
    assert b.get_value(borrow=True) is new
    b.set_value(new)
    assert b.get_value(borrow=True) is not new


def test_set_value_converts_as_aesara_filters():
    s = aesara.shared(np.ones(3))
    s.set_value(np.ones(3, dtype="float32"))  # a safe cast
    assert s.get_value().dtype == np.float64
    with pytest.raises(TypeError, match="wrong number of dimensions: expected 1, got 2"):
        s.set_value(np.ones((2, 2)))
    i = aesara.shared(np.int32(3))
    with pytest.raises(TypeError, match="cannot store float of dtype float64 accurately as int32"):
        i.set_value(2.5)
    i.set_value(4.0)  # exact
    assert i.get_value() == 4
    aesara.shared(np.int32(3), allow_downcast=True).set_value(2.5)
    strict = aesara.shared(np.ones(2), strict=True)
    with pytest.raises(TypeError, match="strict"):
        strict.set_value([1.0, 2.0])
    row = aesara.shared(np.zeros((1, 2)), shape=(1, None))
    with pytest.raises(TypeError, match="broadcastable"):
        row.set_value(np.zeros((3, 2)))


# ---------------------------------------------------------------- function updates
def test_updates_are_simultaneous_and_outputs_see_the_old_values():
    a, b = aesara.shared(1.0), aesara.shared(2.0)
    swap = aesara.function([], [a, b], updates=[(a, b), (b, a)])
    assert [float(v) for v in swap()] == [1.0, 2.0] and (a.get_value(), b.get_value()) == (2.0, 1.0)
    c = aesara.shared(0.0)
    count = aesara.function([], c, updates={c: c + 1})
    assert [float(count()) for _ in range(3)] == [0.0, 1.0, 2.0] and c.get_value() == 3.0
    double = aesara.function([], updates=OrderedDict([(c, c * 2)]))
    assert double() == [] and c.get_value() == 6.0


def test_an_update_must_have_its_variables_type():
    a = aesara.shared(1.0, name="a")
    with pytest.raises(TypeError, match=r"'a' \(float64, ndim=0\).*float32, ndim=1"):
        aesara.function([], [], updates=[(a, at.fvector())])
    with pytest.raises(TypeError, match="not a shared variable"):
        aesara.function([], a * 2, updates=[(at.dscalar(), a)])
    with pytest.raises(ValueError, match="updated twice"):
        aesara.function([], a * 2, updates=[(a, a + 1), (a, a + 2)])
    with pytest.raises(TypeError, match="shared variables are implicit inputs"):
        aesara.function([a], a * 2)


def test_givens_and_inputs_with_shared_values():
    y, z = at.dscalar("y"), at.dscalar("z")
    assert aesara.function([z], y * 2, givens={y: z + 1})(1.0) == 4.0
    w = aesara.shared(np.array([1.0, 2.0]), name="w")
    x = at.dvector("x")
    f = aesara.function([x], at.dot(x, w))
    assert f(np.array([1.0, 1.0])) == 3.0
    w.set_value(np.array([2.0, 2.0]))
    assert f(np.array([1.0, 1.0])) == 4.0  # read at each call, not at compile time
    assert f(x=np.array([1.0, 0.0])) == 2.0


def test_default_updates_apply_unless_turned_off():
    s = aesara.shared(0.0)
    s.default_update = s + 1
    f = aesara.function([], s * 10)
    assert [float(f()) for _ in range(2)] == [0.0, 10.0] and s.get_value() == 2.0
    g = aesara.function([], s * 10, no_default_updates=True)
    g()
    assert s.get_value() == 2.0
    h = aesara.function([], s * 10, updates=[(s, s - 1)])  # an explicit update wins
    h()
    assert s.get_value() == 1.0


def test_a_training_loop_decreases_its_loss_and_matches_numpy_gradients():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=20)
    W = aesara.shared(np.zeros(3), name="W")
    x, y = at.dmatrix("x"), at.dvector("y")
    loss = ((at.dot(x, W) - y) ** 2).mean()
    train = aesara.function([x, y], loss, updates=[(W, W - 0.1 * aesara.grad(loss, W))])
    losses = [float(train(X, Y)) for _ in range(20)]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    w = np.zeros(3)
    for _ in range(20):
        w = w - 0.1 * 2 * X.T @ (X @ w - Y) / len(Y)
    np.testing.assert_allclose(W.get_value(), w, rtol=1e-10)


def test_the_gradient_with_respect_to_a_shared_matrix_inside_scan():
    W = aesara.shared(np.array([[0.5, -0.2], [0.1, 0.4]]), name="W")
    h0 = at.dvector("h0")
    hs, _ = aesara.scan(lambda h: at.tanh(at.dot(W, h)), outputs_info=h0, n_steps=3)
    grad = aesara.function([h0], aesara.grad(hs[-1].sum(), W))
    h = np.array([1.0, 2.0])

    def cost(w):
        v = h
        for _ in range(3):
            v = np.tanh(w @ v)
        return v.sum()

    w0, eps, fd = W.get_value(), 1e-6, np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            d = np.zeros((2, 2))
            d[i, j] = eps
            fd[i, j] = (cost(w0 + d) - cost(w0 - d)) / (2 * eps)
    np.testing.assert_allclose(grad(h), fd, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- updates inside scan
def test_the_tutorials_counter():
    k = aesara.shared(0)
    values, updates = aesara.scan(lambda: {k: k + 1}, n_steps=3)
    assert values is None and list(updates) == [k]
    f = aesara.function([], [], updates=updates)
    f()
    assert k.get_value() == 3
    f()
    assert k.get_value() == 6


@pytest.mark.parametrize("updates_first", [False, True])
def test_a_step_sees_the_shared_value_of_the_previous_step(updates_first):
    x = at.dvector("x")
    k = aesara.shared(0.0)

    def step(v):
        out, upd = v * k, {k: k + 1}
        return (upd, out) if updates_first else (out, upd)

    outputs, updates = aesara.scan(step, sequences=x)
    f = aesara.function([x], outputs, updates=updates)
    np.testing.assert_array_equal(f(np.ones(3)), [0.0, 1.0, 2.0])
    assert k.get_value() == 3.0
    np.testing.assert_array_equal(f(np.ones(2)), [3.0, 4.0])


def test_updates_with_until_taps_and_zero_steps():
    c = aesara.shared(np.int64(0))
    doubled, updates = aesara.scan(lambda a: (a * 2, {c: c + 1}, aesara.scan.utils.until(a * 2 > 10)),
                                   outputs_info=at.constant(1.0, dtype="float64"), n_steps=50)
    f = aesara.function([], doubled, updates=updates)
    np.testing.assert_array_equal(f(), [2.0, 4.0, 8.0, 16.0])
    assert c.get_value() == 4  # one per step run
    fib = aesara.shared(np.float64(0.0))
    seq, updates = aesara.scan(lambda a, b: (a + b, {fib: fib + a}),
                               outputs_info=dict(initial=at.constant(np.array([1.0, 1.0])), taps=[-2, -1]),
                               n_steps=5)
    np.testing.assert_array_equal(aesara.function([], seq, updates=updates)(), [2, 3, 5, 8, 13])
    assert fib.get_value() == 1 + 1 + 2 + 3 + 5
    z = aesara.shared(5.0)
    n = at.iscalar("n")
    _, updates = aesara.scan(lambda: {z: z * 2}, n_steps=n)
    g = aesara.function([n], [], updates=updates)
    g(0)
    assert z.get_value() == 5.0  # no step ran: the value stays
    g(2)
    assert z.get_value() == 20.0


def test_strict_names_a_shared_variable_used_but_not_passed():
    w = aesara.shared(2.0, name="w")
    x = at.dvector("x")
    with pytest.raises(ScanError, match="strict=True but .* uses 'w'"):
        aesara.scan(lambda v: v * w, sequences=x, strict=True)
    out, _ = aesara.scan(lambda v, w: v * w, sequences=x, non_sequences=w, strict=True)
    np.testing.assert_array_equal(aesara.function([x], out)(np.array([1.0, 2.0])), [2.0, 4.0])


def test_scan_update_errors_name_the_variable():
    k = aesara.shared(0, name="k")
    with pytest.raises(ScanError, match=r"updates 'k' \(int64, ndim=0\).*float64"):
        aesara.scan(lambda: {k: k + 0.5}, n_steps=2)
    with pytest.raises(ScanError, match="keyed by shared variables"):
        aesara.scan(lambda: {at.dscalar(): 1.0}, n_steps=2)
