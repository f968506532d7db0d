"""The manifest schema (runtime/schema.py): what it accepts, and the place each refusal names."""
import copy
import json
from pathlib import Path

import pytest

import scanaot.runtime as rt
from scanaot.runtime import fastcall, schema, shapes
from scanaot.runtime import manifest as manifest_mod

GOLDEN = Path(__file__).parent / "golden" / "abi1_power.so"


@pytest.fixture
def golden():
    return manifest_mod.read(GOLDEN.read_bytes())


def newer(m: dict) -> dict:
    """The golden manifest with everything later compilers add: variants, library, checks, a vjp."""
    m = copy.deepcopy(m)
    m["library"] = "power"
    m["target"].update(fastmath="none", variants=[{"cpu": "x86-64-v2", "base": "x86-64-v2",
                                                  "features": ["sse4.2"], "suffix": "__x86_64_v2"}])
    m["target"]["future_key"] = {"anything": [1]}
    m["future_key"] = 1
    grad = copy.deepcopy(m["functions"][0])
    grad.update(name="power_vjp", symbol="scanaot_power__power_vjp",
                args=grad["args"] + [{"name": "cot_out0", "dtype": "float32", "ndim": 1,
                                      "shape": [{"dim": [2, 0]}]}])
    m["functions"][0].update(vjp={"function": "power_vjp", "wrt": ["A"], "cotangents": ["cot_out0"]},
                             checks=["a scan: n_steps >= 0"])
    m["functions"].append(grad)
    return m


def cuda(m: dict) -> dict:
    m = copy.deepcopy(m)
    m["target"].update(name="cuda", arch="sm_90", ptxas=None,
                       device_code={"format": "ptx", "arch": "sm_90", "kernels": 2})
    for a in m["functions"][0]["args"] + m["functions"][0]["outputs"]:
        a["host_access"] = False
    return m


def test_accepts_what_compilers_write(golden):
    for m in (golden, newer(golden), cuda(golden)):
        schema.validate(m)


def set_path(m: dict, path: str, value):
    """`path` like 'functions.0.args.1.dtype'; value DEL deletes the key."""
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in parents:
        m = m[k]
    if value is DEL:
        del m[last]
    else:
        m[last] = value


DEL = object()
REFUSED = [  # (path, value, message)
    ("functions.0.args.1.dtype", "float16", r"functions\[0\].args\[1\].dtype: expected one of 'bool', .*got 'float16'"),
    ("functions.0.args.1.ndim", -1, r"functions\[0\].args\[1\].ndim: expected an integer from 0 to 32, got -1"),
    ("functions.0.args.1.ndim", True, r"ndim: expected an integer .*got True"),
    ("functions.0.args.0.ndim", 2, r"functions\[0\].args\[0\].shape: expected 2 items \(ndim\)"),
    ("functions.0.args.0.shape.0", {"dim": [1, 0]}, r"args\[0\].shape\[0\]: expected \{'dim': \[0, 0\]\}"),
    ("functions.0.outputs.0.shape.0", {"dim": [5, 0]}, r"outputs\[0\].shape\[0\].dim: expected \[argument, axis\] of an existing"),
    ("functions.0.outputs.0.shape.0", {"dim": [0, 1]}, r"outputs\[0\].shape\[0\].dim: expected"),
    ("functions.0.outputs.0.shape.0", {"arg": 0}, r"shape\[0\].arg: expected the index of a scalar"),
    ("functions.0.outputs.0.shape.0", {"const": 2.5}, r"shape\[0\].const: expected a size"),
    ("functions.0.outputs.0.shape.0", {"op": "pow", "args": [{"const": 1}, {"const": 2}]}, r"shape\[0\].op: expected one of 'add'"),
    ("functions.0.outputs.0.shape.0", {"op": "neg", "args": []}, r"shape\[0\].args: expected a list of the 1 operand"),
    ("functions.0.outputs.0.shape.0", {"const": 1, "dim": [0, 0]}, r"shape\[0\]: expected a shape expression"),
    ("functions.0.constraints.0.args.1", {"const": 2 ** 63}, r"constraints\[0\].args\[1\].const: expected a bool, a 64-bit"),
    ("functions.0.constraints.0.rel", "lt", r"constraints\[0\].rel: expected one of 'eq', 'ge'"),
    ("functions.0.constraints.0.text", ["k"], r"constraints\[0\].text: expected a list of 2 items"),
    ("functions.0.outputs.0.bounded", [], r"outputs\[0\].bounded: expected 1 items \(ndim\)"),
    ("functions.0.dims_length", 2, r"functions\[0\].dims_length: expected 1 \(the outputs' dims"),
    ("functions.0.workspace_bytes", 64, r"workspace_bytes: expected an integer from 0 to 0"),
    ("functions.0.symbol", "__init__", r"symbol: expected a symbol scanaot_LIBRARY__NAME"),
    ("functions.0.name", "not-c", r"functions\[0\].name: expected a C identifier"),
    ("functions.0.graph_hash", "abc", r"graph_hash: expected a SHA-256"),
    ("functions.0.args.1.name", "A", r"functions\[0\].args\[\].name: 'A' appears twice"),
    ("functions.0.outputs", [], r"functions\[0\].outputs: expected a list of at least 1 items"),
    ("functions.0.extra", 1, r"functions\[0\].extra: unknown key"),
    ("functions.0.checks", [1], r"functions\[0\].checks\[0\]: expected a string"),
    ("functions.0.vjp", {"function": "nope", "wrt": [], "cotangents": []}, r"vjp.function: expected the name of another"),
    ("functions.0.vjp", {"function": "power", "wrt": [], "cotangents": []}, r"vjp.function: expected the name of another"),
    ("functions.0.args", DEL, r"functions\[0\].args: missing"),
    ("target.cpu", 5, r"target.cpu: expected a string, got 5"),
    ("target.variants", [], r"target.variants: expected a list of at least 1 items"),
    ("target.variants", [{"cpu": "x", "features": "avx", "suffix": ""}], r"target.variants\[0\].features: expected a list"),
    ("target.variants", [{"cpu": "x", "features": [], "suffix": "a-b"}], r"variants\[0\].suffix: expected '' or a C identifier"),
    ("target.fastmath", "unsafe", r"target.fastmath: expected one of 'none', 'contract', 'fast'"),
    ("library", "lib power", r"library: expected a C identifier"),
    ("compiler", None, r"compiler: expected an object, got None"),
    ("functions", [], r"functions: expected a list of at least 1 items"),
]


@pytest.mark.parametrize("path, value, message", REFUSED, ids=[f"{p}={v!r}"[:50] for p, v, _ in REFUSED])
def test_refusals_name_the_place(golden, path, value, message):
    m = copy.deepcopy(golden)
    set_path(m, path, value)
    with pytest.raises(rt.LibraryError, match=r"^lib.so: invalid manifest: (\S*\.)?" + message):
        schema.validate(m, "lib.so")


def test_references_across_functions(golden):
    m = newer(golden)
    m["functions"][0]["vjp"]["wrt"] = ["k2"]
    with pytest.raises(rt.LibraryError, match=r"functions\[0\].vjp.wrt\[0\]: expected an argument of power"):
        schema.validate(m)
    m = newer(golden)
    m["functions"][0]["vjp"]["cotangents"] = ["A_bar"]
    with pytest.raises(rt.LibraryError, match=r"vjp.cotangents\[0\]: expected an argument of power_vjp"):
        schema.validate(m)
    m = newer(golden)
    m["functions"][1]["name"] = "power"
    with pytest.raises(rt.LibraryError, match=r"functions\[\].name: 'power' appears twice"):
        schema.validate(m)


def test_cuda_fields(golden):
    for path, value, message in [("target.arch", DEL, r"target.arch: missing"),
                                 ("target.arch", "gfx90a", r"target.arch: expected an NVIDIA architecture"),
                                 ("target.device_code.format", "elf", r"device_code.format: expected one of"),
                                 ("functions.0.args.0.host_access", 1, r"host_access: expected true or false")]:
        m = cuda(golden)
        set_path(m, path, value)
        with pytest.raises(rt.LibraryError, match=message):
            schema.validate(m)


def test_deep_expressions_are_refused(golden):
    expr = {"arg": 1}
    for _ in range(schema.MAX_EXPRESSION_DEPTH + 2):
        expr = {"op": "neg", "args": [expr]}
    m = copy.deepcopy(golden)
    m["functions"][0]["constraints"][0]["args"][0] = expr
    with pytest.raises(rt.LibraryError, match="expected an expression at most 64 levels deep"):
        schema.validate(m)


def test_values_in_messages_are_cut_short(golden):
    m = copy.deepcopy(golden)
    m["functions"][0]["args"][0]["dtype"] = "x" * 10000
    with pytest.raises(rt.LibraryError) as err:
        schema.validate(m)
    assert len(str(err.value)) < 250 and str(err.value).endswith("...")


def test_every_shape_op_has_an_arity_and_a_python_form():
    assert set(shapes.ARITY) == set(shapes._OPS) == set(fastcall._PY_OPS)
    for op, n in shapes.ARITY.items():
        assert fastcall._PY_OPS[op].count("{") == n, op


def test_fast_path_source_takes_only_integers_from_the_manifest(golden):
    """A float constant and odd names reach the generated code as globals, never as text."""
    spec = copy.deepcopy(golden["functions"][0])
    spec["name"] = "evil"
    spec["args"][0]["name"] = "print"
    spec["constraints"][0]["args"][1] = {"const": 0.5}
    schema.validate({**golden, "functions": [spec]})
    call = fastcall.build(spec, lambda *a: 0, lambda *a: "general")
    assert "0.5" not in call.__source__ and "evil" not in call.__source__ and "print" not in call.__source__
    assert json.dumps(spec)  # unchanged, still plain data
