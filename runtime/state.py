"""The values of a library's shared variables, held between calls (numpy only).

A `State` holds one array per shared variable the library's manifest lists
(`manifest["shared"]`). `Library.state()` makes one from the values shipped inside
the library; a call `lib.f(x, state=st)` reads its shared arguments from `st` and,
after a successful call, stores its updates there. Each state has a lock: calls on
one state run one at a time (so no update is lost), calls on different states run
in parallel. The state owns its arrays: `get` returns copies and `set` stores
checked copies, so nothing outside can change a value behind a call's back.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from . import safetensors
from .elf import STATE_SECTION, LibraryError, sections


class StateError(ValueError):
    """A value a state cannot hold, an unknown name, or a file that does not fit."""


class State:
    """One set of shared values for one library (`Library.state()`)."""

    def __init__(self, entries: list[dict], values: Mapping[str, np.ndarray], library: str = "library",
                 key: str = ""):
        self.library = library
        self.key = key  # which libraries' kernels may use it (state_key)
        self._entries = {e["name"]: e for e in entries}
        self._values = {name: np.array(values[name], copy=True, order="C") for name in self._entries}
        self.lock = threading.RLock()

    @property
    def names(self) -> list[str]:
        """The shared variables' names, in the manifest's order."""
        return list(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}: {v.dtype}{list(v.shape)}" for n, v in self._values.items())
        return f"<scanaot state of {self.library} {{{shown}}}>"

    def get(self, name: str) -> np.ndarray:
        """A copy of the value of `name` (changing it changes nothing in the state)."""
        with self.lock:
            return self._values[self._entry(name)["name"]].copy()

    def set(self, name: str, value: Any) -> None:
        """Store `value` for `name`, converted as Aesara's `set_value` does: safe casts
        and exact conversions only, the same number of dims, broadcastable dims 1."""
        converted = check_value(self._entry(name), value, f"{self.library}: state.set({name!r})")
        with self.lock:
            self._values[name] = converted

    def as_dict(self) -> dict[str, np.ndarray]:
        """Copies of every value, by name."""
        with self.lock:
            return {n: v.copy() for n, v in self._values.items()}

    def save(self, path: str | Path) -> None:
        """Write every value to a safetensors file (read by any safetensors tool)."""
        with self.lock:
            data = dict(self._values)
        safetensors.save(path, data, {"format": "scanaot-state", "library": self.library})

    def load(self, path: str | Path, partial: bool = False) -> None:
        """Set the values a safetensors file holds (each checked as by `set`); every
        shared variable must be in it unless `partial`. Nothing changes on an error."""
        tensors = safetensors.load(path)
        unknown = [n for n in tensors if n not in self._entries]
        if unknown:
            raise StateError(f"{path}: tensor {unknown[0]!r} is not a shared variable of {self.library} "
                             f"({', '.join(self._entries) or 'none'})")
        missing = [n for n in self._entries if n not in tensors]
        if missing and not partial:
            raise StateError(f"{path}: has no value for {missing[0]!r}; pass partial=True to keep the "
                             "current values of the variables it lacks")
        checked = {n: check_value(self._entries[n], v, f"{path}: tensor {n!r}") for n, v in tensors.items()}
        with self.lock:
            self._values.update(checked)

    def __getstate__(self) -> dict:
        """A state pickles as its values (copies); the copy gets a lock of its own."""
        with self.lock:
            return {"library": self.library, "key": self.key, "entries": list(self._entries.values()),
                    "values": dict(self._values)}

    def __setstate__(self, saved: dict) -> None:
        self.__init__(saved["entries"], saved["values"], saved["library"], saved["key"])

    def _entry(self, name: str) -> dict:
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise StateError(f"{self.library} has no shared variable {name!r}; it has "
                             f"{', '.join(self._entries) or 'none'}")
        return entry

    # -- for the kernels (the caller holds the lock)
    def _read(self, names: list[str]) -> list[np.ndarray]:
        return [self._values[n] for n in names]

    def _store(self, names: list[str], arrays: list[np.ndarray]) -> None:
        """The kernel's new arrays (its own, fresh) become the values: no copy."""
        for name, array in zip(names, arrays):
            self._values[name] = array if array.flags.c_contiguous else np.ascontiguousarray(array)


def check_value(entry: dict, value: Any, what: str) -> np.ndarray:
    """`value` as a C-contiguous array of the variable's dtype and rank (a copy)."""
    want = np.dtype(entry["dtype"])
    data = np.asarray(value)
    if data.dtype != want:
        data = _cast(value, data, want, what)
    if data.ndim != entry["ndim"]:
        raise StateError(f"{what}: expected {entry['ndim']} dims, got {data.ndim} (shape {data.shape})")
    for axis, (size, bcast) in enumerate(zip(data.shape, entry["broadcastable"])):
        if bcast and size != 1:
            raise StateError(f"{what}: dim {axis} is broadcastable and must be 1, got shape {data.shape}")
    return np.array(data, dtype=want, copy=True, order="C")


def _cast(value: Any, data: np.ndarray, want: np.dtype, what: str) -> np.ndarray:
    """Safe casts; exact conversions (ints that fit, integral floats); a Python float into
    any float dtype (rounded, as the kernels take Python floats). Anything else names it."""
    if data.dtype.kind not in "biuf":
        raise StateError(f"{what}: expected a numeric array of {want}, got dtype {data.dtype}")
    if np.can_cast(data.dtype, want, "safe") or (isinstance(value, float) and want.kind == "f"):
        return data.astype(want)
    with np.errstate(all="ignore"):
        converted = data.astype(want)
    if np.array_equal(converted, data):
        return converted
    raise StateError(f"{what}: cannot store {data.dtype} values accurately as {want}; cast them explicitly")


def state_key(manifest: dict) -> str:
    """What a state must match to be used with a library's kernels: its shared
    variables' names, dtypes and dims (a state of a rebuilt library still fits)."""
    entries = [[e["name"], e["dtype"], e["ndim"], e["broadcastable"]] for e in manifest.get("shared", [])]
    return json.dumps(entries)


def shipped_values(data: bytes, manifest: dict, label: str) -> dict[str, np.ndarray]:
    """The values a library ships (its state section, safetensors), checked against the
    manifest: the section's SHA-256, and each variable's dtype and shape."""
    entries = manifest.get("shared", [])
    if not entries:
        return {}
    table = sections(data, label)
    if STATE_SECTION not in table:
        raise LibraryError(f"{label}: the manifest lists shared variables but there is no {STATE_SECTION} section")
    offset, size = table[STATE_SECTION]
    blob = data[offset:offset + size]
    record = manifest["state"]
    if size < record["bytes"] or hashlib.sha256(blob[:record["bytes"]]).hexdigest() != record["sha256"]:
        raise LibraryError(f"{label}: its shipped shared values do not match the SHA-256 its manifest records")
    try:
        values = safetensors.loads(blob[:record["bytes"]], f"{label} ({STATE_SECTION})")
    except safetensors.SafetensorsError as err:
        raise LibraryError(str(err)) from None
    for e in entries:
        value = values.get(e["name"])
        if value is None or str(value.dtype) != e["dtype"] or list(value.shape) != e["shape"]:
            raise LibraryError(f"{label}: the shipped value of shared variable {e['name']!r} is not the "
                               f"{e['dtype']}{e['shape']} its manifest states")
    return values
