"""A per-kernel call path specialized from the manifest, for microsecond calls.

At load time each kernel gets a Python function generated from its manifest:
the argument checks, shape relations and output shapes become straight-line
code, and the memref descriptors live in per-thread storage (calls from many
threads never share them). Whenever a check fails, the generated code hands the
call to the kernel's general path, which raises the precise error; so the fast
path never decides anything the general path would not.

The generated source never contains text from the manifest, so no argument name
can clash with it or break it: its parameters are positional-only `_x0, _x1, ...`
(calls by keyword take the general path) and its locals are its own; the only
manifest values written into it are integers the schema validated, rendered by
`_literal`; dtypes, other constants and the kernel's name reach it as globals.
"""
from __future__ import annotations

import ctypes
import math
import threading
from typing import Any, Callable, Collection, Sequence

import numpy as np

from .memref import descriptor_type
from .status import check_status

_PY_OPS = {"add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})",
           "floordiv": "_floordiv({0}, {1})", "truediv": "_truediv({0}, {1})", "max": "max({0}, {1})",
           "min": "min({0}, {1})", "lt": "({0} < {1})", "le": "({0} <= {1})", "gt": "({0} > {1})",
           "ge": "({0} >= {1})", "eq": "({0} == {1})", "ne": "({0} != {1})", "neg": "(-{0})",
           "ceil": "_ceil({0})", "int": "int({0})", "select": "({1} if {0} else {2})"}
_PYTHON_TYPE = {"f": "_pyfloat", "i": "_pyint", "b": "_pybool"}


def _data_offset() -> int | None:
    """Where an ndarray object holds its data pointer (numpy's PyArrayObject: `data`,
    right after the object header), checked against numpy's own answer on arrays of
    several kinds; None where no offset agrees on all (the generated code then asks
    the buffer protocol: a read of the object is a quarter of its cost, 90 ns)."""
    base = np.arange(12, dtype="int16")
    probes = [np.empty(1, "float32"), np.zeros((3, 7)), base[3:], base.reshape(3, 4)[1], np.empty(0, "int8")]
    for offset in (16, 24, 32):
        if all(ctypes.c_void_p.from_address(id(p) + offset).value == p.ctypes.data for p in probes):
            return offset
    return None


_DATA_OFFSET = _data_offset()


def _pointer_source(target: str, array: str, on_error: str) -> list[str]:
    """Source lines setting `target` to the data pointer of `array` (C-contiguous)."""
    if _DATA_OFFSET is not None:
        return [f"    {target} = _void_at(_id({array}) + {_literal(_DATA_OFFSET)}).value"]
    return ["    try:",
            f"        {target} = _address(_char.from_buffer({array}))",
            f"    except {on_error}:  # read-only or empty",
            f"        {target} = {array}.ctypes.data"]


def _floordiv(a, b):
    return a // b if b else 0


def _truediv(a, b):
    return a / b if b else 0.0


def _literal(value: int) -> str:
    """A validated integer from the manifest as source text (never anything else)."""
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return repr(int(value))


def python_expr(expr: dict, constant: Callable[[Any], str]) -> str:
    """Python source for a shape expression over the locals `_s{i}` (shapes) and `_v{i}`
    (scalars); `constant(value)` names a constant (an integer literal or a global)."""
    if "const" in expr:
        return constant(expr["const"])
    if "arg" in expr:
        return f"_v{_literal(expr['arg'])}"
    if "dim" in expr:
        i, axis = expr["dim"]
        return f"_s{_literal(i)}[{_literal(axis)}]"
    return _PY_OPS[expr["op"]].format(*[python_expr(a, constant) for a in expr["args"]])


class _Source:
    """The generated function's lines and the globals they name."""

    def __init__(self, spec: dict, env: dict, with_out: bool):
        self.env = env
        self.lines: list[str] = []
        params = ", ".join(f"_x{i}" for i in range(len(spec["args"])))
        self.with_out = with_out
        if with_out:
            self.signature = f"def call({params}{', /, ' if params else ''}_out=None):"
            self.retry = f"return _general({params}{', ' if params else ''}out=_out)"
        else:
            self.signature = f"def call({params}{', /' if params else ''}):"
            self.retry = f"return _general({params})"

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def unless(self, condition: str, indent: str = "    ") -> None:
        """Hand the call to the general path unless `condition` holds."""
        self.add(f"{indent}if not ({condition}):", f"{indent}    {self.retry}")

    def constant(self, value: Any) -> str:
        """An integer as a literal; any other constant (float, bool) as a global."""
        if type(value) is int:
            return _literal(value)
        name = f"_k{len(self.env)}"
        self.env[name] = value
        return name

    def expr(self, expr: dict) -> str:
        return python_expr(expr, self.constant)

    def text(self) -> str:
        return "\n".join([self.signature] + self.lines)


def build(spec: dict, fn, general: Callable, rounding: Collection[int] | None = None,
          with_out: bool = False) -> Callable:
    """The fast call for one kernel (`general(*args)` is the checked slow path).

    `rounding`: the float scalar arguments that take a Python float rounded to their
    precision (default: all; `scanaot.function` passes Aesara's floatX rule); others
    take only floats their dtype holds exactly. `with_out`: the call also takes
    `_out`, caller-owned output buffers (handed on as `out=`), used when each has
    exactly its output's dtype and shape, is writable and shares no memory with an
    input or another output."""
    env: dict = {"_empty": np.empty, "_ndarray": np.ndarray, "_general": general, "_fn": fn,
                 "_check_status": check_status, "_local": threading.local(), "_floordiv": _floordiv,
                 "_truediv": _truediv, "_ceil": math.ceil, "_name": spec["name"], "_pyint": int,
                 "_pyfloat": float, "_pybool": bool, "_address": ctypes.addressof, "_char": ctypes.c_char,
                 "_void_at": ctypes.c_void_p.from_address, "_id": id,
                 "_sequence": (list, tuple)}
    src = _Source(spec, env, with_out)
    src.add("    try:",
            "        _d = _local.d",
            "    except AttributeError:",
            "        _d = _local.d = _descriptors()")
    for i, a in enumerate(spec["args"]):
        if a["ndim"]:
            _array_arg(src, i, a)
        else:
            _scalar_arg(src, i, a, rounding is None or i in rounding)
    for c in spec["constraints"]:
        op = "==" if c["rel"] == "eq" else ">="
        src.unless(f"{src.expr(c['args'][0])} {op} {src.expr(c['args'][1])}")
    if with_out:
        _out_buffers(src, spec)
    for j, o in enumerate(spec["outputs"]):
        _output(src, j, o)
    if with_out:
        src.add(f"    if _out is not None and ({_overlap_test(spec)}):", f"        {src.retry}")
    _call_and_results(src, spec)
    env["_descriptors"] = lambda: _descriptors(spec, env)
    source = src.text()
    exec(compile(source, f"<scanaot fast call {spec['name']}>", "exec"), env)  # noqa: S102
    call = env["call"]
    call.__source__ = source
    return call


def _scalar_arg(src: _Source, i: int, a: dict, rounds: bool) -> None:
    """A rank-0 argument: a Python number, a numpy scalar or a 0-d array of the exact dtype."""
    dtype = np.dtype(a["dtype"])
    src.env[f"_dt{i}"] = dtype
    src.env[f"_ct{i}"] = np.ctypeslib.as_ctypes_type(np.dtype("uint8") if dtype.kind == "b" else dtype)
    x, n = f"_x{i}", i
    src.add(f"    if {x}.__class__ is {_PYTHON_TYPE[dtype.kind]}:",
            f"        _d.scalar{n}.value = {x}",
            f"        _v{n} = _d.scalar{n}.value")
    if dtype.kind != "f" or not rounds:  # Python floats may round to the argument's precision
        src.unless(f"_v{n} == {x}", "        ")
    elif dtype.itemsize < 8:  # but not overflow to inf: the general path names that
        src.unless(f"_v{n} - _v{n} == 0 or {x} - {x} != 0", "        ")
    src.add(f"        _p{n} = _d.scalar_ptr{n}",
            f"    elif {x}.__class__ is _dt{n}.type:  # a numpy scalar of the exact dtype",
            f"        _v{n} = {x}.item()",
            f"        _d.scalar{n}.value = _v{n}",
            f"        _p{n} = _d.scalar_ptr{n}",
            f"    elif {x}.__class__ is _ndarray and {x}.dtype is _dt{n} and {x}.ndim == 0:",
            f"        _v{n} = {x}.item()",
            f"        _p{n} = {x}.ctypes.data",
            "    else:",
            f"        {src.retry}",
            f"    _s{n} = ()",
            f"    _d.a{n}.allocated = _d.a{n}.aligned = _p{n}")


def _array_arg(src: _Source, i: int, a: dict) -> None:
    """An array argument: exact dtype and rank, C-contiguous, its constant dims as stated."""
    src.env[f"_dt{i}"] = np.dtype(a["dtype"])
    x, n, ndim = f"_x{i}", i, _literal(a["ndim"])
    src.unless(f"{x}.__class__ is _ndarray and {x}.dtype is _dt{n} and {x}.ndim == {ndim}"
               f" and {x}.flags.c_contiguous")
    src.add(f"    _s{n} = {x}.shape")
    for axis, e in enumerate(a["shape"]):
        if "const" in e:
            src.unless(f"_s{n}[{axis}] == {_literal(e['const'])}")
    src.add(*_pointer_source(f"_p{n}", x, "(TypeError, ValueError)"),
            f"    _a = _d.a{n}",
            f"    _a.allocated = _a.aligned = _p{n}",
            f"    _a.sizes[:] = _s{n}")
    if a["ndim"] > 1:  # rank 1: stride 1, set once with the descriptor
        src.add(f"    _a.strides[:] = {_strides_expr(f'_s{n}', a['ndim'])}")


def _output(src: _Source, j: int, o: dict) -> None:
    """Allocate output j with the manifest's shape and point its descriptor at it."""
    src.env[f"_odt{j}"] = np.dtype("uint8") if o["dtype"] == "bool" else np.dtype(o["dtype"])
    n = j
    shape = ", ".join(src.expr(e) for e in o["shape"]) + ("," if o["ndim"] == 1 else "")
    src.add(f"    _os{n} = ({shape})")
    if o["ndim"] and not all(_non_negative(e) for e in o["shape"]):
        src.unless(f"min(_os{n}) >= 0")
    if src.with_out:
        src.add("    if _out is None:",
                f"        _o{n} = _empty(_os{n}, _odt{n})",
                "    else:",
                f"        _o{n} = _out[{_literal(n)}]")
        src.unless(f"_o{n}.__class__ is _ndarray and _o{n}.dtype is _odt{n} and _o{n}.shape == _os{n}"
                   f" and _o{n}.flags.c_contiguous and _o{n}.flags.writeable", "        ")
    else:
        src.add(f"    _o{n} = _empty(_os{n}, _odt{n})")
    src.add(*_pointer_source(f"_q{n}", f"_o{n}", "ValueError"),
            f"    _b = _d.o{n}",
            f"    _b.allocated = _b.aligned = _q{n}")
    if o["ndim"]:
        src.add(f"    _b.sizes[:] = _os{n}")
    if o["ndim"] > 1:
        src.add(f"    _b.strides[:] = {_strides_expr(f'_os{n}', o['ndim'])}")


def _out_buffers(src: _Source, spec: dict) -> None:
    """`_out` must be a list or tuple of one buffer per output; `until` outputs (their
    leading dim a bound the fast path caps) always take the general path."""
    count = _literal(len(spec["outputs"]))
    if any(any(o["bounded"]) for o in spec["outputs"]):
        src.unless("_out is None")
    else:
        src.unless(f"_out is None or (_out.__class__ in _sequence and len(_out) == {count})")


def _overlap_test(spec: dict) -> str:
    """Source of a test that holds when an output buffer's bytes meet an input array's or
    an earlier output's. Every array of the fast path is C-contiguous, so its bytes are
    [address, address + nbytes): two integer comparisons per pair instead of
    np.may_share_memory (an empty input may count as meeting one: the general path,
    which `first_overlap` decides exactly, then runs the call)."""
    tests = []
    for j in range(len(spec["outputs"])):
        out = (f"_q{j}", f"_o{j}.nbytes")
        for i, a in enumerate(spec["args"]):
            pair = _meet(out, (f"_p{i}", f"_x{i}.nbytes"))
            tests.append(pair if a["ndim"] else f"(_x{i}.__class__ is _ndarray and {pair})")
        tests += [_meet(out, (f"_q{k}", f"_o{k}.nbytes")) for k in range(j)]
    return " or ".join(tests) or "False"


def _meet(a: tuple[str, str], b: tuple[str, str]) -> str:
    return f"({a[0]} < {b[0]} + {b[1]} and {b[0]} < {a[0]} + {a[1]})"


def first_overlap(inputs: Sequence, outputs: Sequence) -> tuple[int, str, int] | None:
    """(j, "input" or "out", i): output j shares memory with input i or output i < j; None
    when no output does (kernels write results while still reading inputs)."""
    share = np.may_share_memory
    for j, buf in enumerate(outputs):
        for i, other in enumerate(inputs):
            if other.__class__ is np.ndarray and share(buf, other):
                return j, "input", i
        for i in range(j):
            if share(buf, outputs[i]):
                return j, "out", i
    return None


def _call_and_results(src: _Source, spec: dict) -> None:
    """Run the kernel, raise on a failed status, return the outputs (`until` ones sliced)."""
    outputs = spec["outputs"]
    refs = ([f"_d.ref_a{i}" for i in range(len(spec["args"]))]
            + [f"_d.ref_o{j}" for j in range(len(outputs))] + ["_d.ref_dims"])
    src.add(f"    _status = _fn({', '.join(refs)})",
            "    if _status:",
            "        _check_status(_status, _name)")
    if any(any(o["bounded"]) for o in outputs):
        src.add("    _dims = _d.dims")
    results, position = [], 0
    for j, o in enumerate(outputs):
        view = f"_o{j}" if o["dtype"] != "bool" else f"_o{j}.view('bool')"
        if any(o["bounded"]):
            idx = ", ".join(f"slice(0, _dims[{position + k}])" for k in range(o["ndim"]))
            view = f"{view}[({idx},)]"
        position += o["ndim"]
        results.append(view)
    src.add(f"    return {results[0]}" if len(results) == 1 else f"    return ({', '.join(results)},)")


def _descriptors(spec: dict, env: dict) -> Any:
    """One thread's descriptors: one per argument and output, scalar cells, the dims array."""
    holder = type("Descriptors", (), {})()
    for i, a in enumerate(spec["args"]):
        desc = _descriptor(a["ndim"])
        setattr(holder, f"a{i}", desc)
        setattr(holder, f"ref_a{i}", ctypes.byref(desc))
        if a["ndim"] == 0:
            cell = env[f"_ct{i}"]()
            setattr(holder, f"scalar{i}", cell)
            setattr(holder, f"scalar_ptr{i}", ctypes.addressof(cell))
    for j, o in enumerate(spec["outputs"]):
        desc = _descriptor(o["ndim"])
        setattr(holder, f"o{j}", desc)
        setattr(holder, f"ref_o{j}", ctypes.byref(desc))
    n = spec["dims_length"]
    holder.dims = (ctypes.c_int64 * n)()
    dims_desc = descriptor_type(1)()
    dims_desc.allocated = dims_desc.aligned = ctypes.addressof(holder.dims)
    dims_desc.sizes[0], dims_desc.strides[0] = n, 1
    holder.dims_desc = dims_desc
    holder.ref_dims = ctypes.byref(dims_desc)
    return holder


def _descriptor(ndim: int) -> ctypes.Structure:
    """An empty descriptor; rank 1's stride is always 1, so the calls never write it."""
    desc = descriptor_type(ndim)()
    if ndim == 1:
        desc.strides[0] = 1
    return desc


def _non_negative(expr: dict) -> bool:
    """Whether a shape expression can never be negative: a dim, or a non-negative constant."""
    return "dim" in expr or ("const" in expr and expr["const"] >= 0)


def _strides_expr(shape: str, ndim: int) -> str:
    """C-contiguous strides in elements, as a Python expression."""
    parts = []
    for axis in range(ndim):
        later = [f"{shape}[{k}]" for k in range(axis + 1, ndim)]
        parts.append(" * ".join(later) if later else "1")
    return "(" + ", ".join(parts) + ("," if ndim == 1 else "") + ")"
