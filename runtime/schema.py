"""The manifest's schema: every key, type, range and reference, checked as data.

`manifest.read` calls `validate` on every manifest before the runtime, the fast
call generator or `scanaot inspect` read a field, so they may index it freely: a
library whose manifest is malformed (a compiler bug, a hand edit re-sealed) is
refused with a `LibraryError` naming the place, e.g.
`functions[0].args[1].dtype: expected one of 'bool', ..., got 'float16'`,
instead of failing later with a KeyError, a wrong answer or a crash.

Two passes: the tables below give each record's keys (a trailing `?` marks an
optional key) and each value's type and range; then `_check_references` checks
what one value says about another (a `dim` names an existing argument and axis,
`dims_length` matches the outputs, a `vjp` names an existing function, ...).
The top level and `target` accept unknown keys (later compilers may add some);
every other record is closed.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from .elf import LibraryError
from .shapes import ARITY

Check = Callable[[Any, str], None]

DTYPES = ("bool", "int8", "int16", "int32", "int64", "float32", "float64")
INTEGER_DTYPES = ("int8", "int16", "int32", "int64")
MAX_NDIM = 32
MAX_EXPRESSION_DEPTH = 64
INT64 = 2 ** 63
C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# C and C++ keywords (the header is included from both), names the generated header
# and <stdint.h> declare, and GNU C's predefined macros: none can name a parameter there
RESERVED_NAMES = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while alignas alignof bool constexpr false nullptr
    static_assert thread_local true typeof typeof_unqual asm catch class const_cast
    consteval constinit co_await co_return co_yield concept decltype delete dynamic_cast
    explicit export friend mutable namespace new noexcept operator private protected public
    reinterpret_cast requires static_cast template this throw try typeid typename using
    virtual wchar_t char8_t char16_t char32_t and and_eq bitand bitor compl not not_eq or
    or_eq xor xor_eq dims int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
    linux unix i386
""".split())
# <stdint.h>'s object-like macros (INT32_MAX, UINTPTR_MAX, SIZE_MAX, ...)
_STDINT_MACRO = re.compile(r"(?:U?INT\w*|SIZE|PTRDIFF|SIG_ATOMIC|WCHAR|WINT)_(?:MAX|MIN|WIDTH)")


# keywords the runtime's calls take themselves: `kernel(..., out=)`, `kernel.vjp(..., cotangents=)`
RUNTIME_KEYWORDS = frozenset({"self", "out", "cotangents"})


def is_argument_name(name: Any) -> bool:
    """Whether `name` can name an argument: a parameter in the generated C header (an
    ASCII C identifier, no C or C++ keyword, not reserved to the implementation (`_X`,
    `__`), not one of the header's own names or macros) and a keyword in the runtime's
    calls (not one of RUNTIME_KEYWORDS)."""
    return (isinstance(name, str) and C_IDENTIFIER.fullmatch(name) is not None
            and name not in RESERVED_NAMES and name not in RUNTIME_KEYWORDS
            and not re.match(r"_[A-Z_]|SCANAOT_|scanaot_", name) and _STDINT_MACRO.fullmatch(name) is None)


class _Invalid(Exception):
    """One schema violation; `validate` turns it into a LibraryError."""


def validate(manifest: Any, label: str = "library") -> None:
    """Raise LibraryError("{label}: invalid manifest: {where}: {what}") unless the
    manifest satisfies the whole schema."""
    try:
        _MANIFEST(manifest, "")
        _check_references(manifest)
    except _Invalid as err:
        raise LibraryError(f"{label}: invalid manifest: {err}") from None


# -- value checks: each takes (value, path) and raises _Invalid

def short_repr(value: Any) -> str:
    """repr() cut to 60 characters: error messages quote values from untrusted files."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _fail(path: str, expected: str, value: Any) -> None:
    raise _Invalid(f"{path or 'the manifest'}: expected {expected}, got {short_repr(value)}")


def _integer(low: int, high: int) -> Check:
    def check(value: Any, path: str) -> None:
        if type(value) is not int or not low <= value <= high:
            _fail(path, f"an integer from {low} to {high}", value)
    return check


def _string(pattern: str | None = None, what: str = "a string") -> Check:
    regex = re.compile(pattern) if pattern else None

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or (regex is not None and regex.fullmatch(value) is None):
            _fail(path, what, value)
    return check


def _one_of(*values: str) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or value not in values:
            _fail(path, f"one of {', '.join(map(repr, values))}", value)
    return check


def _boolean(value: Any, path: str) -> None:
    if type(value) is not bool:
        _fail(path, "true or false", value)


def _nullable(check: Check) -> Check:
    def nullable(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)
    return nullable


def _list(item: Check, min_length: int = 0, max_length: int = 1 << 20) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list) or not min_length <= len(value) <= max_length:
            _fail(path, _list_description(min_length, max_length), value)
        for i, v in enumerate(value):
            item(v, f"{path}[{i}]")
    return check


def _list_description(low: int, high: int) -> str:
    if low == high:
        return f"a list of {low} items"
    if high == 1 << 20:
        return f"a list of at least {low} items" if low else "a list"
    return f"a list of {low} to {high} items"


def _record(fields: dict[str, Check], open_: bool = False) -> Check:
    """An object with these keys (`key?`: optional); others refused unless `open_`."""
    table = {key.rstrip("?"): (check, not key.endswith("?")) for key, check in fields.items()}

    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            _fail(path, "an object", value)
        for key, (field, required) in table.items():
            where = f"{path}.{key}" if path else key
            if key in value:
                field(value[key], where)
            elif required:
                raise _Invalid(f"{where}: missing")
        unknown = [k for k in value if k not in table]
        if unknown and not open_:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise _Invalid(f"{where}: unknown key; expected {', '.join(table)}")
    return check


def _constant(value: Any, path: str) -> None:
    """A shape constant: a bool, a 64-bit integer or a finite float."""
    if type(value) is bool or (type(value) is int and -INT64 <= value < INT64):
        return
    if type(value) is not float or not math.isfinite(value):
        _fail(path, "a bool, a 64-bit integer or a finite number", value)


def _expression(value: Any, path: str, depth: int = 0) -> None:
    """A shape expression (scanaot/packaging/shape_expr.py): {const}, {dim: [arg, axis]}, {arg}, {op, args}."""
    if depth > MAX_EXPRESSION_DEPTH:
        _fail(path, f"an expression at most {MAX_EXPRESSION_DEPTH} levels deep", "a deeper one")
    keys = frozenset(value) if isinstance(value, dict) else None
    if keys in _LEAVES:
        _LEAVES[keys](value, path)
        return
    if keys != _OPERATION:
        _fail(path, "a shape expression {const}, {dim}, {arg} or {op, args}", value)
    op, args = value["op"], value["args"]
    _one_of(*ARITY)(op, f"{path}.op")
    if not isinstance(args, list) or len(args) != ARITY[op]:
        _fail(f"{path}.args", f"a list of the {ARITY[op]} operand(s) of {op}", args)
    for i, a in enumerate(args):
        _expression(a, f"{path}.args[{i}]", depth + 1)


_INDEX = _integer(0, 1 << 20)
_AXIS = _integer(0, MAX_NDIM - 1)


def _dim(value: Any, path: str) -> None:
    if not isinstance(value, list) or len(value) != 2:
        _fail(path, "[argument, axis]", value)
    _INDEX(value[0], f"{path}[0]")
    _AXIS(value[1], f"{path}[1]")


_LEAVES: dict[frozenset, Check] = {
    frozenset({"const"}): lambda v, p: _constant(v["const"], f"{p}.const"),
    frozenset({"dim"}): lambda v, p: _dim(v["dim"], f"{p}.dim"),
    frozenset({"arg"}): lambda v, p: _INDEX(v["arg"], f"{p}.arg"),
}
_OPERATION = frozenset({"op", "args"})

# -- the tables

_NAME = _string(C_IDENTIFIER.pattern, "a C identifier")
_DTYPE = _one_of(*DTYPES)
_NDIM = _integer(0, MAX_NDIM)
_TEXT = _string()
_SHAPE = _list(_expression, 0, MAX_NDIM)
_ARCH = _string(r"sm_[0-9]+a?", "an NVIDIA architecture such as 'sm_90'")

_ARG = _record({"name": _NAME, "dtype": _DTYPE, "ndim": _NDIM, "shape": _SHAPE, "host_access?": _boolean,
                "shared?": _NAME})
_OUTPUT = _record({"name": _NAME, "dtype": _DTYPE, "ndim": _NDIM, "shape": _SHAPE,
                   "bounded": _list(_boolean, 0, MAX_NDIM), "shape_text": _list(_TEXT, 0, MAX_NDIM),
                   "host_access?": _boolean, "updates?": _NAME})
_CONSTRAINT = _record({"rel": _one_of("eq", "ge"), "args": _list(_expression, 2, 2),
                       "text": _list(_TEXT, 2, 2), "why": _TEXT})
_VJP = _record({"function": _NAME, "wrt": _list(_NAME), "cotangents": _list(_NAME)})
_FUNCTION = _record({
    "name": _NAME, "symbol": _string(r"(scanaot|_mlir_ciface)_[A-Za-z0-9_]+", "a symbol scanaot_LIBRARY__NAME"),
    "graph_hash": _string(r"[0-9a-f]{64}", "a SHA-256 in hex"),
    "workspace_bytes": _integer(0, 0),  # kernels allocate their temporaries themselves
    "args": _list(_ARG), "outputs": _list(_OUTPUT, 1), "constraints": _list(_CONSTRAINT),
    "dims_length": _integer(1, MAX_NDIM * (1 << 20)), "vjp?": _VJP, "checks?": _list(_TEXT)})
_VARIANT = _record({"cpu": _TEXT, "features": _list(_TEXT),
                    "suffix": _string(r"[A-Za-z0-9_]*", "'' or a C identifier fragment"),
                    "base": _TEXT, "tune?": _TEXT}, open_=True)
_TARGET = _record({
    "name": _TEXT, "triple": _TEXT, "cpu": _TEXT, "fastmath?": _one_of("none", "contract", "fast"),
    "variants?": _list(_VARIANT, 1), "arch?": _ARCH, "ptxas?": _nullable(_TEXT),
    "device_code?": _record({"format": _one_of("none", "ptx", "cubin"), "arch": _ARCH,
                             "kernels": _integer(0, 1 << 20)})}, open_=True)
_SIZE = _integer(0, INT64 - 1)
_SHARED = _record({"name": _NAME, "dtype": _DTYPE, "ndim": _NDIM, "shape": _list(_SIZE, 0, MAX_NDIM),
                   "broadcastable": _list(_boolean, 0, MAX_NDIM), "updated": _boolean,
                   "offset": _SIZE, "nbytes": _SIZE})
_STATE = _record({"sha256": _string(r"[0-9a-f]{64}", "a SHA-256 in hex"), "bytes": _SIZE,
                  "symbol": _string(r"scanaot_state_[A-Za-z0-9_]+", "a symbol scanaot_state_LIBRARY")})
_MANIFEST = _record({
    "format": _TEXT, "abi_version": _integer(0, 1 << 20), "library?": _NAME, "target": _TARGET,
    "compiler": _record({"scanaot": _TEXT, "toolchain": _TEXT}, open_=True),
    "functions": _list(_FUNCTION, 1), "shared?": _list(_SHARED), "state?": _STATE}, open_=True)


# -- references between values

def _check_references(manifest: dict) -> None:
    target = manifest["target"]
    if target["name"] == "cuda" and "arch" not in target:
        raise _Invalid("target.arch: missing (a cuda target names its GPU architecture)")
    functions = manifest["functions"]
    for key in ("name", "symbol"):
        _unique([f[key] for f in functions], f"functions[].{key}")
    names = {f["name"]: f for f in functions}
    for k, f in enumerate(functions):
        _check_function(f, f"functions[{k}]", names)
    _check_shared(manifest)


_ITEMSIZE = {"bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "float64": 8}


def _check_shared(manifest: dict) -> None:
    """The shared variables: unique, each shape consistent and inside the shipped values;
    each function's shared arguments (last) and update outputs (last) name one of them
    with its dtype and rank, and only an `updated` one is updated (once per function)."""
    shared = manifest.get("shared", [])
    if shared and "state" not in manifest:
        raise _Invalid("state: missing (a library with shared variables records its shipped values)")
    _unique([e["name"] for e in shared], "shared[].name")
    size = manifest.get("state", {}).get("bytes", 0)
    for k, e in enumerate(shared):
        where = f"shared[{k}]"
        for key in ("shape", "broadcastable"):
            if len(e[key]) != e["ndim"]:
                _fail(f"{where}.{key}", f"{e['ndim']} items (ndim)", e[key])
        if any(b and d != 1 for b, d in zip(e["broadcastable"], e["shape"])):
            _fail(f"{where}.shape", "1 in every broadcastable dim", e["shape"])
        if e["nbytes"] != math.prod(e["shape"]) * _ITEMSIZE[e["dtype"]] or e["offset"] + e["nbytes"] > size:
            _fail(f"{where}.nbytes", "the value's size, inside the shipped values", e["nbytes"])
    by_name = {e["name"]: e for e in shared}
    for k, f in enumerate(manifest["functions"]):
        _check_marked(f["args"], "shared", f"functions[{k}].args", by_name)
        _check_marked(f["outputs"], "updates", f"functions[{k}].outputs", by_name)


def _check_marked(items: list, key: str, path: str, shared: dict) -> None:
    """Marked entries come after every unmarked one and fit the variable they name."""
    marked = [i for i, a in enumerate(items) if key in a]
    if marked and marked != list(range(len(items) - len(marked), len(items))):
        _fail(f"{path}[{marked[0]}].{key}", f"marked {key} entries after all the others", items[marked[0]][key])
    _unique([items[i][key] for i in marked], f"{path}[].{key}")
    for i in marked:
        entry = shared.get(items[i][key])
        if entry is None or entry["dtype"] != items[i]["dtype"] or entry["ndim"] != items[i]["ndim"]:
            _fail(f"{path}[{i}].{key}", "a shared variable of the same dtype and ndim", items[i][key])
        if key == "updates" and not entry["updated"]:
            _fail(f"{path}[{i}].updates", "a shared variable marked updated", items[i][key])


def _unique(values: list, path: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise _Invalid(f"{path}: {v!r} appears twice; each must be unique")
        seen.add(v)


def _check_function(f: dict, path: str, functions: dict) -> None:
    args = f["args"]
    _unique([a["name"] for a in args], f"{path}.args[].name")
    for i, a in enumerate(args):
        _check_arg_shape(a, i, f"{path}.args[{i}]")
    for j, o in enumerate(f["outputs"]):
        where = f"{path}.outputs[{j}]"
        for key in ("shape", "bounded", "shape_text"):
            if len(o[key]) != o["ndim"]:
                _fail(f"{where}.{key}", f"{o['ndim']} items (ndim)", o[key])
        for k, e in enumerate(o["shape"]):
            if "const" in e and not (type(e["const"]) is int and e["const"] >= 0):
                _fail(f"{where}.shape[{k}].const", "a size (an integer >= 0)", e["const"])
            _check_expression_references(e, f"{where}.shape[{k}]", args)
    for k, c in enumerate(f["constraints"]):
        for m, e in enumerate(c["args"]):
            _check_expression_references(e, f"{path}.constraints[{k}].args[{m}]", args)
    dims = max(1, sum(o["ndim"] for o in f["outputs"]))
    if f["dims_length"] != dims:
        _fail(f"{path}.dims_length", f"{dims} (the outputs' dims, at least 1)", f["dims_length"])
    if "vjp" in f:
        _check_vjp(f, f"{path}.vjp", functions)


def _check_arg_shape(a: dict, i: int, path: str) -> None:
    """An argument's dims: its own ({dim: [i, axis]}) or a constant size."""
    if len(a["shape"]) != a["ndim"]:
        _fail(f"{path}.shape", f"{a['ndim']} items (ndim)", a["shape"])
    for axis, e in enumerate(a["shape"]):
        own = e.get("dim") == [i, axis] or (type(e.get("const")) is int and e["const"] >= 0)
        if not own:
            _fail(f"{path}.shape[{axis}]", f"{{'dim': [{i}, {axis}]}} or a size {{'const': n}}", e)


def _check_expression_references(e: dict, path: str, args: list) -> None:
    """Each `dim` names an existing argument and axis, each `arg` a rank-0 argument."""
    if "dim" in e:
        i, axis = e["dim"]
        if i >= len(args) or axis >= args[i]["ndim"]:
            _fail(f"{path}.dim", "[argument, axis] of an existing argument and axis", e["dim"])
    elif "arg" in e:
        i = e["arg"]
        if i >= len(args) or args[i]["ndim"] != 0:
            _fail(f"{path}.arg", "the index of a scalar (rank-0) argument", i)
    elif "op" in e:
        for k, a in enumerate(e["args"]):
            _check_expression_references(a, f"{path}.args[{k}]", args)


def _check_vjp(f: dict, path: str, functions: dict) -> None:
    """The gradient kernel exists; `wrt` are this function's arguments, `cotangents` its."""
    vjp = f["vjp"]
    kernel = functions.get(vjp["function"])
    if kernel is None or kernel is f:
        _fail(f"{path}.function", "the name of another function in the library", vjp["function"])
    own = {a["name"] for a in f["args"]}
    for k, name in enumerate(vjp["wrt"]):
        if name not in own:
            _fail(f"{path}.wrt[{k}]", f"an argument of {f['name']}", name)
    theirs = {a["name"] for a in kernel["args"]}
    for k, name in enumerate(vjp["cotangents"]):
        if name not in theirs:
            _fail(f"{path}.cotangents[{k}]", f"an argument of {kernel['name']}", name)
