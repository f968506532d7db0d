"""`scanaot.function`: compile a traced graph and call it with numpy values."""
from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from . import dtypes
from .graph import Constant, Variable, free_inputs
from .runtime.memref import CTYPES, copy_out, descriptor_for, results_type
from .runtime.status import check_status

_recorders: list[list["Function"]] = []
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_context_lock = threading.Lock()


class Function:
    """A compiled function. Call it like the Python function it stands for.

    `f.ir(stage)` shows the IR at one of `scanaot.pipeline.STAGES`.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Any, name: str = "main",
                 updates: Any = None, cpu: str = "native"):
        self.inputs = _check_inputs(inputs)
        self.unpack = not isinstance(outputs, (list, tuple))
        outs = [outputs] if self.unpack else list(outputs)
        if not outs:
            raise ValueError("function() needs at least one output")
        self.outputs = [_as_output(i, o) for i, o in enumerate(outs)]
        if updates:
            raise ValueError("updates are not supported: scanaot has no shared variables "
                             "(scan's updates are always empty)")
        missing = [v for v in free_inputs(self.outputs) if v not in set(self.inputs)]
        if missing:
            raise ValueError(f"the outputs depend on {missing[0].describe()}, which is not among "
                             "the inputs; add it to the inputs list")
        self.unique_outputs = list(dict.fromkeys(self.outputs))
        self.name = name
        self._stages, self.library_path = _compile(name, self.inputs, self.unique_outputs, cpu)
        self._lib = ctypes.CDLL(str(self.library_path))
        self._kernel = getattr(self._lib, f"_mlir_ciface_{name}")
        self._ranks = tuple(v.ndim for v in self.unique_outputs)
        self._results_type = results_type(self._ranks)
        self._kernel.restype = None
        for recorder in _recorders:
            recorder.append(self)

    def ir(self, stage: str = "scan") -> str:
        """The IR at `stage`: scan, scan-opt, scf, memref or llvm."""
        if stage not in self._stages:
            raise KeyError(f"unknown stage {stage!r}; expected one of {', '.join(self._stages)}")
        return self._stages[stage]

    def __call__(self, *args: Any, **kwargs: Any):
        values = _bind(self.inputs, args, kwargs)
        arrays = [_convert(i, var, v) for i, (var, v) in enumerate(zip(self.inputs, values))]
        descs = [descriptor_for(a) for a in arrays]
        results = self._results_type()
        self._kernel(ctypes.byref(results), *[ctypes.byref(d) for d in descs])
        outputs, freed = [], set()
        inputs_ptrs = {a.ctypes.data for a in arrays}
        for i, var in enumerate(self.unique_outputs):
            desc = getattr(results, f"out{i}")
            outputs.append(copy_out(desc, self._ranks[i], var.dtype))
            ptr = desc.allocated
            if ptr and ptr not in freed and ptr not in inputs_ptrs:
                freed.add(ptr)
                _libc.free(ptr)
        check_status(results.status, self.name)
        by_var = dict(zip(self.unique_outputs, outputs))
        outs = [by_var[v] for v in self.outputs]
        return outs[0] if self.unpack else outs


@contextlib.contextmanager
def record_functions() -> Iterator[list[Function]]:
    """Collect the Functions compiled inside the block (the demo lists their artifacts)."""
    made: list[Function] = []
    _recorders.append(made)
    try:
        yield made
    finally:
        _recorders.remove(made)


def function(inputs: Sequence[Variable], outputs: Any = None, updates: Any = None,
             name: str = "main", **kwargs: Any) -> Function:
    """Aesara's `aesara.function(inputs, outputs, updates=None)`."""
    if outputs is None:
        raise ValueError("function() needs outputs")
    return Function(inputs, outputs, name=name, updates=updates)


def _check_inputs(inputs: Sequence[Variable]) -> list[Variable]:
    if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
        raise TypeError("inputs must be a list of variables")
    seen = set()
    for i, v in enumerate(inputs):
        if not isinstance(v, Variable) or isinstance(v, Constant):
            raise TypeError(f"inputs[{i}] must be a symbolic input variable, got {v!r}")
        if v.owner is not None:
            raise TypeError(f"inputs[{i}] ({v.describe()}) is computed from other variables; "
                            "inputs must be variables created with at.scalar(), at.vector(), ...")
        if v in seen:
            raise ValueError(f"inputs[{i}] ({v.describe()}) is listed twice")
        seen.add(v)
    return list(inputs)


def _as_output(i: int, out: Any) -> Variable:
    if isinstance(out, Variable):
        return out
    raise TypeError(f"outputs[{i}] must be a symbolic variable, got {type(out).__name__}")


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
    store = "uint8" if want == "bool" else want
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
    arr = np.ascontiguousarray(arr.view(store) if want == "bool" else arr)
    assert CTYPES[want]
    return arr


def _compile(name: str, inputs, outputs, cpu: str):
    from mlir import ir

    from .codegen import build_shared_library
    from .dialects import scan as scan_dialect
    from .emit import emit_program
    from .pipeline import lower

    dtypes.check(inputs[0].dtype) if inputs else None
    with _context_lock, ir.Context() as ctx, ir.Location.unknown():
        scan_dialect.load(ctx)
        module = emit_program(name, inputs, outputs)
        stages = lower(module)
    return stages, build_shared_library(stages["llvm"], cpu=cpu)
