"""`scanaot.tensor.slinalg`: Aesara's `aesara.tensor.slinalg`: the scipy-style solvers and factorizations.

Names Aesara keeps here but scanaot defines in another family are still found
(module `__getattr__`); a name scanaot lacks is an AttributeError naming docs/tensor.md.
"""
from __future__ import annotations

from ._exports import module_getattr, package_namespace

__getattr__ = module_getattr(__name__, package_namespace)
