"""Ops that pass their input through unchanged but change what flows back through
them, as Aesara's `zero_grad`, `disconnected_grad` and `consider_constant`:

    zero_grad(x)          the gradient through x is zero (x stays connected)
    consider_constant(x)  the same (Aesara's older name, kept for programs that use it)
    disconnected_grad(x)  no gradient flows back: inputs reached only through x are
                          disconnected, so `grad` raises DisconnectedInputError

Each is an op with an identity emission, so the compiled program pays nothing for it.
"""
from __future__ import annotations

from typing import Any

from ..graph import rules
from ..graph.basic import Apply, Op, Variable, as_tensor_variable
from ..ops.creation import zeros_like


class GradientStop(Op):
    """Identity forward; `connected` says whether a (zero) gradient flows back."""

    def __init__(self, name: str, connected: bool):
        self.name = name
        self.connected = connected

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [x.type])

    def infer_shape(self, node: Apply, input_shapes):
        return [input_shapes[0]]

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.name, other.connected) == (self.name, self.connected)

    def __hash__(self) -> int:
        return hash((type(self), self.name, self.connected))


@rules.emission(GradientStop)
def _emit_identity(fe, node, values):
    return [values[0]]


@rules.vjp(GradientStop)
def _vjp_stop(node, cots, needed):
    if not node.op.connected:
        return [None]
    return [zeros_like(cots[0] if cots[0] is not None else node.inputs[0])]


def _apply(op: GradientStop, x: Any) -> Variable:
    try:
        var = as_tensor_variable(x)
    except TypeError:
        raise TypeError(f"{op.name}: x must be a tensor variable or a number, got {type(x).__name__}") from None
    return op(var)


def zero_grad(x: Any) -> Variable:
    """x, with a zero gradient: `grad(f(zero_grad(x)), x)` is zeros (Aesara's zero_grad)."""
    return _apply(GradientStop("zero_grad", connected=True), x)


def consider_constant(x: Any) -> Variable:
    """x, treated as a constant by `grad` (Aesara's older spelling of zero_grad)."""
    return _apply(GradientStop("consider_constant", connected=True), x)


def disconnected_grad(x: Any) -> Variable:
    """x, through which no gradient flows: what x alone depends on is disconnected
    from the cost (Aesara's disconnected_grad)."""
    return _apply(GradientStop("disconnected_grad", connected=False), x)
