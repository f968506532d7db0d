"""Shared variables in deployed libraries: the manifest marks them, the library ships
their values (a sealed safetensors section), the runtime keeps them in `State`s, and
C programs in `scanaot_LIB_state` (docs/runtime.md, docs/c_abi.md)."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.graph.shared import shared
from scanaot.runtime import manifest as manifest_mod
from scanaot.runtime.elf import STATE_SECTION, sections
from scanaot.runtime.state import StateError

W0 = np.random.default_rng(0).standard_normal((3, 2))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """One library: `count` (updates the counter k), `peek` (reads it), `loss` (reads the
    weight matrix W, with a gradient kernel for W and x), `bump` (updates W by dict entry)."""
    k = shared(np.int64(0), name="k")
    W = shared(W0.copy(), name="W")
    x = at.dvector("x")
    loss = (at.tanh(at.dot(x, W)) ** 2).sum()
    out = tmp_path_factory.mktemp("shared")
    return scanaot.compile_many([
        ("count", [x], [k, x.sum()], (), {k: k + 1}),
        ("peek", [], k * 2),
        ("loss", [x], loss, [W, x]),
        {"name": "bump", "inputs": [x], "outputs": x.sum(), "updates": [(W, W + 1.0)]},
    ], name="stateful", out_dir=out)


@pytest.fixture(scope="module")
def lib(artifact):
    return rt.load(artifact.library)


def test_manifest_marks_shared_arguments_and_updates(artifact):
    m = artifact.manifest
    assert [(e["name"], e["dtype"], e["shape"], e["updated"]) for e in m["shared"]] == [
        ("k", "int64", [], True), ("W", "float64", [3, 2], True)]
    count = next(f for f in m["functions"] if f["name"] == "count")
    assert [a.get("shared") for a in count["args"]] == [None, "k"]
    assert [o.get("updates") for o in count["outputs"]] == [None, None, "k"]
    vjp = next(f for f in m["functions"] if f["name"] == "loss_vjp")
    assert vjp["args"][-1]["shared"] == "W"
    assert next(f for f in m["functions"] if f["name"] == "loss")["vjp"]["wrt"] == ["W", "x"]


def test_counter_counts_and_the_state_holds_the_next_value(lib):
    st = lib.state()
    ones = np.ones(3)
    assert [int(lib.count(ones, state=st)[0]) for _ in range(3)] == [0, 1, 2]
    assert st.get("k") == 3
    assert lib.peek(state=st) == 6
    assert lib.state().get("k") == 0  # a new state starts from the shipped value
    k, total = lib.count(x=ones, state=st)  # by keyword
    assert (k, total) == (3, 3.0) and st.get("k") == 4
    buf = [np.empty((), np.int64), np.empty((), np.float64)]
    lib.count(ones, state=st, out=buf)
    assert buf[0] == 4 and st.get("k") == 5
    assert lib.count.call_all(ones, np.array(7)) == (7, 3.0, 8)  # every argument, every output


def test_two_states_are_independent_and_the_default_state_is_used_without_one(lib):
    a, b = lib.state(), lib.state()
    for _ in range(3):
        lib.count(np.ones(1), state=a)
    lib.count(np.ones(1), state=b)
    assert (a.get("k"), b.get("k")) == (3, 1)
    before = lib.default_state.get("k")
    lib.count(np.ones(1))
    assert lib.default_state.get("k") == before + 1


def test_threads_with_own_states_and_on_one_state(lib):
    calls = 200
    states = [lib.state() for _ in range(8)]
    shared_state = lib.state()

    def work(own):
        for _ in range(calls):
            lib.count(np.ones(2), state=own)
            lib.count(np.ones(2), state=shared_state)
    threads = [threading.Thread(target=work, args=(s,)) for s in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.get("k") for s in states] == [calls] * 8
    assert shared_state.get("k") == 8 * calls  # serialized: no update lost


def test_update_of_a_matrix_and_bad_calls(lib):
    st = lib.state()
    lib.bump(np.ones(2), state=st)
    np.testing.assert_array_equal(st.get("W"), W0 + 1)
    with pytest.raises(rt.ArgumentError, match="shared variable"):
        lib.count(np.ones(2), k=np.array(1), state=st)
    with pytest.raises(rt.ArgumentError, match="takes 1 arguments"):
        lib.count(np.ones(2), np.array(1), state=st)
    with pytest.raises(rt.ArgumentError, match="state= must be a State"):
        lib.count(np.ones(2), state={"k": 1})


def test_get_set_save_load_round_trip(lib, tmp_path):
    st = lib.state()
    st.set("k", 41)  # a Python int into int64
    st.set("W", np.arange(6, dtype=np.int32).reshape(3, 2))  # a safe cast
    st.set("W", np.zeros((5, 2)))  # another shape of a non-broadcastable dim
    got = st.get("W")
    got[0, 0] = 99  # a copy
    assert st.get("W")[0, 0] == 0
    with pytest.raises(StateError, match="cannot store float64 values accurately as int64"):
        st.set("k", 1.5)
    with pytest.raises(StateError, match="expected 2 dims"):
        st.set("W", np.zeros(3))
    with pytest.raises(StateError, match="no shared variable 'nope'"):
        st.get("nope")
    st.set("W", W0)
    path = tmp_path / "state.safetensors"
    st.save(path)
    tensors = _independent_reader(path.read_bytes())
    assert tensors["k"] == 41 and tensors["k"].dtype == np.int64
    np.testing.assert_array_equal(tensors["W"], W0)
    other = lib.state()
    other.load(path)
    assert other.get("k") == 41
    np.testing.assert_array_equal(other.get("W"), W0)
    _write_safetensors(tmp_path / "k.safetensors", {"k": np.array(5, np.int64)})
    with pytest.raises(StateError, match="no value for 'W'"):
        other.load(tmp_path / "k.safetensors")
    other.load(tmp_path / "k.safetensors", partial=True)
    assert other.get("k") == 5
    with pytest.raises(rt.safetensors.SafetensorsError, match="truncated"):
        (tmp_path / "bad.safetensors").write_bytes(path.read_bytes()[:20])
        other.load(tmp_path / "bad.safetensors")


def test_shipped_values_are_sealed(artifact, tmp_path):
    data = bytearray(artifact.library.read_bytes())
    offset, size = sections(bytes(data))[STATE_SECTION]
    entry = artifact.manifest["shared"][0]
    data[offset + entry["offset"]] ^= 1  # k's value
    with pytest.raises(rt.LibraryError, match="corrupted"):
        rt.load_bytes(bytes(data), "damaged")
    with pytest.raises(rt.LibraryError, match="shipped shared values do not match"):
        rt.load_bytes(manifest_mod.seal(bytes(data)), "swapped and resealed")


def test_gradient_kernel_with_respect_to_a_shared_matrix(lib):
    st = lib.state()
    st.set("W", W0 * 0.5)
    x = np.array([0.3, -0.7, 1.1])
    g_W, g_x = lib.loss.vjp(x, cotangents=1.0, state=st)

    def f(W, x):
        return float((np.tanh(x @ W) ** 2).sum())
    eps = 1e-6
    fd_W = np.zeros_like(W0)
    for idx in np.ndindex(*W0.shape):
        d = np.zeros_like(W0)
        d[idx] = eps
        fd_W[idx] = (f(W0 * 0.5 + d, x) - f(W0 * 0.5 - d, x)) / (2 * eps)
    fd_x = np.array([(f(W0 * 0.5, x + e) - f(W0 * 0.5, x - e)) / (2 * eps) for e in np.eye(3) * eps])
    np.testing.assert_allclose(g_W, fd_W, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g_x, fd_x, rtol=1e-6, atol=1e-9)
    assert lib.loss(x, state=st) == pytest.approx(f(W0 * 0.5, x))


C_PROGRAM = r"""
#include <stdio.h>
#include "stateful.h"

int main(void) {
    scanaot_stateful_state *st = scanaot_stateful_state_new(), *other = scanaot_stateful_state_new();
    if (!st || !other) return 2;
    double xs[3] = {1.0, 2.0, 3.0};
    int64_t k, d[1];
    double total;
    scanaot_memref_float64_1d x = {xs, xs, 0, {3}, {1}};
    scanaot_memref_int64_0d K = {&k, &k, 0};
    scanaot_memref_float64_0d TOTAL = {&total, &total, 0};
    scanaot_memref_int64_1d dims = {d, d, 0, {1}, {1}};
    for (int i = 0; i < 3; i++) {
        int32_t status = scanaot_stateful__count__state(st, &x, &K, &TOTAL, &dims);
        if (status != 0) return 3;
        printf("%lld %g\n", (long long)k, total);
    }
    if (count_run_state(other, &x, &K, &TOTAL, &dims) != 0) return 4;
    printf("%lld %lld %g\n", (long long)*st->k.aligned, (long long)*other->k.aligned, st->W.aligned[5]);
    scanaot_stateful_state_free(st);
    scanaot_stateful_state_free(other);
    return 0;
}
"""


def test_c_program_counts_with_a_state(artifact, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "main.c").write_text(C_PROGRAM)
    build = artifact.library.parent
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(build), str(tmp_path / "main.c"), "-L",
                    str(build), "-lstateful", f"-Wl,-rpath,{build}", "-o", str(tmp_path / "main")], check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["0 6", "1 6", "2 6"]
    k, other, w = out[3].split()
    assert (k, other) == ("3", "1") and float(w) == pytest.approx(W0[2, 1])


NUMPY_ONLY = """
import sys
sys.modules["mlir"] = None  # the compiler cannot be imported
import numpy as np
import scanaot.runtime as rt
lib = rt.load(sys.argv[1])
st = lib.state()
print([int(lib.count(np.ones(2), state=st)[0]) for _ in range(3)], int(st.get("k")))
st.save(sys.argv[2])
again = lib.state()
again.load(sys.argv[2])
print(int(again.get("k")), "mlir" in sys.modules and sys.modules["mlir"] is not None)
"""


def test_numpy_only_process_uses_states(artifact, tmp_path):
    out = subprocess.run([sys.executable, "-c", NUMPY_ONLY, str(artifact.library), str(tmp_path / "s.safetensors")],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[0, 1, 2] 3", "3 False"]


def test_names_must_be_unique_and_identifiers(tmp_path):
    a, b = shared(1.0, name="w"), shared(2.0, name="w")
    x = at.dscalar("x")
    with pytest.raises(ValueError, match="two different shared variables are named 'w'"):
        scanaot.compile([x], x * a + b, name="dup", out_dir=tmp_path)
    with pytest.raises(ValueError, match="must be a C identifier"):
        scanaot.compile([x], x * shared(1.0, name="my weight"), name="badname", out_dir=tmp_path)


def test_unnamed_shared_variables_get_generated_names(tmp_path):
    x = at.dscalar("x")
    art = scanaot.compile([x], x * shared(2.0) + shared(3.0, name="shared0"), name="unnamed", out_dir=tmp_path)
    assert [e["name"] for e in art.manifest["shared"]] == ["shared0_", "shared0"] or \
        sorted(e["name"] for e in art.manifest["shared"]) == ["shared0", "shared0_"]
    assert rt.load(art.library).unnamed(2.0) == 7.0


# -- a tiny safetensors reader and writer, independent of scanaot.runtime.safetensors

_CODES = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "BOOL": "?"}


def _independent_reader(data: bytes) -> dict:
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {name: np.frombuffer(data[base + e["data_offsets"][0]:base + e["data_offsets"][1]],
                                dtype=_CODES[e["dtype"]]).reshape(e["shape"]) for name, e in header.items()}


def _write_safetensors(path: Path, tensors: dict) -> None:
    codes = {np.dtype(v): k for k, v in _CODES.items()}
    header, chunks, offset = {}, [], 0
    for name, value in tensors.items():
        raw = value.tobytes()
        header[name] = {"dtype": codes[value.dtype], "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def test_schema_checks_the_shared_fields(artifact):
    import copy
    from scanaot.runtime.schema import validate
    validate(artifact.manifest)
    bad = copy.deepcopy(artifact.manifest)
    bad["functions"][0]["args"][-1]["shared"] = "nope"
    with pytest.raises(rt.LibraryError, match=r"args\[1\]\.shared"):
        validate(bad)
    bad = copy.deepcopy(artifact.manifest)
    bad["shared"][1]["nbytes"] = 8
    with pytest.raises(rt.LibraryError, match=r"shared\[1\]\.nbytes"):
        validate(bad)
    bad = copy.deepcopy(artifact.manifest)
    del bad["state"]
    with pytest.raises(rt.LibraryError, match="state: missing"):
        validate(bad)
