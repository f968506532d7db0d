"""Loading a scanaot library (numpy + ctypes only): verify its bytes, map exactly
those bytes, check the CPU, and give one Kernel (kernel.py) per function.
"""
from __future__ import annotations

import ctypes
import hashlib
import platform
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from . import manifest as manifest_mod
from . import signing
from .cpu import check_variants
from .elf import MANIFEST_SECTION, LibraryError, sections
from .kernel import Kernel
from .loader import open_verified
from .state import State, shipped_values, state_key
from .stateful import StatefulKernel, is_stateful


def load(path: str | Path, *, sha256: str | None = None, trusted_keys: Sequence[str] | None = None,
         signature: str | Path | dict | None = None) -> "Library":
    """Open a library built by `scanaot.compile`; refuses anything it cannot run.

    The file is read once; what runs is exactly the bytes whose digest and
    manifest were checked (runtime/loader.py), so a library rebuilt at the same
    path and loaded again runs its new code. `sha256`: the hex SHA-256 of the
    file the caller trusts (pinned at deployment); any other file is refused.
    `trusted_keys`: Ed25519 public keys (hex); the library must carry a valid
    signature by one of them (`signature`, default the file `PATH.sig`;
    runtime/signing.py)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LibraryError(f"{path}: cannot read: {err.strerror}") from None
    if trusted_keys is not None and signature is None:
        signature = Path(f"{path}.sig")
    return load_bytes(data, str(path), sha256=sha256, trusted_keys=trusted_keys, signature=signature)


def load_bytes(data: bytes, label: str = "<library bytes>", *, sha256: str | None = None,
               trusted_keys: Sequence[str] | None = None, signature: str | Path | dict | None = None) -> "Library":
    """Open a library from its bytes (`label` names it in errors and as `Library.path`)."""
    path = Path(label)
    data = bytes(data)
    if sha256 is not None:
        _check_pinned(data, sha256, label)
    if signature is not None and trusted_keys is None:
        raise TypeError("signature= needs trusted_keys=[...]: the public keys a signature must be made with")
    if trusted_keys is not None:
        record = signature if isinstance(signature, dict) or signature is None else \
            signing.read_signature(str(signature), label)
        signing.check_signature(data, record, trusted_keys, label)
    manifest = manifest_mod.read(data, label)
    _check_target(manifest, path)
    shipped = shipped_values(data, manifest, label)  # before dlopen: a bad value runs nothing
    handle = open_verified(data, label, _maps(data, manifest))
    if manifest["target"]["name"] == "cuda":
        library = _cuda_library(path, manifest, handle)
    else:
        library = Library(path, manifest, handle)
    library.cpu_variant = _check_cpu(manifest, handle, label)
    library._bytes = data
    library._shipped = shipped
    return library


_unpickled: dict[str, "Library"] = {}  # SHA-256 -> the library, so each process loads it once
_unpickled_lock = threading.Lock()


def _from_pickle(data: bytes, label: str) -> "Library":
    """Unpickling: verify and load the bytes (once per process for the same bytes)."""
    key = hashlib.sha256(data).hexdigest()
    with _unpickled_lock:
        library = _unpickled.get(key)
        if library is None:
            library = _unpickled[key] = load_bytes(data, label)
        return library


def _maps(data: bytes, manifest: dict) -> Callable[[ctypes.CDLL], bool]:
    """Whether a handle maps these bytes: its exported manifest is this file's."""
    offset, size = sections(data)[MANIFEST_SECTION]
    raw = data[offset:offset + size]
    symbol = manifest_mod.manifest_symbol(manifest.get("library"))

    def check(handle: ctypes.CDLL) -> bool:
        try:
            cell = ctypes.c_char.in_dll(handle, symbol)
        except ValueError:
            return False
        return ctypes.string_at(ctypes.addressof(cell), len(raw)) == raw
    return check


def _check_pinned(data: bytes, sha256: str, label: str) -> None:
    """The file is the one the deployment trusts (the digest inside a library guards
    against damage, not against someone who can rewrite the file)."""
    if not isinstance(sha256, str):
        raise TypeError(f"sha256= must be a hex string, got {type(sha256).__name__}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.strip().lower():
        raise LibraryError(f"{label}: SHA-256 {actual} is not the pinned {sha256}")


def _check_cpu(manifest: dict, handle: ctypes.CDLL, label: str) -> str:
    """The CPU variant the entry points run here (a LibraryError if there is none).

    Libraries from before CPU variants were recorded are accepted only when built
    for baseline x86-64, which every x86-64 CPU runs."""
    target = manifest["target"]
    if "variants" not in target:
        if target.get("cpu") == "x86-64":
            return "x86-64"
        raise LibraryError(f"{label}: built by an earlier scanaot for cpu {target.get('cpu')!r} without a "
                           "record of the CPU features it needs, so this CPU cannot be checked; rebuild it")
    return check_variants(target["variants"], handle, label)["cpu"]


def _cuda_library(path: Path, manifest: dict, handle: ctypes.CDLL) -> "Library":
    """A cuda library: its device code was loaded by the library's constructor; check that."""
    from .cuda import CudaError, Shim
    from .cuda_kernel import CudaKernel, StatefulCudaKernel

    shim = Shim(handle, path)
    try:
        shim.raise_if_failed("loading the device code")
    except CudaError as err:
        raise LibraryError(f"{path}: {err}") from None
    return Library(path, manifest, handle,
                   lambda spec: (StatefulCudaKernel if is_stateful(spec) else CudaKernel)(spec, handle, path, shim))


def _check_target(manifest: dict, path: Path) -> None:
    target = manifest.get("target", {})
    name = target.get("name")
    if name in ("cpu", "cuda"):
        arch = target.get("triple", "").split("-")[0]
        if arch != platform.machine():
            raise LibraryError(f"{path}: built for {arch} CPUs; this machine is {platform.machine()}")
        if name == "cuda":
            from .cuda import check_device
            check_device(manifest, path)
        return
    raise LibraryError(f"{path}: built for target {name!r}, which this runtime cannot run here")


class Library:
    """A loaded library: one attribute (and `lib[name]`) per compiled function."""

    def __init__(self, path: Path, manifest: dict, handle: ctypes.CDLL, make_kernel: Any = None):
        self.path = path
        self.manifest = manifest
        self._handle = handle
        make_kernel = make_kernel or (lambda spec: (StatefulKernel if is_stateful(spec) else Kernel)(spec, handle, path))
        self.state_key = state_key(manifest)
        self._shipped: dict = {}
        self._default_state: State | None = None
        self._state_lock = threading.Lock()
        self.functions = {f["name"]: make_kernel(f) for f in manifest["functions"]}
        for kernel in self.functions.values():
            kernel.library = self
            if "vjp" in kernel.spec:
                kernel._vjp = self.functions[kernel.spec["vjp"]["function"]]

    def __reduce__(self):
        """A library pickles as its sealed bytes: process pools, Dask and Ray carry it to
        workers that have only the runtime; unpickling verifies the seal and maps the
        bytes like `load_bytes` (once per process for the same bytes)."""
        data = self.__dict__.get("_bytes")
        if data is None:
            raise TypeError(f"{self.path}: a library made without its bytes cannot be pickled; load it "
                            "with scanaot.runtime.load or load_bytes")
        return _from_pickle, (data, str(self.path))

    @property
    def shared(self) -> list[dict]:
        """The manifest's shared variables (name, dtype, ndim, shape, broadcastable, updated)."""
        return self.manifest.get("shared", [])

    def state(self) -> State:
        """A new State holding the values shipped in the library (what `compile` saw)."""
        return State(self.shared, self._shipped, self.manifest.get("library", str(self.path)), self.state_key)

    @property
    def default_state(self) -> State:
        """The state calls use when they pass no `state=` (made on first use)."""
        with self._state_lock:
            if self._default_state is None:
                self._default_state = self.state()
            return self._default_state

    def __getattr__(self, name: str) -> "Kernel":
        functions = self.__dict__.get("functions", {})
        if name in functions:
            return functions[name]
        raise AttributeError(f"{self.__dict__.get('path')} has no function {name!r}; it has "
                             f"{', '.join(functions) or 'none'}")

    def __getitem__(self, name: str) -> "Kernel":
        """The function `name`, also when it shares a name with an attribute (`manifest`)."""
        functions = self.__dict__.get("functions", {})
        if name not in functions:
            raise KeyError(f"{self.path} has no function {name!r}; it has {', '.join(functions) or 'none'}")
        return functions[name]

    def __repr__(self) -> str:
        return f"<scanaot library {self.path} functions={list(self.functions)}>"


