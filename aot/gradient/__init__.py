"""`scanaot.gradient`: Aesara's `aesara.gradient` names.

The engine (scanaot/autodiff) runs the VJP rules each op registers beside its
definition and holds the ops that change what flows back (zero_grad,
disconnected_grad, consider_constant); jacobian.py builds jacobians and hessians as
scans, so this package sits above both the engine and the loop.
"""
from ..graph.rules import NullGradientError  # noqa: F401
from ..autodiff.core import DisconnectedInputError, grad  # noqa: F401
from .jacobian import hessian, jacobian  # noqa: F401
from ..autodiff.stop import consider_constant, disconnected_grad, zero_grad  # noqa: F401

__all__ = ["grad", "jacobian", "hessian", "zero_grad", "disconnected_grad", "consider_constant",
           "DisconnectedInputError", "NullGradientError"]
