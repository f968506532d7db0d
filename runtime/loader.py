"""Mapping exactly the bytes that were verified.

`dlopen` of a path hands back the handle it already has for that path, and
reads the file again after the runtime checked it: a library rebuilt at the
same path would run the old code with the new manifest, and a file swapped
between the check and the load would run unchecked. So the runtime never
dlopens the user's path: it verifies the bytes in memory, copies them into a
sealed memfd (no one can change it afterwards) and dlopens that. Handles are
kept per SHA-256 of the bytes: loading the same bytes again reuses the mapping,
and different bytes always get a mapping of their own. Without memfd (not
Linux, or /proc missing) or where the system refuses to execute a memfd
(`vm.memfd_noexec`), the bytes go to a file in a new private (0700) folder under
`$SCANAOT_LOAD_DIR` (default: the temporary folder; point it at an exec-mounted
place where /tmp is noexec), removed with its folder once mapped.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from typing import Callable

from .elf import LibraryError

_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")
_handles: dict[str, ctypes.CDLL] = {}
_descriptors: list[int] = []  # memfds stay open while their mapping lives (the whole process)
_lock = threading.Lock()


def open_verified(data: bytes, label: str, is_mapped: Callable[[ctypes.CDLL], bool]) -> ctypes.CDLL:
    """A handle for exactly `data` (already verified by the caller).

    `is_mapped(handle)` says whether the handle maps `data` (the caller compares its
    manifest symbol): glibc hands back an old handle for a path it has seen, and a
    memfd's path `/proc/self/fd/N` repeats once a program closes descriptor N. A
    stale handle is never used: the bytes then go to a uniquely named private copy."""
    key = hashlib.sha256(data).hexdigest()
    with _lock:
        handle = _handles.get(key)
        if handle is None:
            handle = _open_memfd(data, key)
            if handle is None or not is_mapped(handle):
                handle = _open_private_copy(data, label)
                if not is_mapped(handle):
                    raise LibraryError(f"{label}: the dynamic loader did not map the verified bytes")
            _handles[key] = handle
        return handle


def _open_memfd(data: bytes, key: str) -> ctypes.CDLL | None:
    """The sealed in-memory copy, or None where memfds cannot be created or executed."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = os.memfd_create(f"scanaot-{key[:16]}", os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    except OSError:
        return None
    try:
        _write_all(fd, data)
        _seal(fd)
        handle = ctypes.CDLL(f"/proc/self/fd/{fd}")
    except OSError:
        os.close(fd)
        return None  # e.g. vm.memfd_noexec: the private copy is tried next
    _descriptors.append(fd)
    return handle


def _seal(fd: int) -> None:
    """No write, resize or unseal from now on (best effort: the memfd is private anyway)."""
    import fcntl
    if not hasattr(fcntl, "F_ADD_SEALS"):
        return
    seals = 0
    for name in _SEALS:
        seals |= getattr(fcntl, name, 0)
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _open_private_copy(data: bytes, label: str) -> ctypes.CDLL:
    """A copy in a new private (0700) folder (a name the loader has never seen), the
    folder removed as soon as the copy is mapped: nothing is left behind, also by
    forked workers that exit without running atexit handlers."""
    try:
        folder = tempfile.mkdtemp(prefix="scanaot-load-", dir=os.environ.get("SCANAOT_LOAD_DIR"))
    except OSError as err:
        raise LibraryError(f"{label}: no private folder to map it from ({err}); set SCANAOT_LOAD_DIR "
                           "to a writable folder on an exec-mounted file system") from None
    path = os.path.join(folder, "library.so")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o500)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        return ctypes.CDLL(path)
    except OSError as err:
        raise LibraryError(f"{label}: the dynamic loader refused it: {err}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the mapping stays
