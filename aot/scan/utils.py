"""`until`: what a step function returns last to stop the loop (Aesara's
`aesara.scan.utils.until`)."""
from __future__ import annotations

from typing import Any

from ..graph.basic import as_tensor_variable
from ..ops.elemwise import cast


class until:  # noqa: N801 - Aesara's spelling
    """Returned last by a step function: stop after the step where `condition` is true."""

    def __init__(self, condition: Any):
        cond = as_tensor_variable(condition)
        if cond.ndim != 0:
            raise TypeError(f"until: the condition must be a scalar, got {cond.describe()}")
        self.condition = cond if cond.dtype == "bool" else cast(cond, "bool")
