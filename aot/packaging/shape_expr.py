"""Output shapes and argument shape relations as expressions over the arguments.

The manifest of a library states each output's shape in terms of the inputs'
dims and scalar arguments, so the caller can allocate outputs before the kernel
runs. Expressions are small JSON trees that `scanaot.runtime.shapes` evaluates:

    {"const": 3}  {"dim": [arg, axis]}  {"arg": i}  {"op": name, "args": [...]}

with op names add, sub, mul, floordiv, truediv, neg, max, min, ceil, int, lt,
le, gt, ge, eq, ne, select. An output of an `until` loop has a bound instead of
an exact length (`"bounded": true` on that dim): the kernel reports the length.
"""
from __future__ import annotations

from typing import Sequence

from ..graph.basic import Constant, Variable, int_constant, toposort
from ..ops.elemwise import Cast, Elemwise
from ..ops.linalg import Dot
from ..ops.shape import ShapeI
from ..ops.shape_inference import shape_of
from ..runtime.shapes import evaluate
from ..scan.op import ScanOp

_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "int_div": "floordiv", "true_div": "truediv",
           "maximum": "max", "minimum": "min", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
           "eq": "eq", "neq": "ne"}
_UNARY = {"neg": "neg", "ceil": "ceil"}


class NotExpressible(ValueError):
    """A shape that depends on values computed inside the program."""


class ExprBuilder:
    """Turns scalar graphs into expressions over the function's arguments."""

    def __init__(self, inputs: Sequence[Variable]):
        self.position = {v: i for i, v in enumerate(inputs)}
        self.inputs = list(inputs)

    def expr(self, var: Variable) -> dict:
        return fold(self._expr(var))

    def _expr(self, var: Variable) -> dict:
        if isinstance(var, Constant):
            value = var.data.item()
            return {"const": bool(value) if var.dtype == "bool" else value}
        if var in self.position:
            if var.ndim != 0:
                raise NotExpressible(f"the values of the array argument {var.describe()}")
            return {"arg": self.position[var]}
        node = var.owner
        if node is None:
            raise NotExpressible(f"{var.describe()}")
        op = node.op
        if isinstance(op, ShapeI):
            source = node.inputs[0]
            if source in self.position:
                return {"dim": [self.position[source], op.axis]}
            return self.expr(shape_of(source)[op.axis]) if _has_rule(source) else self._fail(source)
        if isinstance(op, Cast):
            inner = self.expr(node.inputs[0])
            return {"op": "int", "args": [inner]} if op.dtype.startswith("int") else inner
        if isinstance(op, Elemwise):
            args = [self.expr(v) for v in node.inputs]
            if op.scalar in _BINARY:
                return {"op": _BINARY[op.scalar], "args": args}
            if op.scalar in _UNARY:
                return {"op": _UNARY[op.scalar], "args": args}
            if op.scalar == "switch":
                return {"op": "select", "args": args}
        return self._fail(var)

    def _fail(self, var: Variable):
        raise NotExpressible(f"{var.describe()}, computed by {var.owner.op if var.owner else 'nothing'}")

    def output_shape(self, out: Variable) -> tuple[list[dict], list[bool]]:
        """Each dim's expression, and whether it is only an upper bound (until loops)."""
        node = out.owner
        if node is not None and isinstance(node.op, ScanOp) and node.op.condition is not None:
            n_steps = node.op.split_inputs(node.inputs)["n_steps"]
            rest = shape_of(out)[1:]
            return [self.expr(n_steps)] + [self.expr(d) for d in rest], [True] + [False] * len(rest)
        return [self.expr(d) for d in shape_of(out)], [False] * out.ndim

    def constraints(self, outputs: Sequence[Variable]) -> list[dict]:
        """Shape relations the arguments must satisfy, found on the graph's nodes."""
        found: list[dict] = []
        seen: set[str] = set()

        def add(kind: str, a: Variable, b: Variable, why: str) -> None:
            try:
                ea, eb = self.expr(a), self.expr(b)
            except NotExpressible:
                return
            if ea == eb or ("const" in ea and "const" in eb):
                return
            key = repr((kind, ea, eb))
            if key not in seen:
                seen.add(key)
                found.append({"rel": kind, "args": [ea, eb], "why": why})

        for node in toposort(outputs):
            if isinstance(node.op, Elemwise):
                out = node.outputs[0]
                for axis in range(out.ndim):
                    dims = []
                    for v in node.inputs:
                        offset = axis - (out.ndim - v.ndim)
                        if offset >= 0 and not v.broadcastable[offset]:
                            dims.append(shape_of(v)[offset])
                    for other in dims[1:]:
                        add("eq", dims[0], other, f"elementwise {node.op}")
            elif isinstance(node.op, Dot):
                x, y = node.inputs
                add("eq", shape_of(x)[-1], shape_of(y)[0], "dot: inner dims")
            elif isinstance(node.op, ScanOp):
                parts = node.op.split_inputs(node.inputs)
                inits = iter(parts["initial"])
                for kind, taps in zip(node.op.out_kinds, node.op.out_taps):
                    if kind != "state":
                        continue
                    init = next(inits)
                    if taps != [-1]:
                        add("ge", shape_of(init)[0], int_constant(-min(taps)),
                            f"scan: initial state rows for taps {taps}")
                n = parts["n_steps"]
                add("ge", n, int_constant(0), "scan: n_steps, or a sequence shorter than its taps")
        return found


def fold(expr: dict) -> dict:
    """Evaluate subtrees that use no argument and drop identities (`e * 1`, `e + 0`,
    `(e + 1) + 1` -> `e + 2`): manifests and messages stay short, and expressions stay
    within the depth the runtime accepts (runtime/schema.py)."""
    if "op" not in expr:
        return expr
    args = [fold(a) for a in expr["args"]]
    if all("const" in a for a in args):
        return {"const": evaluate({"op": expr["op"], "args": args}, [], [])}
    return _simplify(expr["op"], args)


def _int_const(expr: dict) -> int | None:
    value = expr.get("const")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _simplify(op: str, args: list[dict]) -> dict:
    """Integer identities only: float shape arithmetic keeps its rounding as written."""
    if op in ("add", "sub") and _int_const(args[1]) is not None:
        step = _int_const(args[1]) * (1 if op == "add" else -1)
        inner = args[0]
        if inner.get("op") == "add" and _int_const(inner["args"][1]) is not None:
            step, inner = step + _int_const(inner["args"][1]), inner["args"][0]
        return inner if step == 0 else {"op": "add", "args": [inner, {"const": step}]}
    if op == "mul" and 1 in (_int_const(args[0]), _int_const(args[1])):
        return args[1] if _int_const(args[0]) == 1 else args[0]
    if op == "int" and args[0].get("op") == "int":
        return args[0]
    return {"op": op, "args": args}


def depth(expr: dict) -> int:
    """How many levels an expression nests (iteratively: expressions may be deep)."""
    deepest, pending = 0, [(expr, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        pending.extend((a, level + 1) for a in node.get("args", ()))
    return deepest


def _has_rule(var: Variable) -> bool:
    return var.owner is not None and var.owner.op.infer_shape(
        var.owner, [shape_of(v) for v in var.owner.inputs]) is not None


def render(expr: dict, names: Sequence[str]) -> str:
    """A readable form of an expression, for `scanaot inspect` and error messages."""
    if "const" in expr:
        return repr(expr["const"])
    if "arg" in expr:
        return names[expr["arg"]]
    if "dim" in expr:
        i, axis = expr["dim"]
        return f"{names[i]}.shape[{axis}]"
    args = [render(a, names) for a in expr["args"]]
    infix = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "truediv": "/", "lt": "<", "le": "<=",
             "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
    op = expr["op"]
    if op == "add" and (_int_const(expr["args"][1]) or 0) < 0:  # fold writes e - 1 as e + -1
        return f"({args[0]} - {-_int_const(expr['args'][1])})"
    if op in infix:
        return f"({args[0]} {infix[op]} {args[1]})"
    if op == "select":
        return f"({args[1]} if {args[0]} else {args[2]})"
    if op == "neg":
        return f"-{args[0]}"
    return f"{op}({', '.join(args)})"
