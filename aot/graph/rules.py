"""The rule tables, keyed by op class, that every op family registers in beside its
definition (as JAX registers a primitive's lowering and transpose next to it).

    EMISSION[Op]  (function_emitter, node, input values) -> one MLIR value per output
    VJP[Op]       (node, output cotangents, needed) -> one cotangent per input

A missing rule is an error that names the op and where the supported ops are listed.
Nothing here imports MLIR: the front end and the gradient use these tables without it.
"""
from __future__ import annotations

from typing import Any, Callable

EMISSION: dict[type, Callable] = {}
VJP: dict[type, Callable] = {}


class UnsupportedOpError(TypeError):
    """An op (or scalar function) the emitter has no rule for."""


class NullGradientError(TypeError):
    """An op on the path from the cost to a variable has no VJP rule."""


def emission(op_class: type) -> Callable[[Callable], Callable]:
    """Register the decorated function as `op_class`'s emission rule."""
    def register(fn: Callable) -> Callable:
        EMISSION[op_class] = fn
        return fn
    return register


def vjp(op_class: type) -> Callable[[Callable], Callable]:
    """Register the decorated function as `op_class`'s vector-Jacobian product."""
    def register(fn: Callable) -> Callable:
        VJP[op_class] = fn
        return fn
    return register


def emission_rule(op: Any) -> Callable:
    try:
        return EMISSION[type(op)]
    except KeyError:
        raise UnsupportedOpError(f"no emission rule for op {op} ({type(op).__name__}): scanaot cannot "
                                 "compile it; express it with the ops listed in docs/tensor.md") from None


def vjp_rule(op: Any) -> Callable:
    try:
        return VJP[type(op)]
    except KeyError:
        raise NullGradientError(
            f"no gradient (VJP) rule for op {op} ({type(op).__name__}); it lies between the "
            "cost and a variable you differentiate with respect to. Rewrite that part with ops that "
            "have rules (see docs/grad.md), or stop the gradient before it") from None


def no_gradient(node: Any, cotangents: list, needed: list) -> list:
    """The VJP of ops whose result does not depend differentiably on any input."""
    return [None] * len(node.inputs)
