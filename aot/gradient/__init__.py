"""`scanaot.gradient`: Aesara's `aesara.gradient` names.

The engine (core.py) runs the VJP rules each op registers beside its definition.
"""
from ..graph.rules import NullGradientError  # noqa: F401
from .core import DisconnectedInputError, grad  # noqa: F401
