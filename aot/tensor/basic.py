"""`scanaot.tensor.basic`: Aesara's `aesara.tensor.basic`: creation, joining, casting, switch.

Names Aesara keeps here but scanaot defines in another family are still found
(module `__getattr__`); a name scanaot lacks is an AttributeError naming docs/tensor.md.
"""
from __future__ import annotations

from ..ops.creation import *  # noqa: F401,F403
from ..ops.shape import *  # noqa: F401,F403
from ..graph.basic import as_tensor_variable, constant  # noqa: F401
from ..ops.elemwise import cast, switch  # noqa: F401
from ._exports import module_getattr, package_namespace

__getattr__ = module_getattr(__name__, package_namespace)
