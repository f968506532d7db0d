"""`jacobian` and `hessian`, as Aesara builds them: a scan over the rows of the
expression, each step taking one row's gradient, so the result is one compiled loop
whatever the length.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..graph.basic import Variable, as_tensor_variable
from ..ops.creation import arange
from ..ops.shape import shape_i
from ..autodiff.core import grad
from ..scan.basic import scan


def _wrt_list(function: str, wrt: Any) -> tuple[list[Variable], bool]:
    single = isinstance(wrt, Variable)
    items = [wrt] if single else wrt
    if not isinstance(items, (list, tuple)) or not all(isinstance(w, Variable) for w in items):
        raise TypeError(f"{function}: wrt must be a variable or a list of variables, got {wrt!r}")
    return list(items), single


def jacobian(expression: Any, wrt: Any, consider_constant: Sequence[Variable] | None = None,
             disconnected_inputs: str = "raise") -> Any:
    """d expression[i] / d wrt for a vector expression: one result per `wrt`, of shape
    (len(expression),) + wrt.shape (Aesara's `jacobian`, by scan over the rows)."""
    expression = as_tensor_variable(expression)
    wrt_list, single = _wrt_list("jacobian", wrt)
    if expression.ndim == 0:
        return grad(expression, wrt, consider_constant=consider_constant,
                    disconnected_inputs=disconnected_inputs)
    if expression.ndim != 1:
        raise TypeError(f"jacobian: expression must be a vector (flatten it first), got {expression.describe()}")

    def row(i: Variable) -> list[Variable]:
        return grad(expression[i], wrt_list, consider_constant=consider_constant,
                    disconnected_inputs=disconnected_inputs)

    rows, _ = scan(row, sequences=[arange(shape_i(expression, 0))], return_list=True)
    return rows[0] if single else rows


def hessian(cost: Any, wrt: Any, consider_constant: Sequence[Variable] | None = None,
            disconnected_inputs: str = "raise") -> Any:
    """The matrix of second derivatives of a scalar cost for each vector in `wrt`
    (Aesara's `hessian`: the jacobian of the gradient)."""
    wrt_list, single = _wrt_list("hessian", wrt)
    for i, w in enumerate(wrt_list):
        if w.ndim != 1:
            raise TypeError(f"hessian: wrt[{i}] must be a vector, got {w.describe()}")
    hessians = [jacobian(grad(cost, w, consider_constant=consider_constant,
                              disconnected_inputs=disconnected_inputs),
                         w, consider_constant=consider_constant, disconnected_inputs="ignore")
                for w in wrt_list]
    return hessians[0] if single else hessians
