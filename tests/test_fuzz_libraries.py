"""Fuzzing libraries: damage is refused with a LibraryError, never a crash or a wrong answer.

(a) Manifests: a real library's manifest is mutated (keys dropped, types changed,
out-of-range values, references to missing arguments, axes or functions, deep
nesting, unknown keys), written back into its section and re-sealed. Reading it
must raise LibraryError or succeed; every library that reads is then loaded and
called in a subprocess (a crash fails the test instead of killing pytest) and must
be refused or give numpy's results on both call paths.

Mutations that keep a manifest well-formed but change what it says (another
in-range axis, one argument fewer) cannot be told from a real library without
recompiling, so they are not generated: the digest guards against damage, the
schema against malformed manifests.

(b) Bytes: flipped, inserted or deleted bytes and truncations anywhere in the file
are refused by the digest before any of the file is mapped.
"""
import contextlib
import copy
import io
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.runtime import manifest as manifest_mod
from scanaot.runtime.elf import DIGEST_SECTION, MANIFEST_SECTION, sections
from scanaot.tools.cli import main as cli_main

DROP = object()
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# the fixture's functions in manifest order: power, power_vjp, mv, pow2, two
WORKER = r"""
import json, sys
import numpy as np
import scanaot.runtime as rt

a = np.array([0.5, 1.0, 1.5, 2.0], "float32")
cot = np.array([1.0, -1.0, 2.0, 0.5], "float32")
X, y = np.arange(12.0).reshape(3, 4), np.arange(4.0)
CASES = [(0, (a, 3), a ** 3), (1, (a, 3, cot), 3 * a ** 2 * cot), (2, (X, y), X @ y),
         (3, (45.0,), np.array([2.0, 4, 8, 16, 32, 64])), (4, (), np.float64(2.0))]

def check(path):
    try:
        lib = rt.load(path)
    except rt.LibraryError as err:
        return "refused: " + str(err)
    kernels = list(lib.functions.values())
    for index, args, expected in CASES:
        for call in (kernels[index], kernels[index].call_checked):
            got = call(*args)
            if np.shape(got) != np.shape(expected) or not np.allclose(got, expected, rtol=1e-5):
                return f"wrong: function {index} gave {got!r}, expected {expected!r}"
    if "vjp" in kernels[0].spec:
        got = kernels[0].vjp(a, 3, cotangents=[cot])
        if not np.allclose(got, 3 * a ** 2 * cot, rtol=1e-5):
            return f"wrong: vjp gave {got!r}"
    return "ok"

for path in json.loads(sys.argv[1]):
    try:
        outcome = check(path)
    except Exception as err:
        outcome = f"error: {type(err).__name__}: {err}"
    print(json.dumps([path, outcome]), flush=True)
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Scalars, vectors, a matrix, a gradient kernel, an `until` output and no inputs."""
    A, k, X, y, m = at.fvector("A"), at.iscalar("k"), at.dmatrix("X"), at.dvector("y"), at.dscalar("m")
    powers, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    doubled, _ = scanaot.scan(lambda p, m: (p * 2, scanaot.scan.utils.until(p * 2 > m)),
                              outputs_info=at.constant(np.float64(1)), non_sequences=m, n_steps=1024)
    art = scanaot.compile_many([("power", [A, k], powers[-1], [A]), ("mv", [X, y], at.dot(X, y)),
                                ("pow2", [m], doubled), ("two", [], at.ones(()) * 2)],
                               name="fuzz", out_dir=tmp_path_factory.mktemp("fuzz"))
    data = art.library.read_bytes()
    base = manifest_mod.read(data)
    for f in base["functions"]:  # optional; dropped to leave room in the section for mutations
        f.pop("checks", None)
    return data, base


def resealed(data: bytes, manifest: dict) -> bytes | None:
    """The library with `manifest` in its section (compact JSON, NUL-padded) and a new
    digest; None when it does not fit the section."""
    offset, size = sections(data)[MANIFEST_SECTION]
    text = json.dumps(manifest, separators=(",", ":")).encode()
    if len(text) >= size:
        return None
    return manifest_mod.seal(data[:offset] + text.ljust(size, b"\0") + data[offset + size:])


# -- manifest mutations

def value_paths(value, prefix=()) -> list[tuple]:
    """Every place in a JSON value, as a key/index path."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found = [prefix] if prefix else []
    for key, child in children:
        found += value_paths(child, prefix + (key,))
    return found


def field_kind(path: tuple) -> tuple:
    """A path without its list indices and with expressions' nesting folded:
    `functions[1].outputs[0].shape[0].args[1].dim` -> (functions, outputs, shape, dim)."""
    keys = [k for k in path if isinstance(k, str)]
    while len(keys) > 3 and keys[-2] == "args" and keys[-3] in ("args", "shape"):
        del keys[-2]
    return tuple(keys)


def kind(value) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def nested(depth: int) -> dict:
    expr: dict = {"arg": 0}
    for _ in range(depth):
        expr = {"op": "neg", "args": [expr]}
    return expr


DEEP_LIST: list = []
for _ in range(300):
    DEEP_LIST = [DEEP_LIST]
OTHER_TYPES = [None, "zz", True, 1.5, [], {}, [0], {"zz": 1}, DEEP_LIST]


def candidates(manifest: dict, path: tuple) -> list:
    """Replacements for the value at `path` (DROP: remove its key)."""
    parent = get(manifest, path[:-1])
    value, key = parent[path[-1]], path[-1]
    found = [DROP] if isinstance(parent, dict) else []
    numeric = key == "const" and kind(value) in ("int", "float", "bool")
    found += [v for v in OTHER_TYPES if kind(v) != kind(value) and not (numeric and kind(v) in ("int", "float", "bool"))]
    if kind(value) == "int":
        found += [2 ** 63, -(2 ** 63) - 1, 10 ** 30] if key == "const" else [-1, 33, 10 ** 6, 2 ** 70]
    if isinstance(value, str):
        found += ["", "float16", "zz", "9x"]
    if isinstance(value, dict):
        found += [{**value, "zz": 1}] + bad_references(manifest, path, value)
    return found


def bad_references(manifest: dict, path: tuple, value: dict) -> list:
    """References to arguments, axes or functions that do not exist or do not fit."""
    if path[0] != "functions":
        return []
    function = manifest["functions"][path[1]]
    scalars = [i for i, a in enumerate(function["args"]) if a["ndim"] == 0]
    arrays = [i for i, a in enumerate(function["args"]) if a["ndim"] > 0]
    if "dim" in value:
        return [{"dim": [9, 0]}, {"dim": [0, 9]}, {"dim": [0, -1]}] + [{"dim": [i, 0]} for i in scalars]
    if "arg" in value:
        return [{"arg": 9}] + [{"arg": i} for i in arrays]
    if "op" in value:
        return [nested(70), {"op": "pow", "args": value["args"]}, {"op": value["op"], "args": value["args"] * 2}]
    if "function" in value:
        return [{**value, "function": function["name"]}, {**value, "wrt": ["zz"]}, {**value, "cotangents": ["zz"]}]
    return []


def get(value, path: tuple):
    for key in path:
        value = value[key]
    return value


def mutated(manifest: dict, path: tuple, replacement) -> dict:
    result = copy.deepcopy(manifest)
    parent = get(result, path[:-1])
    if replacement is DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return result


def inspect_exit_code(path) -> int:
    """`scanaot inspect` on a file: its exit code (it must never raise)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli_main(["inspect", str(path)])


def run_worker(paths: list[str]) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(paths)], capture_output=True, text=True,
                          timeout=120)
    outcomes = dict(json.loads(line) for line in proc.stdout.splitlines())
    assert proc.returncode == 0, (f"the worker died (status {proc.returncode}) after "
                                  f"{len(outcomes)} of {len(paths)} libraries:\n{proc.stderr[-2000:]}")
    return outcomes


def test_mutated_manifests_are_refused_or_work(library, tmp_path):
    data, base = library
    places = value_paths(base)
    kinds = sorted({field_kind(p) for p in places})  # each kind of field as likely as any other
    names = (tmp_path / f"m{i}.so" for i in itertools.count())
    accepted: dict[str, str] = {}
    control = tmp_path / "base.so"
    control.write_bytes(resealed(data, base))
    accepted[str(control)] = "unmutated"

    @FUZZ
    @given(st.data())
    def fuzz(draw):
        field = draw.draw(st.sampled_from(kinds), label="field")
        path = draw.draw(st.sampled_from([p for p in places if field_kind(p) == field]), label="path")
        replacement = draw.draw(st.sampled_from(candidates(base, path)), label="replacement")
        edited = resealed(data, mutated(base, path, replacement))
        assume(edited is not None)
        target = next(names)
        target.write_bytes(edited)
        try:
            manifest_mod.read(edited, "fuzzed")
        except rt.LibraryError as err:
            assert "fuzzed:" in str(err)
            assert inspect_exit_code(target) == 1
            return
        assert inspect_exit_code(target) == 0
        accepted[str(target)] = f"{path} -> {'dropped' if replacement is DROP else replacement!r}"

    fuzz()
    outcomes = run_worker(list(accepted))
    assert outcomes[str(control)] == "ok"
    bad = {accepted[p]: o for p, o in outcomes.items() if not (o == "ok" or o.startswith("refused: "))}
    assert not bad, bad


def test_deep_and_malformed_json_is_a_library_error(library, tmp_path):
    """Text the schema never sees: not JSON, too deep for the parser, NaN, repeated keys."""
    data, _ = library
    offset, size = sections(data)[MANIFEST_SECTION]
    for text in [b"{", b"[" * (size - 1), b'{"format": NaN}', b'{"a": 1, "a": 2}', b"[1, 2]", b"\xff\xfe"]:
        edited = manifest_mod.seal(data[:offset] + text[:size - 1].ljust(size, b"\0") + data[offset + size:])
        with pytest.raises(rt.LibraryError, match="corrupted manifest"):
            manifest_mod.read(edited)


# -- byte damage

def damaged(data: bytes, how: str, position: int, payload: bytes) -> bytes:
    position %= len(data)
    if how == "flip":
        return data[:position] + bytes([data[position] ^ (payload[0] or 1)]) + data[position + 1:]
    if how == "insert":
        return data[:position] + payload + data[position:]
    if how == "delete":
        return data[:position] + data[position + len(payload):]
    return data[:position]


def test_damaged_bytes_are_refused(library, tmp_path):
    data, _ = library
    table = sections(data)
    hot = [table[MANIFEST_SECTION], table[DIGEST_SECTION], (0, 64), (len(data) - 4096, 4096)]
    positions = st.one_of([st.integers(0, len(data) - 1)] + [st.integers(o, o + n - 1) for o, n in hot])
    target = tmp_path / "damaged.so"

    @FUZZ
    @given(st.sampled_from(["flip", "insert", "delete", "truncate"]), positions, st.binary(min_size=1, max_size=16))
    def fuzz(how, position, payload):
        edited = damaged(data, how, position, payload)
        assume(edited != data)
        with pytest.raises(rt.LibraryError):  # refused before any of it is mapped
            manifest_mod.read(edited)
        target.write_bytes(edited)
        with pytest.raises(rt.LibraryError):
            rt.load(target)

    fuzz()
