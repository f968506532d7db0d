"""Calling one kernel of a loaded library (numpy + ctypes only).

Ownership: the caller owns every buffer. For each call the runtime allocates the
outputs (shapes from the manifest; an upper bound for `until` results) unless
the caller passes `out=`, and a small dims array; the kernel writes into them and
returns a status. Results of `until` loops are returned sliced to the steps run.
"""
from __future__ import annotations

import ctypes
import math
import operator
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import numpy as np

from . import fastcall
from .elf import LibraryError
from .memref import descriptor_for, descriptor_type
from .shapes import evaluate
from .status import OUTPUT_FULL, StatusError, check_status

_STORAGE = {"bool": np.dtype("uint8")}
FIRST_CAPACITY = 256  # rows first given to an `until` loop's results; doubled while the loop fills them


MAX_PARAMETERS = 1024  # ctypes' limit on a call's parameters (arguments + outputs + dims)


class ArgumentError(TypeError):
    """An argument the kernel cannot take: names the argument and what was expected."""


class ShapeError(ValueError):
    """Arguments whose shapes break a relation the manifest states."""


class OutputTooLarge(ShapeError, MemoryError):
    """An output the arguments make too large to allocate (names the output, its shape and
    the arguments that set it); still a MemoryError for callers that catch that."""


def _kernel_of(library: Any, name: str) -> "Kernel":
    """Unpickling a kernel: the library (unpickled first, once per process) has it."""
    return library[name]


class Kernel:
    """One compiled function. Thread-safe: each call has its own buffers."""

    def __init__(self, spec: dict, handle: ctypes.CDLL, path: Path):
        self.spec = spec
        self.name = spec["name"]
        self.args = spec["args"]
        self.outputs = spec["outputs"]
        self.arg_names = [a["name"] for a in self.args]
        self._by_position = ByPosition(self.arg_names)
        self.n_args = len(self.args)  # the caller's arguments (a StatefulKernel's state holds the rest)
        self._dtypes = [np.dtype(a["dtype"]) for a in self.args]
        self._out_dtypes = [np.dtype(o["dtype"]) for o in self.outputs]
        try:
            self._fn = getattr(handle, spec["symbol"])
        except AttributeError:
            raise LibraryError(f"{path}: symbol {spec['symbol']} is missing") from None
        if len(self.args) + len(self.outputs) + 1 > MAX_PARAMETERS:
            raise LibraryError(f"{path}: {self.name} takes {len(self.args)} arguments and {len(self.outputs)} "
                               f"outputs; ctypes calls at most {MAX_PARAMETERS} parameters")
        self._fn.restype = ctypes.c_int32
        self._fn.argtypes = ([ctypes.POINTER(descriptor_type(a["ndim"])) for a in self.args]
                             + [ctypes.POINTER(descriptor_type(o["ndim"])) for o in self.outputs]
                             + [ctypes.POINTER(descriptor_type(1))])
        self._dims_length = spec["dims_length"]
        self._fast = self.fast_call(self.call_checked, with_out=True)

    def fast_call(self, general: Callable, rounding: Collection[int] | None = None,
                  with_out: bool = False) -> Callable:
        """The call path generated from the manifest (runtime/fastcall.py), handing every
        call it does not take to `general` (`scanaot.function` passes its own conversions).
        `rounding`: the float scalars that take any Python float (default all);
        `with_out`: it also takes `_out=` buffers."""
        # the fast path passes only its own descriptors: a second pointer to the symbol
        # without argtypes skips ctypes' per-argument type checks (0.6 -> 0.2 us a call)
        unchecked = type(self._fn)(ctypes.cast(self._fn, ctypes.c_void_p).value)
        unchecked.restype = ctypes.c_int32
        return fastcall.build(_with_capacity(self.spec, FIRST_CAPACITY), unchecked, general, rounding, with_out)

    def __repr__(self) -> str:
        return f"<kernel {self.name}({', '.join(self.arg_names)})>"

    def __reduce__(self):
        """A kernel pickles as its library (the bytes, once per pickle) and its name."""
        return _kernel_of, (self.library, self.name)

    def vjp(self, *args: Any, cotangents: Any = None, **kwargs: Any):
        """Gradients of sum(outputs * cotangents) w.r.t. the library's `grad_wrt`, in that order.

        `cotangents`: one array per float output (a list, a dict by output name, or a
        single array for one output)."""
        kernel = getattr(self, "_vjp", None)
        if kernel is None:
            raise ArgumentError(f"{self.name} has no gradient kernel: compile it with grad_wrt=[...]")
        cotangents = self._cotangents(kernel, cotangents)
        values = self._bind(args, kwargs)
        self._check_cotangent_shapes(values, cotangents)
        values = [v.view(self._dtypes[i]) if isinstance(v, np.ndarray) and v.dtype != self._dtypes[i] else v
                  for i, v in enumerate(values)]
        return kernel(*values, *cotangents)

    def _check_cotangent_shapes(self, values: list[np.ndarray], cotangents: list) -> None:
        """Each cotangent has its output's shape (known from the arguments, but for the
        leading dim of an `until` result: the steps run)."""
        shapes = [v.shape for v in values]
        wanted = self._output_shapes(shapes, [v.item() if v.ndim == 0 else None for v in values])
        outputs = {o["name"]: (o, shape) for o, shape in zip(self.outputs, wanted)}
        for name, cot in zip(self.spec["vjp"]["cotangents"], cotangents):
            out, shape = outputs.get(name[len("cot_"):], (None, None))
            if out is None or not isinstance(cot, np.ndarray):
                continue
            fits = cot.ndim == len(shape) and all(b or c == d for c, d, b in zip(cot.shape, shape, out["bounded"]))
            if not fits:
                until = " (its leading dim: the steps run)" if any(out["bounded"]) else ""
                raise ShapeError(f"{self.name}.vjp(): cotangent {name!r} must have the shape of output "
                                    f"{out['name']!r}, {shape}{until}; got {cot.shape}")

    def _cotangents(self, kernel: "Kernel", cotangents: Any) -> list:
        """The cotangents as a list in the gradient kernel's order; a number stands for
        the one cotangent of a single rank-0 output (converted to its dtype)."""
        names = self.spec["vjp"]["cotangents"]
        label = f"{self.name}.vjp()"
        if cotangents is None:
            raise ArgumentError(f"{label}: cotangents= is required ({', '.join(names)})")
        if isinstance(cotangents, dict):
            outs = [n[len("cot_"):] for n in names]
            unknown = set(cotangents) - set(outs)
            if unknown:
                raise ArgumentError(f"{label}: no output named {sorted(unknown)[0]!r}; outputs: "
                                    f"{', '.join(outs)}")
            cotangents = [cotangents.get(o, _MISSING) for o in outs]
        elif isinstance(cotangents, (np.ndarray, np.generic, bool, int, float)):
            cotangents = [cotangents]
        elif not isinstance(cotangents, (list, tuple)):
            raise ArgumentError(f"{label}: cotangents= must be an array, a list or a dict by output name "
                                f"({', '.join(names)}), got {type(cotangents).__name__}")
        if len(cotangents) != len(names):
            raise ArgumentError(f"{label}: expected {len(names)} cotangent(s) "
                                f"({', '.join(names)}), got {len(cotangents)}")
        specs = kernel.args[self.n_args:self.n_args + len(names)]  # the caller's arguments, then these
        return [_cotangent(label, spec, value) for spec, value in zip(specs, cotangents)]

    def __call__(self, *args: Any, **kwargs: Any):
        """Call the kernel: arrays in (positional or by name), new arrays out.

        `out=[...]` passes the output buffers (reused across calls: Aesara's
        allow_gc=False); they must have the manifest's shapes and be writable.
        """
        out = kwargs.pop("out", None) if kwargs else None
        if kwargs:
            bound = self._by_position(args, kwargs)
            if bound is None:
                return self.call_checked(*args, out=out, **kwargs)
            args = bound
        try:
            return self._fast(*args, _out=out)
        except (TypeError, MemoryError, ValueError, StatusError):
            # the general path names what was wrong, or gives an until loop more room
            # (kernels are pure: running one again is safe)
            return self.call_checked(*args, out=out)

    def call_all(self, *args: Any, out: Sequence[np.ndarray] | None = None):
        """Every manifest argument by position (shared ones included, in manifest order)
        and every output back (update outputs included): one array for one output, else
        a tuple. No state is read or written: `scanaot.function` passes the values of
        its shared variables itself and stores the updates it gets back."""
        try:
            return self._fast(*args, _out=out)
        except (TypeError, MemoryError, ValueError, StatusError):
            return self.call_checked(*args, out=out)

    def call_checked(self, *args: Any, out: Sequence[np.ndarray] | None = None, **kwargs: Any):
        """The general path: every check, with a precise error for each failure."""
        arrays = self._bind(args, kwargs)
        shapes = [a.shape for a in arrays]
        scalars = [a.item() if a.ndim == 0 else None for a in arrays]
        self._check_constraints(shapes, scalars)
        wanted = self._output_shapes(shapes, scalars)
        if out is not None:
            outs = self._given_outputs(wanted, out)
            _check_no_overlap(self.name, arrays, outs)
            status, dims = self._run(arrays, outs)
        else:
            outs, status, dims = self._run_growing(arrays, wanted)
        check_status(status, self.name, self.spec.get("checks", ()))
        results = self._results(outs, dims)
        return results[0] if len(results) == 1 else tuple(results)

    def _run(self, arrays: list[np.ndarray], outs: list[np.ndarray]) -> tuple[int, np.ndarray]:
        dims = np.zeros(self._dims_length, dtype=np.int64)
        descs = [descriptor_for(a) for a in arrays + outs + [dims]]
        return self._fn(*[ctypes.byref(d) for d in descs]), dims

    def _run_growing(self, arrays: list[np.ndarray], wanted: list[tuple[int, ...]]):
        """Run with new outputs. An `until` result's leading dim is only a bound (n_steps),
        so it gets FIRST_CAPACITY rows, doubled and run again while the kernel reports
        OUTPUT_FULL: memory follows the steps run, not the bound; the work is at most
        about twice that of one run with enough rows."""
        capacity = FIRST_CAPACITY
        while True:
            shapes = [_capped(shape, spec["bounded"], capacity) for shape, spec in zip(wanted, self.outputs)]
            outs = [self._allocate(j, shape) for j, shape in enumerate(shapes)]
            status, dims = self._run(arrays, outs)
            if status != OUTPUT_FULL or all(s == w for s, w in zip(shapes, wanted)):
                return outs, status & ~OUTPUT_FULL, dims
            capacity *= 2

    # -- argument checks: every one raises before native code runs
    def _bind(self, args: tuple, kwargs: dict) -> list[np.ndarray]:
        n = len(self.args)
        if len(args) > n:
            raise ArgumentError(f"{self.name}() takes {n} arguments ({', '.join(self.arg_names)}), "
                                f"got {len(args)}")
        values: list[Any] = list(args) + [_MISSING] * (n - len(args))
        for key, value in kwargs.items():
            if key not in self.arg_names:
                raise ArgumentError(f"{self.name}() has no argument {key!r}; arguments: "
                                    f"{', '.join(self.arg_names)}")
            i = self.arg_names.index(key)
            if values[i] is not _MISSING:
                raise ArgumentError(f"{self.name}(): argument {key!r} given twice")
            values[i] = value
        return [self._check_arg(i, v) for i, v in enumerate(values)]

    def _check_arg(self, i: int, value: Any) -> np.ndarray:
        spec = self.args[i]
        label = f"{self.name}(): argument {spec['name']!r}"
        want = self._dtypes[i]
        if value is _MISSING:
            raise ArgumentError(f"{label} is missing")
        if spec["ndim"] == 0 and isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
            value = _python_scalar(label, value, want)
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise ArgumentError(f"{label}: expected a numpy array of {want} with {spec['ndim']} "
                                f"dims, got {type(value).__name__}")
        if value.dtype != want:
            raise ArgumentError(f"{label}: expected dtype {want}, got {value.dtype}")
        if value.ndim != spec["ndim"]:
            raise ArgumentError(f"{label}: expected {spec['ndim']} dims, got {value.ndim} (shape {value.shape})")
        if not value.flags.c_contiguous:
            raise ArgumentError(f"{label}: not C-contiguous; pass np.ascontiguousarray(...)")
        for axis, expr in enumerate(spec["shape"]):
            if "const" in expr and value.shape[axis] != expr["const"]:
                raise ArgumentError(f"{label}: dim {axis} must be {expr['const']}, got shape {value.shape}")
        return value.view(_STORAGE[str(want)]) if str(want) in _STORAGE else value

    def _check_constraints(self, shapes: list, scalars: list) -> None:
        for c in self.spec["constraints"]:
            a, b = (evaluate(e, shapes, scalars) for e in c["args"])
            ok = a == b if c["rel"] == "eq" else a >= b
            if not ok:
                op = "==" if c["rel"] == "eq" else ">="
                raise ShapeError(f"{self.name}(): {c['text'][0]} {op} {c['text'][1]} must hold "
                                 f"({c['why']}), but it is {a} {op} {b}")

    def _output_shapes(self, shapes: list, scalars: list) -> list[tuple[int, ...]]:
        wanted = []
        for spec in self.outputs:
            shape = tuple(int(evaluate(e, shapes, scalars)) for e in spec["shape"])
            if any(d < 0 for d in shape):
                raise ShapeError(f"{self.name}(): output {spec['name']!r} would have the negative "
                                 f"shape {shape}; check n_steps and the sequences' lengths")
            wanted.append(shape)
        return wanted

    def _given_outputs(self, wanted: list[tuple[int, ...]], out: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The caller's `out=` buffers, checked: an `until` result's buffer has the full bound."""
        if not isinstance(out, (list, tuple)):
            raise ArgumentError(f"{self.name}(): out= must be a list or tuple of {len(self.outputs)} arrays, "
                                f"got {type(out).__name__}")
        if len(out) != len(self.outputs):
            raise ArgumentError(f"{self.name}(): out= needs {len(self.outputs)} arrays, got {len(out)}")
        checked = []
        for j, (buf, shape, dtype) in enumerate(zip(out, wanted, self._out_dtypes)):
            label = f"{self.name}(): out[{j}]"
            if not isinstance(buf, np.ndarray) or buf.dtype != dtype or buf.shape != shape:
                got = f"{buf.dtype} {buf.shape}" if isinstance(buf, np.ndarray) else type(buf).__name__
                raise ArgumentError(f"{label}: expected a {dtype} array of shape {shape}, got {got}")
            if not buf.flags.writeable:
                raise ArgumentError(f"{label} is read-only")
            if not buf.flags.c_contiguous:
                raise ArgumentError(f"{label}: not C-contiguous")
            checked.append(buf.view(_STORAGE[str(dtype)]) if str(dtype) in _STORAGE else buf)
        return checked

    def _allocate(self, j: int, shape: tuple[int, ...]) -> np.ndarray:
        """A new buffer for output j; if it cannot be had, an error naming the output, its
        shape (as the manifest states it) and the arguments that set that shape."""
        dtype = self._out_dtypes[j]
        try:
            return np.empty(shape, dtype=_STORAGE.get(str(dtype), dtype))
        except (MemoryError, ValueError):  # ValueError: more bytes than an address space holds
            spec = self.outputs[j]
            drivers = sorted({self.arg_names[i] for e in spec["shape"] for i in _arguments_in(e)})
            size = float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            why = (f"{_bytes(size)} of {dtype}, more than can be allocated" if size else
                   "a dimension larger than any array can have")
            raise OutputTooLarge(
                f"{self.name}(): output {spec['name']!r} would have shape {shape} "
                f"([{', '.join(spec.get('shape_text', []))}]), {why}; its shape is set by the argument(s) "
                f"{', '.join(drivers) or '(none)'}") from None

    def _results(self, outs: list[np.ndarray], dims: np.ndarray) -> list[np.ndarray]:
        results, position = [], 0
        for buf, spec, dtype in zip(outs, self.outputs, self._out_dtypes):
            rank = spec["ndim"]
            actual = tuple(int(d) for d in dims[position:position + rank])
            position += rank
            if actual != buf.shape:
                buf = buf[tuple(slice(0, d) for d in actual)]
            results.append(buf.view(dtype) if buf.dtype != dtype else buf)
        return results


_MISSING = object()


class ByPosition:
    """The arguments in order when the keywords name exactly the ones not given by
    position (else None: the caller's checked path says what is wrong). All by name,
    they are taken by one C-level itemgetter (a keyword call costs 40 ns, not 500)."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        if len(self.names) > 1:
            self._all_by_name = operator.itemgetter(*self.names)
        elif self.names:  # an itemgetter of one name returns the value itself
            self._all_by_name = lambda kwargs, name=self.names[0]: (kwargs[name],)

    def __call__(self, args: tuple, kwargs: dict) -> tuple | None:
        if len(args) + len(kwargs) != len(self.names):
            return None
        if not kwargs:
            return args
        try:
            if args:
                return (*args, *[kwargs[name] for name in self.names[len(args):]])
            return self._all_by_name(kwargs)
        except KeyError:
            return None


def _capped(shape: tuple[int, ...], bounded: list[bool], capacity: int) -> tuple[int, ...]:
    """An output's shape with each bounded dim (an `until` loop's steps) at most `capacity`."""
    return tuple(min(d, capacity) if b else d for d, b in zip(shape, bounded))


def _with_capacity(spec: dict, capacity: int) -> dict:
    """The spec with each bounded output dim capped at `capacity` (for the fast path, which
    hands an OUTPUT_FULL status, like every failure, to the general path)."""
    outputs = [{**o, "shape": [{"op": "min", "args": [e, {"const": capacity}]} if b else e
                               for e, b in zip(o["shape"], o["bounded"])]} for o in spec["outputs"]]
    return {**spec, "outputs": outputs}


def _arguments_in(expr: dict) -> set[int]:
    """The arguments a shape expression reads (a scalar's value or an array's dim)."""
    if "arg" in expr:
        return {expr["arg"]}
    if "dim" in expr:
        return {expr["dim"][0]}
    return set().union(*[_arguments_in(a) for a in expr.get("args", [])])


def _bytes(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.3g} {unit}" if unit != "bytes" else f"{int(size)} bytes"
        size /= 1024
    raise AssertionError  # pragma: no cover


def _cotangent(label: str, spec: dict, value: Any) -> Any:
    """A number for a rank-0 cotangent becomes a rank-0 array of its dtype; a number for
    an array cotangent is refused here, naming the cotangent and the shape it needs."""
    if not isinstance(value, (np.generic, bool, int, float)):
        return value
    want = np.dtype(spec["dtype"])
    if spec["ndim"] != 0:
        raise ArgumentError(f"{label}: cotangent {spec['name']!r} must be a {want} array with "
                            f"{spec['ndim']} dims (the output's shape), got the scalar {value!r}")
    if not np.can_cast(np.min_scalar_type(value), want, "same_kind"):
        raise ArgumentError(f"{label}: cotangent {spec['name']!r} must be a {want} scalar, got {value!r}")
    return np.asarray(value, dtype=want)


def _python_scalar(label: str, value: bool | int | float, want: np.dtype) -> np.ndarray:
    """A Python number as a rank-0 array of `want`: floats round to a float dtype (but
    never overflow to inf); a Python int or bool, and anything for an integer or bool
    dtype, only when it is held exactly (never a float: NaN, inf and 2.5 would
    otherwise fail inside numpy with a message naming nothing)."""
    if want.kind != "f" and isinstance(value, float):
        raise ArgumentError(f"{label}: {value!r} is not exactly representable as {want} (expected a "
                            f"scalar of dtype {want}, got a float)")
    try:
        with np.errstate(over="ignore"):
            converted = np.asarray(value, dtype=want)
    except (OverflowError, ValueError):
        raise ArgumentError(f"{label}: {value!r} does not fit in {want}") from None
    exact_only = want.kind != "f" or not isinstance(value, float)  # ints stay exact in a float too
    if exact_only and converted.item() != value:
        raise ArgumentError(f"{label}: {value!r} is not exactly representable as {want}")
    if isinstance(value, float) and math.isfinite(value) and not np.isfinite(converted):
        raise ArgumentError(f"{label}: {value!r} does not fit in {want} (it would become {converted.item()})")
    return converted


def _check_no_overlap(name: str, arrays: list[np.ndarray], outs: list[np.ndarray]) -> None:
    """Kernels write results while still reading inputs (C's `restrict`): out= buffers
    must not share memory with an input or with each other."""
    found = fastcall.first_overlap(arrays, outs)
    if found is None:
        return
    j, kind, i = found
    if kind == "input":
        raise ArgumentError(f"{name}(): out[{j}] overlaps input {i}; outputs must not share memory with inputs")
    raise ArgumentError(f"{name}(): out[{j}] overlaps out[{i}]")
