"""`scanaot.tensor.shape`: Aesara's `aesara.tensor.shape`: shape, reshape, specify_shape.

Names Aesara keeps here but scanaot defines in another family are still found
(module `__getattr__`); a name scanaot lacks is an AttributeError naming docs/tensor.md.
"""
from __future__ import annotations

from ..ops.shape import *  # noqa: F401,F403
from ..ops.shape import shape as _shape_of
from ._exports import make_callable, module_getattr, package_namespace

__getattr__ = module_getattr(__name__, package_namespace)


make_callable(__name__, _shape_of)
