"""A per-kernel call path specialized from the manifest, for microsecond calls.

At load time each kernel gets a Python function generated from its manifest:
the argument checks, shape relations and output shapes become straight-line
code, and the memref descriptors live in per-thread storage (calls from many
threads never share them). Whenever a check fails, the generated code hands the
call to the kernel's general path, which raises the precise error; so the fast
path never decides anything the general path would not.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Callable

import numpy as np

from .memref import descriptor_type
from .status import check_status

_PY_OPS = {"add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})",
           "floordiv": "_floordiv({0}, {1})", "truediv": "_truediv({0}, {1})", "max": "max({0}, {1})",
           "min": "min({0}, {1})", "lt": "({0} < {1})", "le": "({0} <= {1})", "gt": "({0} > {1})",
           "ge": "({0} >= {1})", "eq": "({0} == {1})", "ne": "({0} != {1})", "neg": "(-{0})",
           "ceil": "_ceil({0})", "int": "int({0})", "select": "({1} if {0} else {2})"}


def _floordiv(a, b):
    return a // b if b else 0


def _truediv(a, b):
    return a / b if b else 0.0


def python_expr(expr: dict) -> str:
    """Python source for a shape expression over locals `s{i}` (shapes) and `v{i}` (scalars)."""
    if "const" in expr:
        return repr(expr["const"])
    if "arg" in expr:
        return f"v{expr['arg']}"
    if "dim" in expr:
        i, axis = expr["dim"]
        return f"s{i}[{axis}]"
    return _PY_OPS[expr["op"]].format(*[python_expr(a) for a in expr["args"]])


def build(spec: dict, fn, general: Callable) -> Callable:
    """The fast call for one kernel (`general(*args, **kwargs)` is the checked slow path)."""
    args, outputs = spec["args"], spec["outputs"]
    names = [a["name"] for a in args]
    env: dict = {"np": np, "_ndarray": np.ndarray, "_general": general, "_fn": fn, "_byref": ctypes.byref,
                 "_check_status": check_status, "_local": threading.local(), "_floordiv": _floordiv,
                 "_truediv": _truediv, "_ceil": __import__("math").ceil, "_name": spec["name"],
                 "_int": int, "_float": float, "_address": ctypes.addressof, "_char": ctypes.c_char}
    lines = [f"def call({', '.join(names)}, out=None):",
             "    if out is not None:",
             f"        return _general({', '.join(names)}, out=out)",
             "    try:",
             "        d = _local.d",
             "    except AttributeError:",
             "        d = _local.d = _descriptors()"]
    for i, a in enumerate(args):
        dtype = np.dtype(a["dtype"])
        env[f"_dt{i}"] = dtype
        x = names[i]
        if a["ndim"] == 0:
            env[f"_ct{i}"] = np.ctypeslib.as_ctypes_type(np.dtype("uint8") if a["dtype"] == "bool" else dtype)
            python_type = {"f": "float", "i": "int", "b": "bool"}[dtype.kind]
            lines += [f"    if {x}.__class__ is {python_type}:",
                      f"        d.scalar{i}.value = {x}",
                      f"        v{i} = d.scalar{i}.value",
                      # Python floats round to the argument's precision; ints must fit exactly
                      f"        if {'False' if dtype.kind == 'f' else f'v{i} != {x}'}:",
                      f"            return _general({', '.join(names)})",
                      f"        p{i} = d.scalar_ptr{i}",
                      f"    elif {x}.__class__ is _dt{i}.type:  # a numpy scalar of the exact dtype",
                      f"        d.scalar{i}.value = {x}",
                      f"        v{i} = {x}.item()",
                      f"        p{i} = d.scalar_ptr{i}",
                      f"    elif {x}.__class__ is _ndarray and {x}.dtype is _dt{i} and {x}.ndim == 0:",
                      f"        v{i} = {x}.item()",
                      f"        p{i} = {x}.ctypes.data",
                      "    else:",
                      f"        return _general({', '.join(names)})",
                      f"    s{i} = ()",
                      f"    d.a{i}.allocated = d.a{i}.aligned = p{i}"]
            continue
        lines += [f"    if not ({x}.__class__ is _ndarray and {x}.dtype is _dt{i} and {x}.ndim == {a['ndim']}"
                  f" and {x}.flags.c_contiguous):",
                  f"        return _general({', '.join(names)})",
                  f"    s{i} = {x}.shape"]
        for axis, e in enumerate(a["shape"]):
            if "const" in e:
                lines += [f"    if s{i}[{axis}] != {e['const']}:", f"        return _general({', '.join(names)})"]
        lines += [f"    v{i} = None",
                  "    try:",
                  f"        p = _address(_char.from_buffer({x}))",
                  "    except (TypeError, ValueError):  # read-only or empty",
                  f"        p = {x}.ctypes.data",
                  f"    a = d.a{i}",
                  "    a.allocated = a.aligned = p",
                  f"    a.sizes[:] = s{i}"]
        if a["ndim"] > 1:  # rank 1: stride 1, set once with the descriptor
            lines.append(f"    a.strides[:] = {_strides_expr(f's{i}', a['ndim'])}")
    for c in spec["constraints"]:
        op = "==" if c["rel"] == "eq" else ">="
        lines += [f"    if not ({python_expr(c['args'][0])} {op} {python_expr(c['args'][1])}):",
                  f"        return _general({', '.join(names)})"]
    for j, o in enumerate(outputs):
        storage = np.dtype("uint8") if o["dtype"] == "bool" else np.dtype(o["dtype"])
        env[f"_odt{j}"] = storage
        shape = ", ".join(python_expr(e) for e in o["shape"]) + ("," if o["ndim"] == 1 else "")
        lines.append(f"    os{j} = ({shape})")
        if o["ndim"] and not all(_non_negative(e) for e in o["shape"]):
            lines += [f"    if min(os{j}) < 0:", f"        return _general({', '.join(names)})"]
        lines += [f"    o{j} = np.empty(os{j}, _odt{j})",
                  f"    b = d.o{j}"]
        lines += ["    try:",
                  f"        b.allocated = b.aligned = _address(_char.from_buffer(o{j}))",
                  "    except ValueError:  # empty",
                  f"        b.allocated = b.aligned = o{j}.ctypes.data"]
        if o["ndim"]:
            lines.append("    b.sizes[:] = os{0}".format(j))
        if o["ndim"] > 1:
            lines.append(f"    b.strides[:] = {_strides_expr(f'os{j}', o['ndim'])}")
    lines += [f"    status = _fn({', '.join(f'd.ref_a{i}' for i in range(len(args)))}"
              f"{''.join(f', d.ref_o{j}' for j in range(len(outputs)))}, d.ref_dims)",
              "    if status:",
              "        _check_status(status, _name)"]
    if any(any(o["bounded"]) for o in outputs):
        lines.append("    dims = d.dims")
    results, position = [], 0
    for j, o in enumerate(outputs):
        view = f"o{j}" if o["dtype"] != "bool" else f"o{j}.view('bool')"
        if any(o["bounded"]):
            idx = ", ".join(f"slice(0, dims[{position + k}])" for k in range(o["ndim"]))
            view = f"{view}[({idx},)]"
        position += o["ndim"]
        results.append(view)
    lines.append(f"    return {results[0]}" if len(results) == 1 else f"    return ({', '.join(results)},)")
    source = "\n".join(lines)

    def descriptors():
        holder = type("Descriptors", (), {})()
        for i, a in enumerate(args):
            desc = _descriptor(a["ndim"])
            setattr(holder, f"a{i}", desc)
            setattr(holder, f"ref_a{i}", ctypes.byref(desc))
            if a["ndim"] == 0:
                cell = env[f"_ct{i}"]()
                setattr(holder, f"scalar{i}", cell)
                setattr(holder, f"scalar_ptr{i}", ctypes.addressof(cell))
        for j, o in enumerate(outputs):
            desc = _descriptor(o["ndim"])
            setattr(holder, f"o{j}", desc)
            setattr(holder, f"ref_o{j}", ctypes.byref(desc))
        n = spec["dims_length"]
        holder.dims = (ctypes.c_int64 * n)()
        dims_desc = descriptor_type(1)()
        address = ctypes.addressof(holder.dims)
        dims_desc.allocated = dims_desc.aligned = address
        dims_desc.sizes[0], dims_desc.strides[0] = n, 1
        holder.dims_desc = dims_desc
        holder.ref_dims = ctypes.byref(dims_desc)
        return holder

    env["_descriptors"] = descriptors
    exec(compile(source, f"<scanaot fast call {spec['name']}>", "exec"), env)  # noqa: S102
    call = env["call"]
    call.__source__ = source
    return call


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
