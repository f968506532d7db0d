"""`scanaot.tensor.var`: Aesara's `aesara.tensor.var`: the variable classes.

Names Aesara keeps here but scanaot defines in another family are still found
(module `__getattr__`); a name scanaot lacks is an AttributeError naming docs/tensor.md.
"""
from __future__ import annotations

from ..graph.basic import Constant as TensorConstant  # noqa: F401
from ..graph.basic import Variable as TensorVariable  # noqa: F401
from ..ops import reduction
from ._exports import make_callable, module_getattr, package_namespace

__getattr__ = module_getattr(__name__, package_namespace)

if hasattr(reduction, "var"):  # the variance, at.var, as in Aesara
    make_callable(__name__, reduction.var)
