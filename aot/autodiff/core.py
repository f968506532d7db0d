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

import warnings
from typing import Any, Mapping, Sequence

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
        wrt: Sequence[Variable], blocked: Sequence[Variable] = ()) -> list[Variable | None]:
    """Cotangents of `wrt` given cotangents of `outputs` (None where disconnected);
    nothing flows back through the `blocked` variables (grad's consider_constant)."""
    wrt_set = set(wrt)
    stopped = set(blocked)
    nodes = toposort(outputs, stop=wrt_set)
    # only nodes on a path from wrt to outputs matter
    depends: set[Variable] = set(wrt_set)
    relevant = []
    for node in nodes:
        if any(v in depends for v in node.inputs):
            depends.update(v for v in node.outputs if v not in stopped)
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


DISCONNECTED_CHOICES = ("raise", "warn", "ignore")
RETURN_DISCONNECTED_CHOICES = ("zero", "None")


def grad(cost: Variable | None, wrt: Any, consider_constant: Sequence[Variable] | None = None,
         disconnected_inputs: str = "raise", add_names: bool = True,
         known_grads: Mapping[Variable, Any] | None = None, return_disconnected: str = "zero",
         null_gradients: str = "raise") -> Any:
    """d cost / d wrt for a scalar float cost, as Aesara's `grad`; `wrt` may be a list.

    `consider_constant` variables pass no gradient back; `known_grads` maps variables
    to gradients already known (the cost may then be None); a `wrt` the cost does not
    depend on raises DisconnectedInputError, warns or is ignored (`disconnected_inputs`)
    and then gets zeros, or None with `return_disconnected="None"`."""
    _check_choice("disconnected_inputs", disconnected_inputs, DISCONNECTED_CHOICES)
    _check_choice("return_disconnected", return_disconnected, RETURN_DISCONNECTED_CHOICES)
    outputs, cotangents = _seeds(cost, known_grads)
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(_as_sequence("wrt", wrt))
    for i, w in enumerate(wrt_list):
        if not isinstance(w, Variable) or isinstance(w, Constant):
            raise TypeError(f"grad: wrt[{i}] must be a symbolic variable, got {w!r}")
        if not differentiable(w):
            raise TypeError(f"grad: wrt[{i}] ({w.describe()}) is not a float variable")
    blocked = list(_as_sequence("consider_constant", consider_constant or []))
    grads = vjp(outputs, cotangents, wrt_list, blocked=blocked)
    result = [g if g is not None else _disconnected(w, disconnected_inputs, return_disconnected)
              for w, g in zip(wrt_list, grads)]
    return result[0] if single else result


def _check_choice(argument: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"grad: {argument} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _as_sequence(argument: str, value: Any) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"grad: {argument} must be a variable or a list of variables, got {type(value).__name__}")
    return value


def _seeds(cost: Any, known_grads: Mapping[Variable, Any] | None) -> tuple[list[Variable], list[Variable]]:
    """The outputs the backward pass starts from and their cotangents: ones for the
    cost, the given gradients for `known_grads`."""
    if cost is None and not known_grads:
        raise ValueError("grad: cost is None, so known_grads must give the gradients to start from")
    outputs: list[Variable] = []
    cotangents: list[Variable] = []
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(f"grad: the cost must be a scalar, got {cost.describe()}")
        if not differentiable(cost):
            raise TypeError(f"grad: the cost must be a float, got {cost.describe()}")
        outputs.append(cost)
        cotangents.append(ones_like(cost))
    if known_grads is not None and not isinstance(known_grads, Mapping):
        raise TypeError(f"grad: known_grads must be a dict {{variable: gradient}}, got {type(known_grads).__name__}")
    for var, g in (known_grads or {}).items():
        if not isinstance(var, Variable):
            raise TypeError(f"grad: known_grads keys must be variables, got {var!r}")
        g = as_tensor_variable(g)
        if g.ndim != var.ndim:
            raise TypeError(f"grad: known_grads[{var.describe()}] has ndim={g.ndim}, expected {var.ndim}")
        outputs.append(var)
        cotangents.append(g)
    return outputs, cotangents


def _disconnected(w: Variable, disconnected_inputs: str, return_disconnected: str) -> Variable | None:
    """What grad gives for a variable the cost does not depend on (Aesara's message)."""
    message = (f"grad was asked for the gradient with respect to {w.describe()}, which is not part "
               "of the cost's graph or is used only by a non-differentiable op (or through "
               "disconnected_grad / consider_constant); pass disconnected_inputs='ignore' to get zeros")
    if disconnected_inputs == "raise":
        raise DisconnectedInputError(message)
    if disconnected_inputs == "warn":
        warnings.warn(message, stacklevel=3)
    return zeros_like(w) if return_disconnected == "zero" else None


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
