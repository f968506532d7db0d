"""`scanaot.function`: compile a traced graph and call it with numpy values."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from .graph import Variable

_recorders: list[list["Function"]] = []


class Function:
    """A compiled function. Call it like the Python function it stands for.

    It runs through the same artifact path as `scanaot.compile`: a cached `.so`
    loaded by `scanaot.runtime`. `f.ir(stage)` shows the IR at one of
    `scanaot.pipeline.STAGES`; `f.library_path` is the library.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Any, name: str = "main",
                 updates: Any = None, cpu: str | None = None, fastmath: str | bool = "none"):
        from .artifact import build, make_spec
        from .runtime import load_bytes

        if updates:
            raise ValueError("updates are not supported: scanaot has no shared variables "
                             "(scan's updates are always empty)")
        self.spec = make_spec(name, inputs, outputs)
        self.inputs = self.spec.inputs
        self.name = name
        built = build([self.spec], cpu=cpu, fastmath=fastmath, library=name, default_cpu="native")
        self.library_path, self._stages, self.manifest = built.path, built.stages, built.manifest
        self._kernel = load_bytes(built.data, str(built.path))[name]
        self.calls: list[tuple[list, list]] = []  # filled only inside record_functions()
        for recorder in _recorders:
            recorder.append(self)

    def ir(self, stage: str = "scan") -> str:
        """The IR at `stage`: scan, scan-opt, scf, memref or llvm."""
        if stage not in self._stages:
            raise KeyError(f"unknown stage {stage!r}; expected one of {', '.join(self._stages)}")
        return self._stages[stage]

    def __call__(self, /, *args: Any, **kwargs: Any):  # an input may be named "self"
        values = _bind(self.inputs, args, kwargs)
        arrays = [_convert(i, var, v) for i, (var, v) in enumerate(zip(self.inputs, values))]
        results = self._kernel(*arrays)
        if not isinstance(results, tuple):
            results = (results,)
        if _recorders:
            self.calls.append((arrays, list(results)))
        return results[0] if self.spec.unpack else list(results)


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


def function(inputs: Sequence[Variable], outputs: Any = None, updates: Any = None,
             name: str = "main", cpu: str | None = None, fastmath: str | bool = "none",
             **kwargs: Any) -> Function:
    """Aesara's `aesara.function(inputs, outputs, updates=None)`; Aesara's other keywords
    (mode, on_unused_input, ...) are accepted and ignored. `cpu` and `fastmath` are
    scanaot's compile options (docs/function.md)."""
    if outputs is None:
        raise ValueError("function() needs outputs")
    return Function(inputs, outputs, name=name, updates=updates, cpu=cpu, fastmath=fastmath)


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


def _label(i: int, var: Variable) -> str:
    return f"argument {i} ({var.name!r})" if var.name else f"argument {i}"


def _convert(i: int, var: Variable, value: Any) -> np.ndarray:
    """The value as a C-contiguous array of the input's dtype, or a TypeError naming it."""
    want = var.dtype
    if isinstance(value, Variable):
        raise TypeError(f"{_label(i, var)}: got a symbolic variable; pass a numpy value")
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{_label(i, var)}: expected {want}, got an array of {arr.dtype}")
        if str(arr.dtype) != want:
            if not np.can_cast(arr.dtype, want, "safe"):
                raise TypeError(f"{_label(i, var)}: expected {want}, got {arr.dtype}, which would "
                                f"lose precision; cast it with .astype('{want}') if that is intended")
            arr = arr.astype(want)
    else:
        try:
            raw = np.asarray(value if not isinstance(value, range) else list(value))
        except (TypeError, ValueError):
            raise TypeError(f"{_label(i, var)}: expected a {want} array, got {type(value).__name__}") from None
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"{_label(i, var)}: expected {want} values, got {type(value).__name__}")
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, 2.5 into ints: refused below
            arr = raw.astype(want)
        if raw.size and not np.array_equal(arr.astype(raw.dtype), raw):
            raise TypeError(f"{_label(i, var)}: {value!r} cannot be represented as {want} exactly")
    if arr.ndim != var.ndim:
        raise TypeError(f"{_label(i, var)}: expected {var.ndim} dims ({want}), got {arr.ndim} "
                        f"(shape {arr.shape})")
    for axis, b in enumerate(var.broadcastable):
        if b and arr.shape[axis] != 1:
            raise ValueError(f"{_label(i, var)}: dim {axis} is broadcastable and must be 1, "
                             f"got shape {arr.shape}")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")
