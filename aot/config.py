"""Process-wide settings, as Aesara's `aesara.config` (`scanaot.config.floatX`).

`floatX` defaults to float64, as in Aesara. It is set, from the weakest to the
strongest, by `SCANAOT_FLAGS` (Aesara's `AESARA_FLAGS` syntax:
`SCANAOT_FLAGS="floatX=float32"`), by `SCANAOT_FLOATX`, by assigning
`scanaot.config.floatX`, or for a block by `with config.change_flags(floatX=...)`.
A key scanaot does not use is a warning, as an unknown key is in Aesara.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import sys
import types
import warnings
from typing import Any, Iterator

FLOATX_CHOICES = ("float64", "float32")
DEFAULTS: dict[str, str] = {"floatX": "float64"}


class ScanaotConfigWarning(UserWarning):
    """A flag in SCANAOT_FLAGS that scanaot ignores (unknown, or without a value)."""


def parse_config_string(config_string: str, source: str = "SCANAOT_FLAGS") -> dict[str, str]:
    """`key=value` pairs separated by commas, as Aesara parses AESARA_FLAGS
    (`floatX=float32,device=cpu`); a pair without `=` is ignored with a warning."""
    splitter = shlex.shlex(config_string, posix=True)
    splitter.whitespace = ","
    splitter.whitespace_split = True
    parsed: dict[str, str] = {}
    for pair in splitter:
        pair = pair.strip()
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep:
            warnings.warn(f"{source}: the flag {key!r} has no value (expected key=value); ignoring it",
                          ScanaotConfigWarning, stacklevel=3)
            continue
        parsed[key.strip().replace(".", "__")] = value.strip()
    return parsed


def check_floatX(value: Any) -> str:  # noqa: N802 - Aesara's spelling
    """floatX is one of the float dtypes scanaot compiles (Aesara also has float16)."""
    if value not in FLOATX_CHOICES:
        raise ValueError(f"config.floatX must be one of {', '.join(FLOATX_CHOICES)}, got {value!r}")
    return str(value)


_CHECKS = {"floatX": check_floatX}


def _from_environment() -> dict[str, str]:
    """The settings SCANAOT_FLAGS and SCANAOT_FLOATX give; unknown keys warn, as in Aesara."""
    settings = dict(DEFAULTS)
    for key, value in parse_config_string(os.environ.get("SCANAOT_FLAGS", "")).items():
        if key not in _CHECKS:
            warnings.warn(f"SCANAOT_FLAGS: scanaot does not recognise the flag {key!r} (it knows "
                          f"{', '.join(sorted(_CHECKS))}; see docs/config.md); ignoring it",
                          ScanaotConfigWarning, stacklevel=2)
            continue
        settings[key] = _CHECKS[key](value)
    if "SCANAOT_FLOATX" in os.environ:
        settings["floatX"] = check_floatX(os.environ["SCANAOT_FLOATX"])
    return settings


@contextlib.contextmanager
def change_flags(**flags: Any) -> Iterator[None]:
    """Set flags for a block (or a decorated function), restoring them after, as
    Aesara's `config.change_flags`."""
    module = sys.modules[__name__]
    old = {}
    for key, value in flags.items():
        if key not in _CHECKS:
            raise ValueError(f"change_flags: unknown flag {key!r}; scanaot knows {', '.join(sorted(_CHECKS))}")
        old[key] = getattr(module, key)
    try:
        for key, value in flags.items():
            setattr(module, key, value)
        yield
    finally:
        for key, value in old.items():
            setattr(module, key, value)


class _ConfigModule(types.ModuleType):
    """Assigning a flag checks its value, so a typo fails where it is made."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CHECKS:
            value = _CHECKS[name](value)
        super().__setattr__(name, value)


floatX: str = _from_environment()["floatX"]
sys.modules[__name__].__class__ = _ConfigModule
