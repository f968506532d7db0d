"""Aesara programs move by swapping the imports: the names live where Aesara keeps
them (aesara.tensor.*, aesara.gradient, aesara.scan.views, aesara.printing), config
flags parse as AESARA_FLAGS do, and names scanaot lacks say so."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot import config
from scanaot.gradient import (DisconnectedInputError, consider_constant, disconnected_grad, grad, hessian,
                              jacobian, zero_grad)

# ---------------------------------------------------------------- import locations


def test_names_live_where_aesara_keeps_them():
    from scanaot.tensor.basic import as_tensor_variable, cast, switch, zeros  # noqa: F401
    from scanaot.tensor.extra_ops import __name__ as extra_ops  # noqa: F401
    from scanaot.tensor.math import abs, dot, exp, sum, tanh  # noqa: F401,A004
    from scanaot.tensor.nlinalg import __name__ as nlinalg  # noqa: F401
    from scanaot.tensor.nnet import sigmoid
    from scanaot.tensor.shape import shape
    from scanaot.tensor.slinalg import __name__ as slinalg  # noqa: F401
    from scanaot.tensor.subtensor import inc_subtensor, set_subtensor  # noqa: F401
    from scanaot.tensor.type import TensorType
    from scanaot.tensor.var import TensorConstant, TensorVariable  # noqa: F401
    from scanaot.scan.views import foldl, foldr, map, reduce  # noqa: A004
    from scanaot.printing import debugprint
    assert sigmoid is at.sigmoid is at.nnet.sigmoid and at.shape(at.dvector()).ndim == 1 == shape(at.dmatrix()).ndim
    assert TensorType is at.TensorType and scanaot.debugprint is debugprint
    assert (scanaot.map, scanaot.reduce, scanaot.foldl, scanaot.foldr) == (map, reduce, foldl, foldr)
    assert scanaot.scan.map is map and scanaot.gradient.jacobian is jacobian is scanaot.jacobian
    assert at.math.pow is at.pow and at.math.sign is at.sign


def test_a_name_kept_in_another_aesara_module_is_still_found():
    assert at.nlinalg.dot is at.dot  # scanaot keeps dot in one family, Aesara in several modules


@pytest.mark.parametrize("module, name", [(at, "no_such_op"), (at.nnet, "no_such_op"),
                                          (at.math, "no_such_op"), (scanaot, "no_such_op")])
def test_an_unsupported_name_says_so(module, name):
    with pytest.raises(AttributeError, match=r"'no_such_op' is not supported by scanaot.*docs/tensor.md"):
        getattr(module, name)


def test_dunder_lookups_stay_plain_attribute_errors():
    assert not hasattr(at, "__wrapped__") and not hasattr(at.nnet, "__path__")

# ---------------------------------------------------------------- type constructors


@pytest.mark.parametrize("name, dtype, broadcastable", [
    ("scalar", "float64", ()), ("dvector", "float64", (False,)), ("fmatrix", "float32", (False, False)),
    ("row", "float64", (True, False)), ("col", "float64", (False, True)), ("irow", "int32", (True, False)),
    ("fcol", "float32", (False, True)), ("btensor3", "int8", (False,) * 3), ("ltensor4", "int64", (False,) * 4),
    ("tensor5", "float64", (False,) * 5), ("wtensor7", "int16", (False,) * 7)])
def test_constructors(name, dtype, broadcastable):
    var = getattr(at, name)("v")
    assert (var.dtype, var.broadcastable, var.name) == (dtype, broadcastable, "v")


def test_plural_constructors_as_aesara():
    a, b = at.dmatrices("a", "b")
    assert (a.name, b.name, a.dtype, a.ndim) == ("a", "b", "float64", 2)
    assert [v.dtype for v in at.fvectors("x", "y", "z")] == ["float32"] * 3
    assert [v.dtype for v in at.iscalars(2)] == ["int32", "int32"]
    assert at.tensor3s("t").ndim == 3  # one name: one variable, as Aesara's
    assert [v.broadcastable for v in at.cols("c", "d")] == [(False, True)] * 2
    for name in ("matrices", "tensor4s", "lrows", "dtensor5s", "scalars"):
        assert callable(getattr(at, name))
    for wrong in ("matrixs", "bvectors"):  # the old misspelling; Aesara has no b/w plurals
        with pytest.raises(AttributeError, match="not supported"):
            getattr(at, wrong)


def test_tensor_type_is_callable_with_a_shape():
    x = at.TensorType("float64", shape=(None, 1))("x")
    assert (x.dtype, x.broadcastable, x.name) == ("float64", (False, True), "x")
    assert isinstance(at.vector().type, at.TensorType)
    assert at.TensorType("int32", shape=())() .ndim == 0
    with pytest.raises(TypeError, match=r"shape\[0\]"):
        at.TensorType("float64", shape=("a",))

# ---------------------------------------------------------------- config


def _flags_in_subprocess(env: dict, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env}
    env.pop("SCANAOT_FLOATX", None) if "SCANAOT_FLOATX" not in env else None
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True)


def test_floatx_defaults_to_float64_like_aesara():
    proc = _flags_in_subprocess({"SCANAOT_FLAGS": ""}, "import scanaot.tensor as at; print(at.vector().dtype)")
    assert proc.stdout.strip() == "float64", proc.stderr


def test_scanaot_flags_use_aesara_syntax():
    proc = _flags_in_subprocess({"SCANAOT_FLAGS": "floatX=float32, device=cpu,lonely"},
                                "import scanaot; print(scanaot.config.floatX)")
    assert proc.stdout.strip() == "float32", proc.stderr
    assert "does not recognise the flag 'device'" in proc.stderr
    assert "'lonely' has no value" in proc.stderr


def test_a_bad_floatx_is_an_error_naming_it():
    proc = _flags_in_subprocess({"SCANAOT_FLAGS": "floatX=float16"}, "import scanaot.config")
    assert proc.returncode != 0 and "config.floatX must be one of float64, float32" in proc.stderr
    with pytest.raises(ValueError, match="config.floatX"):
        config.floatX = "float8"


def test_floatx_is_assignable_and_change_flags_restores_it(monkeypatch):
    monkeypatch.setattr(config, "floatX", "float64")
    with config.change_flags(floatX="float32"):
        assert at.vector().dtype == "float32" and at.as_tensor_variable(1.5).dtype == "float32"
    assert config.floatX == "float64"
    config.floatX = "float32"
    assert at.matrix().dtype == "float32"
    with pytest.raises(ValueError, match="unknown flag 'nope'"):
        with config.change_flags(nope=1):
            pass


def test_parse_config_string():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert config.parse_config_string("a=1,b.c=x,,d") == {"a": "1", "b__c": "x"}

# ---------------------------------------------------------------- scan views


def test_map_reduce_foldl_foldr_against_numpy():
    x = at.dvector("x")
    mapped, _ = scanaot.map(lambda v: v * 2 + 1, sequences=[x])
    step = lambda v, acc: acc * 2 + v  # noqa: E731 - order matters, so foldl and foldr differ
    zero = at.constant(0.0, dtype="float64")  # 0.0 alone is float32 (exact), as in Aesara
    left, _ = scanaot.foldl(step, sequences=[x], outputs_info=[zero])
    right, _ = scanaot.foldr(step, sequences=[x], outputs_info=[zero])
    total, _ = scanaot.reduce(lambda v, acc: acc + v, sequences=[x], outputs_info=[zero])
    f = scanaot.function([x], [mapped, left, right, total])
    data = np.array([1.0, 2.0, 3.0, 4.0])

    def fold(values):
        acc = 0.0
        for v in values:
            acc = acc * 2 + v
        return acc

    got = f(data)
    np.testing.assert_allclose(got[0], data * 2 + 1)
    np.testing.assert_allclose([got[1], got[2], got[3]], [fold(data), fold(data[::-1]), data.sum()])

# ---------------------------------------------------------------- gradient helpers


def _finite_jacobian(fn, x, eps=1e-6):
    cols = []
    for j in range(x.size):
        step = np.zeros_like(x)
        step[j] = eps
        cols.append((fn(x + step) - fn(x - step)) / (2 * eps))
    return np.stack(cols, axis=-1)


def test_jacobian_and_hessian_against_finite_differences():
    x = at.dvector("x")
    expr = at.tanh(x) * x.sum()
    cost = (x ** 3).sum() + x.prod()
    f = scanaot.function([x], [jacobian(expr, x), hessian(cost, x)])
    value = np.array([0.3, -0.2, 0.5])
    jac, hess = f(value)
    np.testing.assert_allclose(jac, _finite_jacobian(lambda v: np.tanh(v) * v.sum(), value), rtol=1e-6, atol=1e-8)
    gradient = lambda v: 3 * v ** 2 + np.prod(v) / v  # noqa: E731
    np.testing.assert_allclose(hess, _finite_jacobian(gradient, value), rtol=1e-6, atol=1e-7)


def test_jacobian_of_a_list_and_bad_input():
    x, y = at.dvector("x"), at.dvector("y")
    jx, jy = jacobian(x * y, [x, y])
    got = scanaot.function([x, y], [jx, jy])(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(got[0], np.diag([3.0, 4.0]))
    np.testing.assert_allclose(got[1], np.diag([1.0, 2.0]))
    with pytest.raises(TypeError, match="jacobian: expression must be a vector"):
        jacobian(at.dmatrix("m"), x)
    with pytest.raises(TypeError, match=r"hessian: wrt\[0\] must be a vector"):
        hessian(at.dmatrix("m").sum(), at.dmatrix("m"))


def test_zero_grad_consider_constant_and_disconnected_grad():
    x, y = at.dvector("x"), at.dvector("y")
    # zero_grad / consider_constant: the gradient through them is zero, still connected
    cost = (x * zero_grad(y)).sum() + (consider_constant(x) * y).sum()
    gx, gy = grad(cost, [x, y])
    f = scanaot.function([x, y], [cost, gx, gy])
    value, gxv, gyv = f(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert value == 22.0
    np.testing.assert_allclose(gxv, [3.0, 4.0])
    np.testing.assert_allclose(gyv, [1.0, 2.0])
    assert scanaot.function([y], grad(zero_grad(y).sum(), y))(np.ones(2)).tolist() == [0.0, 0.0]
    # disconnected_grad: what only it reaches is disconnected
    with pytest.raises(DisconnectedInputError, match="'y'"):
        grad((disconnected_grad(y) * x).sum(), y)
    assert grad((disconnected_grad(y) * x).sum(), y, return_disconnected="None",
                disconnected_inputs="ignore") is None


def test_grad_consider_constant_argument_and_known_grads():
    x = at.dvector("x")
    h = x * 2
    cost = (h * x).sum()  # d/dx = 4x; with h held constant: 2x
    g = grad(cost, x, consider_constant=[h])
    start = grad(None, x, known_grads={h: at.ones_like(h) * 3})  # dh/dx = 2: 6 per element
    f = scanaot.function([x], [g, start])
    got = f(np.array([1.0, 2.0]))
    np.testing.assert_allclose(got[0], [2.0, 4.0])
    np.testing.assert_allclose(got[1], [6.0, 6.0])


def test_disconnected_inputs_raise_warn_ignore():
    x, y = at.dvector("x"), at.dvector("y")
    cost = x.sum()
    with pytest.raises(DisconnectedInputError, match="not part of the cost's graph"):
        grad(cost, y)
    with pytest.warns(UserWarning, match="not part of the cost's graph"):
        grad(cost, y, disconnected_inputs="warn")
    assert grad(cost, y, disconnected_inputs="ignore").ndim == 1
    with pytest.raises(ValueError, match="disconnected_inputs must be one of"):
        grad(cost, y, disconnected_inputs="sometimes")
    with pytest.raises(ValueError, match="known_grads"):
        grad(None, x)

# ---------------------------------------------------------------- debugprint


def test_debugprint_prints_the_tree_with_ids():
    x = at.dvector("x")
    y = at.tanh(x) + x
    y.name = "y"
    text = scanaot.debugprint(y, file="str")
    assert text.splitlines() == ["add [id A] 'y'", " |tanh [id B] ''", " | |x [id C]", " |x [id C]"]
    typed = scanaot.debugprint([y], file="str", print_type=True)
    assert "<float64, (False,)>" in typed


def test_debugprint_of_a_scan_and_of_a_function(capsys):
    x = at.dvector("x")
    out, _ = scanaot.scan(lambda v, acc: acc + v, sequences=[x], outputs_info=[at.constant(0.0, dtype="float64")])
    text = scanaot.debugprint(out, file="str")
    assert "Inner graphs:" in text and " >add" in text
    f = scanaot.function([x], out[-1])
    scanaot.printing.debugprint(f)
    assert "scan" in capsys.readouterr().out
    with pytest.raises(TypeError, match="debugprint: expected a variable"):
        scanaot.debugprint(42)
