"""The symbolic graph: typed variables, the nodes that produce them, and ops.

Tracing a step function records nodes here; emission, shape inference and
(later) gradients all walk this graph. Nothing in this module imports MLIR.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Sequence

import numpy as np

from . import dtypes

_ids = itertools.count()


class TensorType:
    """Aesara's tensor type: a dtype and a broadcastable pattern (one bool per dim)."""

    __slots__ = ("dtype", "broadcastable")

    def __init__(self, dtype: str, broadcastable: Sequence[bool]):
        self.dtype = dtypes.check(dtype)
        self.broadcastable = tuple(bool(b) for b in broadcastable)

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TensorType) and self.dtype == other.dtype
                and self.broadcastable == other.broadcastable)

    def __hash__(self) -> int:
        return hash((self.dtype, self.broadcastable))

    def __repr__(self) -> str:
        return f"TensorType({self.dtype}, {self.broadcastable})"

    def __call__(self, name: str | None = None) -> "Variable":
        return Variable(self, name=name)


class Scope:
    """Which trace created a variable: the outer program (0) or a scan step function."""

    _stack: list[int] = [0]

    def __init__(self, existing: int | None = None):
        self.existing = existing  # re-enter a step's scope to add nodes to its graph

    @classmethod
    def current(cls) -> int:
        return cls._stack[-1]

    def __enter__(self) -> int:
        self.id = self.existing if self.existing is not None else next(_ids) + 1
        Scope._stack.append(self.id)
        return self.id

    def __exit__(self, *exc: Any) -> None:
        Scope._stack.pop()


class Variable:
    """A symbolic tensor. Operators build graph nodes (see `scanaot.tensor`)."""

    def __init__(self, type: TensorType, owner: "Apply | None" = None, index: int = 0,
                 name: str | None = None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.scope = Scope.current()
        self.uid = next(_ids)

    dtype = property(lambda self: self.type.dtype)
    ndim = property(lambda self: self.type.ndim)
    broadcastable = property(lambda self: self.type.broadcastable)

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.owner is not None:
            return f"{self.owner.op}.out{self.index}"
        return f"<{self.type.dtype} {self.type.ndim}-d variable>"

    # numpy defers to the Variable's reflected operators (`array @ x`, `array * x`)
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __getattr__(self, name: str):
        """Only reached for a missing attribute: an Aesara method scanaot lacks is named."""
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}: not supported by scanaot "
                             "(the supported operations and methods are listed in docs/tensor.md)")

    def describe(self) -> str:
        """How error messages name this variable."""
        label = repr(self.name) if self.name else "an unnamed variable"
        return f"{label} ({self.dtype}, ndim={self.ndim})"

    __hash__ = object.__hash__


class Constant(Variable):
    """A value known when tracing; emitted as an MLIR constant."""

    def __init__(self, data: np.ndarray, name: str | None = None):
        data = np.array(data, order="C")
        super().__init__(TensorType(str(data.dtype), [d == 1 for d in data.shape]), name=name)
        self.data = data
        self.scope = 0  # constants belong to every scope: they are re-emitted where used

    def __repr__(self) -> str:
        return self.name or f"Constant({self.data.tolist()!r})"


class Op:
    """An operation. Subclasses give `make_node` (typing) and `infer_shape`; their
    family module registers emission and VJP in `graph.rules`.

    `stacks_steps`: the op is a loop whose outputs stack one row per step (scan):
    `x[-1]` of such an output is the loop's last value (docs/dialect.md)."""

    stacks_steps = False

    def known_elements(self, node: "Apply") -> "list[Variable] | None":
        """The scalars a vector result is made of, where the op knows them (`x.shape`
        stacks its dims): `x.shape[i]` and `zeros(x.shape)` then need no indexing."""
        return None

    def make_node(self, *inputs: Variable) -> "Apply":
        raise TypeError(f"{type(self).__name__} does not define make_node")

    def __call__(self, *inputs: Variable) -> Any:
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def infer_shape(self, node: "Apply", input_shapes: list[list[Variable]]) -> list[list[Variable]] | None:
        """Output shapes as scalar int64 variables, or None where they are data dependent."""
        return None

    def __str__(self) -> str:
        return type(self).__name__


class Apply:
    """One node: an op applied to input variables, producing output variables."""

    def __init__(self, op: Op, inputs: Sequence[Variable], output_types: Sequence[TensorType]):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = [Variable(t, owner=self, index=i) for i, t in enumerate(output_types)]


def toposort(outputs: Iterable[Variable], stop: Iterable[Variable] = ()) -> list[Apply]:
    """Nodes needed for `outputs`, inputs before users; `stop` variables are leaves."""
    stopped = set(stop)
    order: list[Apply] = []
    seen: set[int] = set()
    stack: list[tuple[Variable, bool]] = [(v, False) for v in reversed(list(outputs))]
    while stack:
        var, expanded = stack.pop()
        node = var.owner
        if node is None or var in stopped:
            continue
        if expanded:
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
            continue
        if id(node) in seen:
            continue
        stack.append((var, True))
        for inp in reversed(node.inputs):
            if inp.owner is not None and id(inp.owner) not in seen:
                stack.append((inp, False))
    return order


def free_inputs(outputs: Iterable[Variable], stop: Iterable[Variable] = ()) -> list[Variable]:
    """Leaves (non-constant variables without an owner, or in `stop`) that `outputs` depend on."""
    stopped = set(stop)
    leaves: list[Variable] = []
    seen: set[Variable] = set()

    def visit(v: Variable) -> None:
        if v in seen or isinstance(v, Constant):
            return
        seen.add(v)
        if v.owner is None or v in stopped:
            leaves.append(v)

    for out in outputs:
        visit(out)
    for node in toposort(outputs, stopped):
        for inp in node.inputs:
            visit(inp)
    return leaves


def clone_replace(outputs: Sequence[Variable], replace: dict[Variable, Variable],
                  node_hook=None) -> list[Variable]:
    """Rebuild the graph of `outputs` with `replace` applied to its variables.

    `node_hook(node, new_inputs)` may return replacement outputs for a node
    (or None to rebuild it with `op.make_node`).
    """
    mapping = dict(replace)
    for node in toposort(outputs, stop=replace):
        new_inputs = [mapping.get(v, v) for v in node.inputs]
        new_outputs = node_hook(node, new_inputs) if node_hook else None
        if new_outputs is None:
            if all(a is b for a, b in zip(new_inputs, node.inputs)):
                continue
            new_outputs = node.op.make_node(*new_inputs).outputs
        for old, new in zip(node.outputs, new_outputs):
            mapping[old] = new
    return [mapping.get(v, v) for v in outputs]


def int_constant(value: int) -> Constant:
    """An int64 scalar constant (dims and indices are int64)."""
    return Constant(np.asarray(value, dtype="int64"))


# who turns a list holding variables into one tensor (ops/shape.py registers `stack`)
SEQUENCE_PACKERS: list = []


def as_tensor_variable(x: Any, name: str | None = None, ndim: int | None = None,
                       dtype: str | None = None) -> Variable:
    """A Variable as is; a list holding variables stacked; anything else becomes a
    Constant with Aesara's literal typing."""
    if isinstance(x, Variable):
        var = x
    elif isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in x) and SEQUENCE_PACKERS:
        var = SEQUENCE_PACKERS[0]([as_tensor_variable(e) for e in x])
    else:
        try:
            var = Constant(dtypes.literal_array(x, dtype), name=name)
        except (TypeError, ValueError) as err:
            raise TypeError(f"cannot turn {x!r} into a tensor: {err}") from None
    if ndim is not None and var.ndim != ndim:
        raise TypeError(f"expected a {ndim}-d tensor, got {var.describe()}")
    return var


def constant(x: Any, name: str | None = None, ndim: int | None = None,
             dtype: str | None = None) -> Constant:
    """A Constant of a Python or numpy value (never a symbolic variable)."""
    var = as_tensor_variable(x, name=name, ndim=ndim, dtype=dtype)
    if not isinstance(var, Constant):
        raise TypeError(f"constant() needs a value, got the variable {var.describe()}")
    return var
