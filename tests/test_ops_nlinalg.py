"""Matrix functions (ops/nlinalg.py) against numpy: inverse, det, solve, cholesky;
singular and indefinite input; gradients against finite differences; a Newton
step in a scan; a cuda compile."""
import numpy as np
import pytest

import scanaot
import scanaot as aesara
import scanaot.tensor as at
from conftest import assert_close
from scanaot.runtime import StatusError
from conftest import check_grads


def well_conditioned(rng, n, dtype):
    return (rng.normal(size=(n, n)) + n * np.eye(n)).astype(dtype)


def spd(rng, n, dtype):
    a = rng.normal(size=(n, n))
    return (a @ a.T + n * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [0, 1, 5])
def test_against_numpy(dtype, n, rng):
    a, s = at.matrix("a", dtype=dtype), at.matrix("s", dtype=dtype)
    b, B = at.vector("b", dtype=dtype), at.matrix("B", dtype=dtype)
    f = aesara.function([a, s, b, B], [at.matrix_inverse(a), at.det(a), at.solve(a, b), at.solve(a, B),
                                       at.cholesky(s), at.cholesky(s, lower=False)])
    av, sv = well_conditioned(rng, n, dtype), spd(rng, n, dtype)
    bv, Bv = rng.normal(size=n).astype(dtype), rng.normal(size=(n, 3)).astype(dtype)
    got = f(av, sv, bv, Bv)
    ref = [np.linalg.inv(av), np.linalg.det(av), np.linalg.solve(av, bv), np.linalg.solve(av, Bv),
           np.linalg.cholesky(sv), np.linalg.cholesky(sv).T]
    tol = 1e-4 if dtype == "float32" else 1e-10
    for r, e in zip(got, ref):
        assert r.dtype == dtype
        np.testing.assert_allclose(r, e.astype(dtype), rtol=tol, atol=tol)


def test_pivoting_and_int_input():
    a = at.imatrix("a")
    f = aesara.function([a], [at.matrix_inverse(a), at.det(a), at.solve(a, at.constant(np.array([1, 2])))])
    av = np.array([[0, 1], [2, 3]], dtype="int32")  # a zero first pivot: needs a row swap
    inv, d, x = f(av)
    assert_close(inv, np.linalg.inv(av.astype("float64")), "float64")
    assert_close(d, np.linalg.det(av.astype("float64")))
    assert_close(x, np.linalg.solve(av.astype("float64"), [1.0, 2.0]))


def test_singular_and_indefinite_input_raise():
    a = at.dmatrix("a")
    f_inv, f_det = aesara.function([a], at.matrix_inverse(a)), aesara.function([a], at.det(a))
    f_solve = aesara.function([a], at.solve(a, at.ones_like(a[0])))
    f_chol = aesara.function([a], at.cholesky(a))
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    for f in (f_inv, f_solve):
        with pytest.raises(StatusError, match="singular"):
            f(singular)
    assert f_det(singular) == 0.0  # numpy's det of a singular matrix
    with pytest.raises(StatusError, match="not positive definite"):
        f_chol(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(StatusError, match="incompatible shapes"):
        f_inv(np.ones((2, 3)))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="MatrixInverse: expected x to be a float matrix"):
        at.matrix_inverse(at.dvector())
    with pytest.raises(TypeError, match="Det: expected x to be a float matrix"):
        at.det(at.dtensor3())
    with pytest.raises(TypeError, match="solve: expected b to be a vector or matrix"):
        at.solve(at.dmatrix(), at.dtensor3())


def test_gradients_against_finite_differences(rng):
    a, s, b, B = at.dmatrix("a"), at.dmatrix("s"), at.dvector("b"), at.dmatrix("B")
    low = at.cholesky(s)
    cost = (at.sin(at.matrix_inverse(a)).sum() + at.det(a) ** 2 + at.tanh(at.solve(a, b)).sum()
            + (at.solve(a, B) ** 2).sum() + at.cos(low).sum() + at.cholesky(s, lower=False)[0, 1])
    sv = spd(rng, 3, "float64")
    args = [well_conditioned(rng, 3, "float64"), np.tril(sv), rng.normal(size=3), rng.normal(size=(3, 2))]
    check_grads([a, s, b, B], cost, args, rtol=1e-5, atol=1e-6)


def test_newton_steps_in_a_scan():
    """Newton's method for x**3 + x = c (coordinatewise): J is diagonal, solved per step."""
    x0, c = at.dvector("x0"), at.dvector("c")

    def step(x, c):
        jac = at.switch(at.eq(at.arange(3).dimshuffle(0, "x"), at.arange(3).dimshuffle("x", 0)),
                        (3 * x ** 2 + 1).dimshuffle(0, "x"), 0.0)
        return x - at.solve(jac, x ** 3 + x - c)

    xs, _ = scanaot.scan(step, outputs_info=x0, non_sequences=c, n_steps=30)
    f = aesara.function([x0, c], xs[-1])
    cv = np.array([2.0, 10.0, -30.0])
    x = f(np.zeros(3), cv)
    np.testing.assert_allclose(x ** 3 + x, cv, rtol=1e-10)


def test_matrix_functions_compile_for_cuda(tmp_path):
    a, b = at.fmatrix("a"), at.fvector("b")
    outs = [at.matrix_inverse(a), at.det(a), at.solve(a, b), at.cholesky(a)]
    art = scanaot.compile([a, b], outs, name="nlin", target="cuda", out_dir=tmp_path)
    assert art.library.exists()
