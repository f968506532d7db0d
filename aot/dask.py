"""A compiled kernel over `dask.array`s, one task per chunk of a batch axis (the `dask` extra).

    import scanaot.dask
    hs = scanaot.dask.map_batches(lib.rnn, x, h0, W, U, b, batch_axis={0: 1, 1: 0})
    gh0, gW, gU, gb = scanaot.dask.vjp_batches(lib.rnn, x, h0, W, U, b, cotangents=[g],
                                               batch_axis={0: 1, 1: 0})

Each argument is a dask array split along its batch axis, or anything else (a numpy
array, a number), given whole to every task. The result's chunks and dtypes come
from the manifest's shape expressions, evaluated per chunk: nothing is computed to
infer them. The kernel (its library's sealed bytes, runtime/library.py `Library.__reduce__`)
and each whole argument sit in the task graph once, under one key each, so a
distributed worker receives them once however many tasks it runs.

Reference semantics (what `map_batches(...).compute()` returns), for batch chunks
`c_0, ..., c_n` shared by every dask argument:

    parts = [kernel(*[a[chunk c_i along batch_axis[p]] if p is batched else a
                      for p, a in enumerate(args)]) for each i]
    outputs[k] = np.concatenate([part[k] for part in parts], axis=<output k's batch axis>)

An output's batch axis is the axis whose manifest shape is a batched argument's batch
dim (`{"dim": [p, batch_axis[p]]}`); an output without one (a reduction over the batch,
a scalar) or with an `until` bound cannot be split by batch and is refused by name.
This module imports dask; the runtime never imports it.
"""
from __future__ import annotations

import hashlib
import operator
from typing import Any, Sequence

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as err:  # pragma: no cover - the optional extra
    raise ImportError("scanaot.dask needs dask: pip install 'scanaot[dask]'") from err

from scanaot.runtime.shapes import evaluate

__all__ = ["map_batches", "vjp_batches"]

SUM_FAN_IN = 4  # partial gradients added per task in the tree that sums a weight's gradient


class BatchError(ValueError):
    """Arguments or outputs that cannot be split along a batch axis (says which and why)."""


def map_batches(kernel: Any, *args: Any, batch_axis: int | dict[int, int] = 0):
    """The kernel's outputs as dask arrays split along their batch axes, one task per chunk.

    `batch_axis`: an int (the same axis of every dask argument) or `{argument position:
    axis}` naming every dask argument (an RNN's x of shape (T, B, I): 1; its h0 (B, H): 0).
    The dask arguments' chunks along their batch axes must be the same; their other
    axes are gathered into one chunk. Returns one dask array, or a tuple for several
    outputs, like calling the kernel."""
    plan = _Plan(kernel, args, batch_axis)
    graph, task = plan.graph(f"scanaot-{kernel.name}-{plan.token}", _call, [])
    outputs = [plan.output_array(graph, task, k) for k in range(len(plan.outputs))]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def vjp_batches(kernel: Any, *args: Any, cotangents: Any, batch_axis: int | dict[int, int] = 0):
    """Data-parallel `kernel.vjp`: the gradients w.r.t. the library's `grad_wrt`, in that order.

    Each task runs the gradient kernel on its chunk and that chunk of each cotangent
    (one per output, an array of the output's shape: dask arrays are rechunked to the
    outputs' chunks, numpy arrays split). A batched argument's gradient is the chunks'
    gradients side by side along its batch axis (a dask array chunked like it); a whole
    argument's (a weight's) is their sum, added in a tree of `SUM_FAN_IN` parts a task
    (a dask array of one chunk). Equal to `kernel.vjp(*computed args, cotangents=...)`
    up to the order of the additions."""
    vjp_kernel = getattr(kernel, "_vjp", None)
    if vjp_kernel is None:
        raise TypeError(f"{kernel.name} has no gradient kernel: compile it with grad_wrt=[...]")
    plan = _Plan(kernel, args, batch_axis)
    cots = plan.cotangent_arrays(cotangents)
    graph, task = plan.graph(f"scanaot-{kernel.name}-vjp-{tokenize(plan.token, *cots)}", _call_vjp, cots)
    results = []
    for k, name in enumerate(kernel.spec["vjp"]["wrt"]):
        position = kernel.arg_names.index(name)
        if position in plan.batched:
            results.append(plan.gradient_array(graph, task, k, position))
        else:
            results.append(plan.summed_gradient(graph, task, k, position))
    return results[0] if len(results) == 1 else tuple(results)


def _call(kernel: Any, args: list, cotangents: list) -> tuple:
    """One task: the kernel on one chunk; always a tuple of outputs."""
    result = kernel(*_contiguous(args))
    return result if isinstance(result, tuple) else (result,)


def _call_vjp(kernel: Any, args: list, cotangents: list) -> tuple:
    """One task: the gradient kernel on one chunk and its cotangents."""
    result = kernel.vjp(*_contiguous(args), cotangents=_contiguous(cotangents))
    return result if isinstance(result, tuple) else (result,)


def _contiguous(arrays: list) -> list:
    """A chunk cut across its batch axis (x[:, b0:b1]) is a strided view; kernels take C order."""
    return [np.ascontiguousarray(a) if isinstance(a, np.ndarray) and a.ndim else a for a in arrays]


def _sum(parts: list) -> np.ndarray:
    total = np.array(parts[0], copy=True)
    for part in parts[1:]:
        total += part
    return total


class _Plan:
    """The chunks, the per-chunk shapes and the graph keys shared by one kernel's tasks."""

    def __init__(self, kernel: Any, args: Sequence[Any], batch_axis: int | dict[int, int]):
        if not hasattr(kernel, "spec") or not hasattr(kernel, "library"):
            raise TypeError(f"expected a kernel of a loaded library (lib.name, or a scanaot.function's "
                            f"f._kernel), got {type(kernel).__name__}")
        if len(args) != len(kernel.args):
            raise TypeError(f"{kernel.name} takes {len(kernel.args)} arguments ({', '.join(kernel.arg_names)}), "
                            f"got {len(args)}")
        self.kernel = kernel
        self.names = kernel.arg_names
        self.batched = self._batch_axes(args, batch_axis)
        for p, a in enumerate(args):
            self._check_argument(p, a)
        self.args = [self._split(p, a) if p in self.batched else a for p, a in enumerate(args)]
        self.chunks = self._batch_chunks()
        self.shapes = [[self._shape(p, i) for p in range(len(args))] for i in range(len(self.chunks))]
        self.scalars = [np.asarray(a).item() if p not in self.batched and np.ndim(a) == 0 else None
                        for p, a in enumerate(self.args)]
        self.outputs = [self._output(o) for o in kernel.outputs]
        self.kernel_key = _kernel_key(kernel)
        self.whole_keys = {p: f"scanaot-arg-{tokenize(a)}" for p, a in enumerate(self.args) if p not in self.batched}
        self.token = tokenize(self.kernel_key, self.batched,
                              [a.name if p in self.batched else self.whole_keys[p] for p, a in enumerate(self.args)])

    # ------------------------------------------------------------ arguments
    def _batch_axes(self, args: Sequence[Any], batch_axis: int | dict[int, int]) -> dict[int, int]:
        lazy = [p for p, a in enumerate(args) if isinstance(a, da.Array)]
        if not lazy:
            raise BatchError(f"{self.kernel.name}: no argument is a dask array, so there is nothing to split; "
                             "call the kernel directly")
        if isinstance(batch_axis, dict):
            axes = {}
            for p, axis in batch_axis.items():
                if not _is_int(p) or not 0 <= p < len(args):
                    raise BatchError(f"batch_axis: {p!r} is not an argument position (0..{len(args) - 1})")
                if not _is_int(axis):
                    raise TypeError(f"batch_axis[{p}] must be an int axis, got {axis!r}")
                axes[int(p)] = int(axis)
            for p in axes:
                if p not in lazy:
                    raise BatchError(f"batch_axis names argument {p} ({self.names[p]}), which is not a dask array; "
                                     "give it as a dask array to split it")
            missing = [p for p in lazy if p not in axes]
            if missing:
                raise BatchError(f"batch_axis has no axis for dask argument(s) "
                                 f"{', '.join(f'{p} ({self.names[p]})' for p in missing)}")
        elif _is_int(batch_axis):
            axes = {p: int(batch_axis) for p in lazy}
        else:
            raise TypeError(f"batch_axis must be an int or a dict {{position: axis}}, got {type(batch_axis).__name__}")
        for p, axis in axes.items():
            ndim = args[p].ndim
            if not -ndim <= axis < ndim:
                raise BatchError(f"argument {p} ({self.names[p]}) has {ndim} dims; it has no batch axis {axis}")
            axes[p] = axis % ndim
        return axes

    def _check_argument(self, p: int, value: Any) -> None:
        """Dask arrays and numpy arrays must have the argument's dtype and rank: refused
        here, before any graph is built, rather than by every task."""
        if not isinstance(value, (da.Array, np.ndarray)):
            return  # Python numbers and lists: converted and checked by the kernel
        spec = self.kernel.args[p]
        if value.ndim != spec["ndim"] or value.dtype != np.dtype(spec["dtype"]):
            raise TypeError(f"{self.kernel.name}: argument {p} ({self.names[p]}) must be {spec['dtype']} with "
                            f"{spec['ndim']} dims, got {value.dtype} with {value.ndim}")

    def _split(self, p: int, array: Any) -> Any:
        """The dask argument with one chunk along every axis but its batch axis."""
        axis = self.batched[p]
        whole = {a: -1 for a in range(array.ndim) if a != axis and len(array.chunks[a]) > 1}
        return array.rechunk(whole) if whole else array

    def _batch_chunks(self) -> tuple:
        (first, *others) = sorted(self.batched)
        chunks = self.args[first].chunks[self.batched[first]]
        for p in others:
            mine = self.args[p].chunks[self.batched[p]]
            if mine != chunks:
                raise BatchError(
                    f"batch chunks differ: {self.names[first]} (axis {self.batched[first]}) has {chunks}, "
                    f"{self.names[p]} (axis {self.batched[p]}) has {mine}; rechunk them alike, e.g. "
                    f"{self.names[p]}.rechunk({{{self.batched[p]}: {self.names[first]}.chunks[{self.batched[first]}]}})")
        if any(np.isnan(c) for c in chunks):
            raise BatchError(f"{self.names[first]} has unknown chunk sizes along its batch axis; "
                             "call compute_chunk_sizes() first")
        return chunks

    def _shape(self, p: int, i: int) -> tuple:
        shape = list(np.shape(self.args[p]))
        if p in self.batched:
            shape[self.batched[p]] = self.chunks[i]
        return tuple(int(s) for s in shape)

    def _arg_ref(self, p: int, i: int) -> Any:
        """The graph reference to argument p in chunk i."""
        if p not in self.batched:
            return self.whole_keys[p]
        index = [0] * self.args[p].ndim
        index[self.batched[p]] = i
        return (self.args[p].name, *index)

    # ------------------------------------------------------------ outputs
    def _output(self, out: dict) -> dict:
        name = f"{self.kernel.name} output {out['name']!r}"
        if any(out.get("bounded", [])):
            raise BatchError(f"{name} is an `until` result (its length is known only after the run), so its "
                             "chunks cannot be known ahead; compile a kernel without it for map_batches")
        batch_dims = [{"dim": [p, axis]} for p, axis in self.batched.items()]
        axes = [j for j, expr in enumerate(out["shape"]) if expr in batch_dims]
        if not axes:
            raise BatchError(f"{name} (shape {out.get('shape_text', out['shape'])}) has no axis sized by a batched "
                             "argument's batch dim (a reduction over the batch?), so it cannot be split by batch; "
                             "compile a kernel returning per-item results and reduce them with dask")
        axis = axes[0]
        if any(_mentions(expr, batch_dims) for j, expr in enumerate(out["shape"]) if j != axis):
            raise BatchError(f"{name} (shape {out.get('shape_text', out['shape'])}) is sized by the batch on more "
                             "than one axis (items of different chunks meet in it), so it cannot be split by batch")
        per_chunk = [tuple(int(evaluate(e, shapes, self.scalars)) for e in out["shape"]) for shapes in self.shapes]
        rest = {s[:axis] + s[axis + 1:] for s in per_chunk}
        if len(rest) > 1:
            raise BatchError(f"{name}: its other dims change from chunk to chunk ({sorted(rest)})")
        chunks = tuple(tuple(s[j] for s in per_chunk) if j == axis else (per_chunk[0][j],) for j in range(out["ndim"]))
        return {"name": out["name"], "dtype": np.dtype(out["dtype"]), "axis": axis, "chunks": chunks}

    def cotangent_arrays(self, cotangents: Any) -> list:
        """One dask array per cotangent the gradient kernel takes (one per float output),
        chunked like that output; `self.cot_outputs` are those outputs."""
        names = [c[len("cot_"):] for c in self.kernel.spec["vjp"]["cotangents"]]
        by_name = {o["name"]: o for o in self.outputs}
        self.cot_outputs = [by_name[n] for n in names]
        if isinstance(cotangents, dict):
            unknown, missing = set(cotangents) - set(names), [n for n in names if n not in cotangents]
            if unknown or missing:
                raise TypeError(f"cotangents: {'no output named ' + repr(sorted(unknown)[0]) if unknown else 'missing '}"
                                f"{'' if unknown else ', '.join(map(repr, missing))}; the cotangents are for "
                                f"{', '.join(names)}")
            cotangents = [cotangents[n] for n in names]
        elif not isinstance(cotangents, (list, tuple)):
            cotangents = [cotangents]
        if len(cotangents) != len(names):
            raise TypeError(f"{self.kernel.name}: expected {len(names)} cotangent(s) ({', '.join(names)}: the float "
                            f"outputs), got {len(cotangents)}")
        return [self._cotangent(out, cot) for out, cot in zip(self.cot_outputs, cotangents)]

    def _cotangent(self, out: dict, cot: Any) -> Any:
        """A cotangent as a dask array of its output's dtype, shape and chunks."""
        label = f"the cotangent of output {out['name']!r}"
        if not isinstance(cot, da.Array):
            cot = np.asarray(cot)
            if cot.dtype.kind not in "biuf":
                raise TypeError(f"{label} must be an array of {out['dtype']}, got {cot.dtype}")
        if cot.dtype != out["dtype"] and not np.can_cast(cot.dtype, out["dtype"], "safe"):
            raise TypeError(f"{label} must be {out['dtype']}, got {cot.dtype} (cast it if that is intended)")
        shape = tuple(sum(c) for c in out["chunks"])
        if tuple(cot.shape) != shape:
            raise BatchError(f"{label} must have its shape {shape}, got {tuple(cot.shape)}")
        if isinstance(cot, da.Array):
            return cot.astype(out["dtype"]).rechunk(out["chunks"])
        return da.from_array(cot.astype(out["dtype"]), chunks=out["chunks"])

    # ------------------------------------------------------------ the graph
    def graph(self, name: str, fn: Any, cotangents: list) -> tuple[dict, str]:
        """The tasks `(name, i)`: `fn(kernel, args of chunk i, cotangents of chunk i)`,
        with the kernel and each whole argument under one key each."""
        graph: dict = {self.kernel_key: self.kernel}
        for p, key in self.whole_keys.items():
            graph[key] = self.args[p]
        for i in range(len(self.chunks)):
            args = [self._arg_ref(p, i) for p in range(len(self.args))]
            cots = [(c.name, *[i if j == o["axis"] else 0 for j in range(c.ndim)])
                    for c, o in zip(cotangents, getattr(self, "cot_outputs", []))]
            graph[(name, i)] = (fn, self.kernel_key, args, cots)
        self._deps = [self.args[p] for p in self.batched] + list(cotangents)
        return graph, name

    def _array(self, graph: dict, name: str, chunks: tuple, dtype: np.dtype) -> Any:
        hlg = HighLevelGraph.from_collections(name, graph, dependencies=self._deps)
        return da.Array(hlg, name, chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))

    def output_array(self, graph: dict, task: str, k: int) -> Any:
        out = self.outputs[k]
        name = f"{task}-{out['name']}"
        layer = dict(graph)
        for i in range(len(self.chunks)):
            index = [i if j == out["axis"] else 0 for j in range(len(out["chunks"]))]
            layer[(name, *index)] = (operator.getitem, (task, i), k)
        return self._array(layer, name, out["chunks"], out["dtype"])

    def gradient_array(self, graph: dict, task: str, k: int, p: int) -> Any:
        """A batched argument's gradient: chunk i's gradient is chunk i of the result."""
        name = f"{task}-d{self.names[p]}"
        axis, arg = self.batched[p], self.args[p]
        layer = dict(graph)
        for i in range(len(self.chunks)):
            index = [i if j == axis else 0 for j in range(arg.ndim)]
            layer[(name, *index)] = (operator.getitem, (task, i), k)
        chunks = tuple(self.chunks if j == axis else (arg.shape[j],) for j in range(arg.ndim))
        return self._array(layer, name, chunks, np.dtype(self.kernel.args[p]["dtype"]))

    def summed_gradient(self, graph: dict, task: str, k: int, p: int) -> Any:
        """A whole argument's gradient: the chunks' gradients added in a tree."""
        name = f"{task}-d{self.names[p]}"
        layer = dict(graph)
        level = []
        for i in range(len(self.chunks)):
            layer[(f"{name}-part", i)] = (operator.getitem, (task, i), k)
            level.append((f"{name}-part", i))
        depth = 0
        while len(level) > 1:
            depth += 1
            groups = [level[j:j + SUM_FAN_IN] for j in range(0, len(level), SUM_FAN_IN)]
            level = []
            for j, group in enumerate(groups):
                layer[(f"{name}-sum{depth}", j)] = (_sum, list(group))
                level.append((f"{name}-sum{depth}", j))
        shape = np.shape(self.args[p])
        layer[(name, *[0] * len(shape))] = (_sum, [level[0]])
        return self._array(layer, name, tuple((s,) for s in shape), np.dtype(self.kernel.args[p]["dtype"]))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _mentions(expr: dict, dims: list[dict]) -> bool:
    """Whether a shape expression reads any of `dims` (iteratively)."""
    pending = [expr]
    while pending:
        node = pending.pop()
        if node in dims:
            return True
        pending.extend(node.get("args", ()))
    return False


def _kernel_key(kernel: Any) -> str:
    """One graph key per kernel of a library's bytes: the same key in every graph."""
    data = kernel.library.__dict__.get("_bytes")
    if data is None:
        raise TypeError(f"{kernel.name}: its library was made without its bytes, so it cannot travel to workers; "
                        "load it with scanaot.runtime.load or load_bytes")
    return f"scanaot-kernel-{hashlib.sha256(data).hexdigest()[:32]}-{kernel.name}"
