"""Argument names never break the generated call path or the C header.

The fast call path is generated Python source and the header declares C
parameters, both from the manifest's names: names that clash with the generated
code's own names, Python or C keywords, and functions with no inputs must all
work (or, for C, be renamed argN), positionally and by keyword.
"""
import shutil
import subprocess

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.packaging.manifest import arg_names

# names of the generated code's locals and globals, old and new, and Python keywords
CLASHING = [("v0", "s1"), ("np", "d"), ("a", "p"), ("b", "out"), ("status", "dims"),
            ("lambda", "None"), ("class", "def"), ("_x1", "_x0"), ("_general", "_fn"), ("call", "_d")]


def two_input_graph(first: str, second: str):
    """first: a float64 vector, second: a float64 scalar; out = first * 2 + second."""
    x, y = at.dvector(first), at.dscalar(second)
    return [x, y], x * 2 + y


@pytest.mark.parametrize("names", CLASHING, ids="-".join)
def test_function_with_clashing_names(names):
    inputs, out = two_input_graph(*names)
    f = scanaot.function(inputs, out, name="clash")
    x = np.arange(3.0)
    expected = x * 2 + 1.5
    np.testing.assert_array_equal(f(x, 1.5), expected)
    np.testing.assert_array_equal(f(**{names[0]: x, names[1]: 1.5}), expected)


@pytest.mark.parametrize("names", CLASHING, ids="-".join)
def test_compiled_library_with_clashing_names(names, tmp_path):
    inputs, out = two_input_graph(*names)
    lib = rt.load(scanaot.compile(inputs, out, name="clash", out_dir=tmp_path).library)
    kernel = lib.clash
    assert kernel.arg_names == arg_names(inputs)
    x = np.arange(3.0)
    expected = x * 2 + 1.5
    np.testing.assert_array_equal(kernel(x, 1.5), expected)
    np.testing.assert_array_equal(kernel(**dict(zip(kernel.arg_names, [x, 1.5]))), expected)


def test_generated_source_holds_no_argument_name(tmp_path):
    inputs, out = two_input_graph("weird_name_one", "weird_name_two")
    lib = rt.load(scanaot.compile(inputs, out, name="plain", out_dir=tmp_path).library)
    source = lib.plain._fast.__source__
    assert "weird_name" not in source and "plain" not in source
    assert source.startswith("def call(_x0, _x1, /, _out=None):")


def test_keyword_names_work_by_keyword(tmp_path):
    lam, none = at.dscalar("lambda"), at.dscalar("None")
    lib = rt.load(scanaot.compile([lam, none], lam - none, name="kw", out_dir=tmp_path).library)
    assert lib.kw.arg_names == ["lambda", "None"]
    assert lib.kw(**{"lambda": 5.0, "None": 2.0}) == 3.0
    assert lib.kw(5.0, **{"None": 2.0}) == 3.0
    assert lib.kw(5.0, 2.0) == 3.0
    with pytest.raises(rt.ArgumentError, match="given twice"):
        lib.kw(5.0, **{"lambda": 2.0})


def test_zero_input_function():
    f = scanaot.function([], at.ones(()) * 2, name="two")
    assert f() == 2.0


def test_zero_input_library(tmp_path):
    art = scanaot.compile([], [at.ones(()) * 2, at.ones((3,))], name="consts", out_dir=tmp_path)
    lib = rt.load(art.library)
    two, ones = lib.consts()
    assert two == 2.0
    np.testing.assert_array_equal(ones, np.ones(3))
    assert lib.consts._fast.__source__.startswith("def call(_out=None):")
    with pytest.raises(rt.ArgumentError, match="takes 0 arguments"):
        lib.consts(1.0)


@pytest.mark.parametrize("name, kept", [
    ("lambda", True), ("None", True), ("x1", True), ("int", False), ("double", False), ("restrict", False),
    ("auto", False), ("class", False), ("dims", False), ("_Bool", False), ("__x", False),
    ("INT32_MAX", False), ("scanaot_memref_float32_1d", False), ("caf\u00e9", False), ("a-b", False),
    ("2x", False), ("", False), ("out", False), ("self", False), ("cotangents", False)])
def test_arg_names_keep_only_usable_names(name, kept):
    names = arg_names([at.dscalar(name or None), at.dscalar("y")])
    assert names == ([name, "y"] if kept else ["arg0", "y"])


def test_arg_names_are_unique():
    named = lambda *ns: [at.dscalar(n) for n in ns]  # noqa: E731
    assert arg_names(named("x", "x", "arg1")) == ["x", "arg1", "arg2"]
    assert arg_names(named("arg1", None)) == ["arg1", "arg1_"]
    assert arg_names(named("int", "arg0")) == ["arg0", "arg1"]
    assert arg_names(named("int", "arg0", "arg0")) == ["arg0", "arg1", "arg2"]


@pytest.mark.parametrize("compiler", ["cc", "c++"])
def test_header_with_renamed_names_compiles(tmp_path, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler}")
    x, y, z = at.dvector("int"), at.dscalar("lambda"), at.dscalar("restrict")
    art = scanaot.compile([x, y, z], x * y + z, name="hdr", out_dir=tmp_path)
    assert rt.load(art.library).hdr.arg_names == ["arg0", "lambda", "arg2"]
    source = tmp_path / ("use.c" if compiler == "cc" else "use.cpp")
    source.write_text('#include "hdr.h"\nint main(void) { return 0; }\n')
    proc = subprocess.run([compiler, "-fsyntax-only", "-Wall", "-Werror", "-I", str(tmp_path), str(source)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_output_names_never_clash_with_arguments_or_dims(tmp_path):
    """Outputs named like an argument, `dims` or a keyword are renamed outN; the header
    compiles and gradient cotangents follow the same names."""
    x, y = at.dvector("x"), at.dvector("y")
    o1, o2, o3 = x * 2, x + y, x - y
    o1.name, o2.name, o3.name = "dims", "x", "total"
    art = scanaot.compile([x, y], [o1, o2, o3], name="outs", out_dir=tmp_path, grad_wrt=[x])
    forward, backward = art.manifest["functions"]
    assert [o["name"] for o in forward["outputs"]] == ["out0", "out1", "total"]
    assert forward["vjp"]["cotangents"] == ["cot_out0", "cot_out1", "cot_total"]
    (tmp_path / "use.c").write_text('#include "outs.h"\nint main(void) { return 0; }\n')
    subprocess.run(["cc", "-fsyntax-only", "-Wall", "-Werror", "-I", str(tmp_path), str(tmp_path / "use.c")],
                   check=True)
    lib = rt.load(art.library)
    one = np.ones(3)
    grad = lib.outs.vjp(one, one, cotangents={"out0": one, "out1": one, "total": one})
    np.testing.assert_array_equal(grad, np.full(3, 4.0))


def test_function_input_named_self():
    x = at.dvector("self")
    f = scanaot.function([x], x * 2)
    np.testing.assert_array_equal(f(self=np.ones(2)), [2, 2])
