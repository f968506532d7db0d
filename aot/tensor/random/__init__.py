"""`scanaot.tensor.random`: Aesara's `aesara.tensor.random`: random streams whose
numbers come from Philox4x32-10 emitted as IR, identical on every target
(docs/random.md).

    from scanaot.tensor.random.utils import RandomStream
    srng = RandomStream(seed=42)
    x = srng.normal(0.0, 1.0, size=(3,))
"""
from __future__ import annotations

from . import basic, utils  # noqa: F401
from .basic import *  # noqa: F401,F403
from .utils import RandomStream  # noqa: F401
