"""Reverse-mode differentiation of the traced graph: `grad(cost, wrt)`.

One vector-Jacobian product (VJP) rule per op class, registered beside the op
(`graph.rules.VJP`). A rule gets the node, one cotangent per output (None where
nothing flows back) and which inputs need a cotangent; it returns one cotangent per
input (None for inputs it is not differentiable in, or that are not needed), which
may still have the broadcast shape of the output: this engine sums every cotangent
down to its variable's type and dtype (`unbroadcast`), once, for every op.
The scan rule (scanaot/scan/grad.py) builds a reversed scan, so gradients of loops
are loops, compiled by the same pipeline.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..graph import dtypes
from ..graph.basic import Constant, Variable, as_tensor_variable, toposort
from ..graph.rules import NullGradientError, vjp_rule  # noqa: F401  (raised by vjp_rule)
from ..ops.creation import ones_like, zeros_like
from ..ops.elemwise import cast
from ..ops.reduction import sum as sum_
from ..ops.shape import dimshuffle


class DisconnectedInputError(ValueError):
    """The cost does not depend on a variable it is differentiated with respect to."""


def differentiable(var: Variable) -> bool:
    return dtypes.is_float(var.dtype)


def vjp(outputs: Sequence[Variable], cotangents: Sequence[Variable | None],
        wrt: Sequence[Variable]) -> list[Variable | None]:
    """Cotangents of `wrt` given cotangents of `outputs` (None where disconnected)."""
    wrt_set = set(wrt)
    nodes = toposort(outputs, stop=wrt_set)
    # only nodes on a path from wrt to outputs matter
    depends: set[Variable] = set(wrt_set)
    relevant = []
    for node in nodes:
        if any(v in depends for v in node.inputs):
            depends.update(node.outputs)
            relevant.append(node)
    for node in relevant:
        vjp_rule(node.op)  # every rule exists before any is run
    adjoint: dict[Variable, Variable] = {}
    for out, cot in zip(outputs, cotangents):
        if cot is not None and out in depends:
            _accumulate(adjoint, out, _match(cot, out))
    for node in reversed(relevant):
        cots = [adjoint.get(v) for v in node.outputs]
        if all(c is None for c in cots):
            continue
        needed = [v in depends and differentiable(v) for v in node.inputs]
        in_cots = vjp_rule(node.op)(node, cots, needed)
        for var, cot in zip(node.inputs, in_cots):
            if cot is None or var not in depends or not differentiable(var):
                continue
            _accumulate(adjoint, var, _match(cot, var))
    return [adjoint.get(v) for v in wrt]


def _accumulate(adjoint: dict, var: Variable, cot: Variable) -> None:
    adjoint[var] = cot if var not in adjoint else adjoint[var] + cot


def _match(cot: Variable, var: Variable) -> Variable:
    """A cotangent with the variable's type: summed over what broadcasting added, in
    the variable's dtype (gradients of float32 stay float32)."""
    cot = unbroadcast(cot, var)
    return cot if cot.dtype == var.dtype else cast(cot, var.dtype)


def grad(cost: Variable, wrt: Any, disconnected_inputs: str = "raise") -> Any:
    """d cost / d wrt for a scalar float cost (Aesara's `grad`). `wrt` may be a list."""
    cost = as_tensor_variable(cost)
    if cost.ndim != 0:
        raise TypeError(f"grad: the cost must be a scalar, got {cost.describe()}")
    if not differentiable(cost):
        raise TypeError(f"grad: the cost must be a float, got {cost.describe()}")
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    for i, w in enumerate(wrt_list):
        if not isinstance(w, Variable) or isinstance(w, Constant):
            raise TypeError(f"grad: wrt[{i}] must be a symbolic variable, got {w!r}")
        if not differentiable(w):
            raise TypeError(f"grad: wrt[{i}] ({w.describe()}) is not a float variable")
    grads = vjp([cost], [ones_like(cost)], wrt_list)
    result = []
    for w, g in zip(wrt_list, grads):
        if g is None:
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(
                    f"grad: the cost does not depend on {w.describe()}; pass "
                    "disconnected_inputs='ignore' to get zeros")
            g = zeros_like(w)
        result.append(g)
    return result[0] if single else result


def unbroadcast(g: Variable, var: Variable) -> Variable:
    """Sum a cotangent over the dims that broadcasting added or stretched for `var`."""
    lead = g.ndim - var.ndim
    if lead < 0:
        return g  # fewer dims than the variable: broadcasts where it is used
    stretched = [lead + a for a, b in enumerate(var.broadcastable) if b and not g.broadcastable[lead + a]]
    axes = list(range(lead)) + stretched
    if not axes:
        return g
    g = sum_(g, axis=tuple(axes), dtype=g.dtype)
    order, k = [], 0
    for a in range(var.ndim):
        if lead + a in stretched:
            order.append("x")
        else:
            order.append(k)
            k += 1
    return dimshuffle(g, *order) if order != list(range(g.ndim)) else g
