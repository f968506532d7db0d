"""Process-wide settings, Aesara-style (`scanaot.config.floatX`).

`floatX` defaults to float32, the dtype the project's users deploy with (Aesara's
own default is float64); set `SCANAOT_FLOATX=float64` or assign `config.floatX`.
"""
import os

floatX: str = os.environ.get("SCANAOT_FLOATX", "float32")
