"""`scanaot.function`: compile a traced graph and call it with numpy values."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from .. import config
from ..graph.basic import Variable, as_tensor_variable, clone_replace, free_inputs
from ..runtime import load_bytes
from ..runtime.kernel import ByPosition
from ..runtime.status import StatusError
from .artifact import build
from .manifest import make_spec, update_pairs

_recorders: list[list["Function"]] = []


class Function:
    """A compiled function. Call it like the Python function it stands for.

    It runs through the same artifact path as `scanaot.compile`: a cached `.so`
    loaded by `scanaot.runtime`. `f.ir(stage)` shows the IR at one of
    `scanaot.targets.pipeline.STAGES`; `f.library_path` is the library.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Any, name: str = "main",
                 updates: Any = None, cpu: str | None = None, fastmath: str | bool = "none",
                 allow_input_downcast: bool | None = None, no_default_updates: bool = False):
        self.spec = make_spec(name, inputs, outputs, updates, default_updates=not no_default_updates)
        self.inputs = self.spec.inputs[:self.spec.n_inputs]
        self.name = name
        built = build([self.spec], cpu=cpu, fastmath=fastmath, library=name, default_cpu="native")
        self.library_path, self._stages, self.manifest = built.path, built.stages, built.manifest
        self._kernel = load_bytes(built.data, str(built.path))[name]
        self._downcast = allow_input_downcast
        self._arity = len(self.inputs)
        self._by_position = ByPosition([v.name for v in self.inputs])
        self._fast = self._kernel.fast_call(self._convert_and_call, _rounding(self.inputs, allow_input_downcast))
        self._finish = _identity if self.spec.unpack else list if self.spec.n_outputs != 1 else _one_list
        self._stateful = bool(self.spec.shared or self.spec.updated)
        # every argument, shared ones included, in manifest order (runtime/kernel.py)
        self._call_all = getattr(self._kernel, "call_all", self._kernel)
        self.calls: list[tuple[list, list]] = []  # filled only inside record_functions()
        for recorder in _recorders:
            recorder.append(self)

    def ir(self, stage: str = "scan") -> str:
        """The IR at `stage`: scan, scan-opt, scf, memref or llvm."""
        return self._stages[stage]

    def __call__(self, /, *args: Any, **kwargs: Any):  # an input may be named "self"
        """Positional arrays of the inputs' dtypes go straight to the kernel's generated
        call path; anything else (lists, keywords, casts) is converted first."""
        if self._stateful:
            return self._finish(self._call_with_shared(*_bind(self.inputs, args, kwargs)))
        if kwargs:
            bound = self._by_position(args, kwargs)
            if bound is None:
                return self._call_general(args, kwargs)
            args, kwargs = bound, {}
        if _recorders or len(args) != self._arity:
            return self._call_general(args, kwargs)
        try:
            return self._finish(self._fast(*args))
        except (MemoryError, ValueError, StatusError):
            # the kernel's checked path names what failed, or gives an until loop more room
            return self._call_general(args, kwargs, checked=True)

    def _convert_and_call(self, *args: Any):
        """What the generated path hands over: convert every value, then call the kernel."""
        return self._kernel(*self._arrays(args))

    def _arrays(self, values) -> list:
        """Each input's value as an array of its variable's type (Aesara's casting rules)."""
        return [_convert(i, var, v, self._downcast) for i, (var, v) in enumerate(zip(self.inputs, values))]

    def _call_with_shared(self, *args: Any):
        """The shared variables' values join the caller's; after the call every update is
        stored at once, so no update sees another's new value (Aesara's semantics)."""
        arrays = self._arrays(args) + [v.get_value(borrow=True) for v in self.spec.shared]
        results = self._call_all(*arrays)
        results = list(results) if isinstance(results, (tuple, list)) else [results]
        outputs, new_values = results[:self.spec.n_outputs], results[self.spec.n_outputs:]
        for var, value in zip(self.spec.updated, new_values):
            var.set_value(value, borrow=True)
        if _recorders:
            self.calls.append((arrays, results))
        return outputs[0] if len(outputs) == 1 else outputs

    def _call_general(self, args: tuple, kwargs: dict, checked: bool = False):
        arrays = self._arrays(_bind(self.inputs, args, kwargs))
        results = (self._kernel.call_checked if checked else self._kernel)(*arrays)
        if _recorders:
            self.calls.append((arrays, list(results) if isinstance(results, tuple) else [results]))
        return self._finish(results)


def _identity(result: Any) -> Any:
    return result


def _one_list(result: Any) -> list:
    return [result]


def _rounding(inputs: Sequence[Variable], allow_downcast: bool | None) -> set[int]:
    """The float scalar inputs that take any Python float, rounded: Aesara lets Python
    floats round to floatX (and any float round with allow_input_downcast=True)."""
    if allow_downcast is False:
        return set()
    return {i for i, v in enumerate(inputs)
            if v.ndim == 0 and v.dtype.startswith("float") and (allow_downcast or v.dtype == config.floatX)}


@contextlib.contextmanager
def record_functions() -> Iterator[list[Function]]:
    """Collect the Functions compiled inside the block, and their calls' arguments and
    results (the demo and the artifact tests replay them through `scanaot.compile`)."""
    made: list[Function] = []
    _recorders.append(made)
    try:
        yield made
    finally:
        _recorders.remove(made)


def function(inputs: Sequence[Variable], outputs: Any = None, mode: Any = None, updates: Any = None,
             givens: Any = None, no_default_updates: bool = False, accept_inplace: bool = False,
             name: str | None = None, rebuild_strict: bool = True, allow_input_downcast: bool | None = None,
             profile: Any = None, on_unused_input: str | None = None, *, cpu: str | None = None,
             fastmath: str | bool = "none") -> Function:
    """Aesara's `aesara.function`, with its parameters in its order; `mode`,
    `accept_inplace`, `rebuild_strict` and `profile` are accepted and ignored.
    `on_unused_input` is "raise" (default), "warn" or "ignore". `cpu` and `fastmath` are
    scanaot's compile options (docs/function.md).

    Shared variables are implicit inputs. `updates` (a dict, OrderedDict or list of
    pairs) are computed from the values before the call and all stored after it, with
    every used shared variable's `default_update` (random streams advance each call).

    Inputs convert as in Aesara: arrays and lists only without loss (a float64 array for
    a float32 input is an error), except Python floats for floatX inputs; with
    `allow_input_downcast=True` every value is cast to the input's dtype."""
    outputs = [] if outputs is None else outputs
    name = name or "main"
    if not updates and isinstance(outputs, (list, tuple)) and not outputs:
        raise ValueError("function() needs outputs or updates")
    updates = update_pairs(name, updates)  # checked once, then pairs all the way down
    if givens:
        outputs, updates = _apply_givens(inputs, outputs, updates, givens)
    _check_unused(inputs, _as_list(outputs) + [u for _, u in updates], on_unused_input or "raise")
    return Function(inputs, outputs, name=name, updates=updates, cpu=cpu, fastmath=fastmath,
                    allow_input_downcast=allow_input_downcast, no_default_updates=no_default_updates)


def _as_list(outputs: Any) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _apply_givens(inputs: Sequence[Variable], outputs: Any, pairs: list, givens: Any):
    """Aesara's `givens`: each key replaced by its value in the outputs and updates."""
    items = list(givens.items()) if isinstance(givens, dict) else list(givens)
    replace: dict[Variable, Variable] = {}
    for i, item in enumerate(items):
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], Variable):
            raise TypeError(f"givens[{i}] must be a (variable, replacement) pair, got {item!r}")
        key, value = item[0], as_tensor_variable(item[1])
        if key in inputs:
            raise ValueError(f"givens[{i}]: {key.describe()} is an input; an input cannot also be replaced")
        if key.dtype != value.dtype or key.ndim != value.ndim:
            raise TypeError(f"givens[{i}]: the replacement {value.describe()} must have the type of "
                            f"{key.describe()}")
        replace[key] = value
    outs = _as_list(outputs)
    replaced = clone_replace(outs + [u for _, u in pairs], replace)
    new_outputs = replaced[:len(outs)] if isinstance(outputs, (list, tuple)) else replaced[0]
    return new_outputs, [(s, u) for (s, _), u in zip(pairs, replaced[len(outs):])]


class UnusedInputError(ValueError):
    """An input of `function` that no output depends on (Aesara's error)."""


def _check_unused(inputs: Sequence[Variable], outputs: Any, mode: str) -> None:
    if mode not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {mode!r}")
    outs = _as_list(outputs)
    if mode == "ignore" or not all(isinstance(o, Variable) for o in outs):
        return  # bad outputs are reported by make_spec
    used = set(free_inputs(outs))
    for i, v in enumerate(inputs):
        if isinstance(v, Variable) and v not in used:
            message = (f"function was asked to create a function computing outputs given certain inputs, but "
                       f"the provided input variable at index {i} is not part of the computational graph "
                       f"needed to compute the outputs: {v!r}. To make this error into a warning, pass "
                       "on_unused_input='warn'; to disable it, on_unused_input='ignore'")
            if mode == "raise":
                raise UnusedInputError(message)
            warnings.warn(message, stacklevel=3)


def _bind(inputs: list[Variable], args: tuple, kwargs: dict) -> list[Any]:
    if len(args) > len(inputs):
        raise TypeError(f"expected {len(inputs)} arguments, got {len(args)}")
    values = list(args) + [None] * (len(inputs) - len(args))
    given = [True] * len(args) + [False] * (len(inputs) - len(args))
    names = {v.name: i for i, v in enumerate(inputs) if v.name}
    for key, value in kwargs.items():
        if key not in names:
            raise TypeError(f"unexpected keyword argument {key!r}; inputs are named "
                            f"{', '.join(sorted(names)) or '(none)'}")
        if given[names[key]]:
            raise TypeError(f"argument {key!r} given twice")
        values[names[key]], given[names[key]] = value, True
    for i, ok in enumerate(given):
        if not ok:
            raise TypeError(f"missing argument {i} ({inputs[i].describe()})")
    return values


def _numbers(i: int, var: Variable, value: Any) -> np.ndarray:
    """A Python value (number, list, range) or numpy value as an array of numbers."""
    try:
        raw = np.asarray(value if not isinstance(value, range) else list(value))
    except (TypeError, ValueError):
        raise TypeError(f"{_label(i, var)}: expected a {var.dtype} array, got {type(value).__name__}") from None
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{_label(i, var)}: expected {var.dtype} values, got {type(value).__name__}")
    return raw


def _cast(i: int, var: Variable, value: Any) -> np.ndarray:
    """`value` cast to the input's dtype, losing what it must (allow_input_downcast)."""
    raw = _numbers(i, var, value)
    if np.dtype(var.dtype).kind in "iub" and raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise TypeError(f"{_label(i, var)}: NaN or inf cannot be cast to {var.dtype}")
    return raw.astype(var.dtype)


def _label(i: int, var: Variable) -> str:
    return f"argument {i} ({var.name!r})" if var.name else f"argument {i}"


def _convert(i: int, var: Variable, value: Any, allow_downcast: bool | None = None) -> np.ndarray:
    """The value as a C-contiguous array of the input's dtype, or a TypeError naming it."""
    want = var.dtype
    if isinstance(value, Variable):
        raise TypeError(f"{_label(i, var)}: got a symbolic variable; pass a numpy value")
    if allow_downcast or (allow_downcast is None and isinstance(value, (float, np.floating))
                          and want == config.floatX):
        arr = _cast(i, var, value)
    elif isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{_label(i, var)}: expected {want}, got an array of {arr.dtype}")
        if str(arr.dtype) != want:
            if not np.can_cast(arr.dtype, want, "safe"):
                raise TypeError(f"{_label(i, var)}: expected {want}, got {arr.dtype}, which would "
                                f"lose precision; cast it with .astype('{want}') if that is intended")
            arr = arr.astype(want)
    else:
        raw = _numbers(i, var, value)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, 2.5 into ints: refused below
            arr = raw.astype(want)
        if raw.size and not np.array_equal(arr.astype(raw.dtype), raw, equal_nan=raw.dtype.kind == "f"
                                           and arr.dtype.kind == "f"):
            raise TypeError(f"{_label(i, var)}: {value!r} cannot be represented as {want} exactly")
    if arr.ndim != var.ndim:
        raise TypeError(f"{_label(i, var)}: expected {var.ndim} dims ({want}), got {arr.ndim} "
                        f"(shape {arr.shape})")
    for axis, b in enumerate(var.broadcastable):
        if b and arr.shape[axis] != 1:
            raise ValueError(f"{_label(i, var)}: dim {axis} is broadcastable and must be 1, "
                             f"got shape {arr.shape}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")
