"""`scanaot.tensor.math`: Aesara's `aesara.tensor.math`: elementwise math, reductions, dot.

Names Aesara keeps here but scanaot defines in another family are still found
(module `__getattr__`); a name scanaot lacks is an AttributeError naming docs/tensor.md.
"""
from __future__ import annotations

from ..ops.elemwise import *  # noqa: F401,F403
from ..ops.reduction import *  # noqa: F401,F403
from ..ops.linalg import *  # noqa: F401,F403
from ..ops.elemwise import abs_ as abs  # noqa: F401,A004
from ..ops.elemwise import pow_ as pow  # noqa: F401,A004
from ..ops.elemwise import sgn as sign  # noqa: F401
from ._exports import module_getattr, package_namespace

__getattr__ = module_getattr(__name__, package_namespace)
