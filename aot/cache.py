"""The compile cache: built libraries by key, verified on every hit.

An entry is `{key}.so` (the sealed library) and `{key}.json` (its IR stages, as
base64 MLIR bytecode printed when read: packaging/stages.py, and manifest). A hit
is served only when the library's digest checks out and the
manifest sealed inside it equals the one the caller computed for its graph (the
graph's structural fingerprint or IR hash, the arguments, the target and CPU
variants, the toolchain): a
library copied over another entry, a damaged file or a damaged record is
removed and rebuilt, never served. The folder is private (0700); its size is
capped (`SCANAOT_CACHE_MAX_MB`, default 2048), least recently used entries
going first.

Where: `$SCANAOT_CACHE`, else `$XDG_CACHE_HOME/scanaot`, else `~/.cache/scanaot`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .runtime import manifest as manifest_mod
from .runtime.elf import LibraryError

DEFAULT_LIMIT_MB = 2048
ENTRY_SUFFIXES = (".so", ".json")


class CacheError(OSError):
    """The cache folder cannot be used safely (not ours, or not a folder)."""


def cache_dir() -> Path:
    """The cache folder, created private (0700) whatever the umask, and marked as the
    cache's own (CACHEDIR.TAG) before scanaot changes or removes anything in it."""
    configured = os.environ.get("SCANAOT_CACHE")
    try:
        if configured:
            root = Path(configured)
        else:
            base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            root = Path(base) / "scanaot"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _claim(root)
    except (OSError, RuntimeError) as err:  # RuntimeError: no home folder
        if isinstance(err, CacheError):
            raise
        raise CacheError(f"no usable compile cache ({err}); set SCANAOT_CACHE to a writable folder") from None
    return root


TAG = "CACHEDIR.TAG"
_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
             "# This folder is scanaot's compile cache (https://bford.info/cachedir/).\n")
# what scanaot writes here: entries, helper objects and their digests, temporary files and folders
_OURS = re.compile(r"[0-9a-f]{32}\.(so|json)|[A-Za-z0-9_]+-[0-9a-f]{16}\.o(\.sha256)?|"
                   r"[A-Za-z0-9_]+-so-[0-9a-f]{16}\.o(\.sha256)?|peers-[0-9a-f]{16}\.so|"
                   r"\..+\.[A-Za-z0-9_]{8}|scanaot-[A-Za-z0-9_]+|CACHEDIR\.TAG")


def _claim(root: Path) -> None:
    """Use `root` only if it is ours: a tagged folder, or one holding nothing but what
    scanaot writes (then tag it). A folder of other files is refused, never emptied,
    re-permissioned or pruned."""
    info = root.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise CacheError(f"compile cache {root} is not a folder")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError(f"compile cache {root} belongs to another user (uid {info.st_uid}); "
                         "set SCANAOT_CACHE to a folder of your own")
    tag = root / TAG
    if not tag.is_file():
        foreign = [p.name for p in root.iterdir() if not _OURS.fullmatch(p.name)]
        if foreign:
            raise CacheError(f"SCANAOT_CACHE={root} holds files scanaot did not write ({foreign[0]}, ...); "
                             "point it at a new or empty folder")
        write_atomic(tag, _TAG_TEXT.encode(), mode=0o600)
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(root, 0o700)


def limit_bytes() -> int:
    raw = os.environ.get("SCANAOT_CACHE_MAX_MB", str(DEFAULT_LIMIT_MB))
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not 0 <= megabytes < 2**40:  # also NaN
        raise ValueError(f"SCANAOT_CACHE_MAX_MB must be a number of megabytes (0 or more), got {raw!r}")
    return int(megabytes * 2**20)


def lookup(key: str, manifest: dict, read_stages: Callable[[object], Any],
           emitted: tuple[str, ...] = ()) -> tuple[bytes, Any, dict] | None:
    """(library bytes, IR stages, sealed manifest) of a valid entry for `key` built from
    `manifest`, else None. `emitted`: fields of each function's entry that emission
    derives, absent from `manifest` (the lookup ran before emitting): the entry's own
    are taken. `read_stages` makes the stages of the stored record (a ValueError: the
    record does not hold them).

    An entry that fails any check is removed, so the caller rebuilds it."""
    root = cache_dir()
    library, record = root / f"{key}.so", root / f"{key}.json"
    if not library.exists() and not record.exists():
        return None
    try:
        data = library.read_bytes()
        sealed = manifest_mod.read(data, str(library))
        stored = json.loads(record.read_text())
        if not isinstance(stored, dict):
            raise ValueError("record is not an object")
        stages = read_stages(stored.get("stages"))
        if not _same(sealed, stored.get("manifest")) or not _same(_without(sealed, emitted), manifest):
            raise ValueError("entry built from another graph")
    except (OSError, ValueError, LibraryError):
        _remove(key)
        return None
    with contextlib.suppress(OSError):
        os.utime(library)  # recently used: pruned last
    return data, stages, sealed


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _without(manifest: dict, fields: tuple[str, ...]) -> object:
    """The manifest less `fields` in each function's entry (a malformed one is returned as is)."""
    functions = manifest.get("functions") if isinstance(manifest, dict) else None
    if not fields or not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
        return manifest
    return dict(manifest, functions=[{k: v for k, v in f.items() if k not in fields} for f in functions])


def store(key: str, data: bytes, stages: dict, manifest: dict) -> Path:
    """Write an entry atomically (the record first: a library is never without one), then prune."""
    root = cache_dir()
    write_atomic(root / f"{key}.json", json.dumps({"stages": stages, "manifest": manifest}).encode())
    path = root / f"{key}.so"
    write_atomic(path, data, mode=0o500)
    prune(keep=key)
    return path


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Readers see the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cached_object(name: str, content_key: bytes, build: Callable[[Path], None]) -> Path:
    """A helper object file (`name` + a hash of `content_key`) built once into the cache.

    Its SHA-256 is kept beside it and checked on every use: a damaged object would
    otherwise be linked into every library built after it."""
    root = cache_dir()
    stem = f"{name}-{hashlib.sha256(content_key).hexdigest()[:16]}"
    obj, digest_file = root / f"{stem}.o", root / f"{stem}.o.sha256"
    with contextlib.suppress(OSError):
        if hashlib.sha256(obj.read_bytes()).hexdigest() == digest_file.read_text().strip():
            return obj
    with tempfile.TemporaryDirectory(prefix="scanaot-", dir=root) as tmp:
        built = Path(tmp) / "out.o"
        build(built)
        data = built.read_bytes()
    write_atomic(digest_file, hashlib.sha256(data).hexdigest().encode())
    write_atomic(obj, data)
    return obj


def _entries(root: Path) -> dict[str, list[Path]]:
    entries: dict[str, list[Path]] = {}
    for path in root.iterdir():
        if path.suffix in ENTRY_SUFFIXES and not path.name.startswith(".") and path.is_file():
            entries.setdefault(path.stem, []).append(path)
    return entries


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def _last_used(paths: list[Path]) -> float:
    times = []
    for p in paths:
        with contextlib.suppress(OSError):
            times.append(p.stat().st_mtime)
    return max(times, default=0.0)


def _remove(key: str) -> None:
    root = cache_dir()
    for suffix in ENTRY_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            (root / f"{key}{suffix}").unlink()


def prune(keep: str | None = None) -> int:
    """Remove least recently used entries until the cache fits its limit; returns how many."""
    root, limit = cache_dir(), limit_bytes()
    entries = _entries(root)
    total = sum(_size(p) for p in entries.values())
    removed = 0
    for key in sorted(entries, key=lambda k: _last_used(entries[k])):
        if total <= limit:
            break
        if key == keep:
            continue
        total -= _size(entries[key])
        _remove(key)
        removed += 1
    return removed


def info() -> dict:
    """What `scanaot cache info` prints: where the cache is, its entries and size, its limit."""
    root = cache_dir()
    entries = _entries(root)
    everything = [p for p in root.rglob("*") if p.is_file()]
    return {"path": str(root), "entries": len(entries), "bytes": _size(everything),
            "limit_bytes": limit_bytes()}


def clear() -> int:
    """Empty the cache: libraries, records and helper objects (what scanaot wrote, and
    temporary files and folders left by builds that died a day ago or more; a build
    running now keeps its own). Returns the entries removed."""
    root = cache_dir()
    count = len(_entries(root))
    stale = time.time() - 86400
    for path in root.iterdir():
        if path.name == TAG or not _OURS.fullmatch(path.name):
            continue
        temporary = path.name.startswith((".", "scanaot-"))  # a build or write in progress
        if temporary:
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < stale:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return count
