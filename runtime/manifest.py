"""The manifest embedded in every library, and the digest that seals the file.

Format (JSON, section `.scanaot_manifest`, also exported as `scanaot_manifest`):

    {"format": "scanaot-library", "abi_version": 1,
     "target": {"name": "cpu", "triple": ..., "cpu": ...},
     "compiler": {"scanaot": ..., "llvm": ...},
     "functions": [{"name", "symbol", "graph_hash", "workspace_bytes",
                    "args": [{"name", "dtype", "ndim", "shape": [expr...]}],
                    "outputs": [{"name", "dtype", "ndim", "shape": [expr...], "bounded": [bool...]}],
                    "constraints": [{"rel": "eq"|"ge", "args": [expr, expr], "why"}],
                    "dims_length",
                    "checks": [str...]}]}

`checks` (optional; absent in older libraries): one description per run-time check
the kernel makes (the op, the scan step, the variables by their graph names); a
failed check's status carries 1 + its index in bits 16-30 (runtime/status.py).

runtime/schema.py states every field, its type and range, and which are optional;
`read` validates each manifest against it.

The digest section holds the SHA-256 (hex) of the whole file with the digest
itself replaced by zeros: any flipped or missing byte is detected.
"""
from __future__ import annotations

import hashlib
import json

from .elf import DIGEST_SECTION, MANIFEST_SECTION, LibraryError, sections
from .schema import short_repr, validate

ABI_VERSION = 1
FORMAT = "scanaot-library"
DIGEST_LENGTH = 64


def manifest_symbol(library: str | None) -> str:
    """The exported symbol holding a library's manifest (before the library's name was
    recorded: `scanaot_manifest`)."""
    return f"scanaot_manifest_{library}" if library else "scanaot_manifest"


def file_digest(data: bytes, digest_offset: int) -> str:
    blank = data[:digest_offset] + b"0" * DIGEST_LENGTH + data[digest_offset + DIGEST_LENGTH:]
    return hashlib.sha256(blank).hexdigest()


def seal(data: bytes) -> bytes:
    """Write the digest into a freshly linked library's digest section."""
    offset, size = sections(data)[DIGEST_SECTION]
    assert size >= DIGEST_LENGTH
    digest = file_digest(data, offset).encode()
    return data[:offset] + digest + data[offset + DIGEST_LENGTH:]


def read(data: bytes, path: str = "library") -> dict:
    """The manifest of a library's bytes, after checking the digest, the ABI and the
    whole manifest against its schema (runtime/schema.py): what this returns may be
    indexed without further checks."""
    table = sections(data, path)
    if MANIFEST_SECTION not in table or DIGEST_SECTION not in table:
        raise LibraryError(f"{path}: not a scanaot library (no {MANIFEST_SECTION} section)")
    offset, size = table[DIGEST_SECTION]
    if size < DIGEST_LENGTH or offset + DIGEST_LENGTH > len(data):
        raise LibraryError(f"{path}: truncated or corrupted (digest section)")
    stored = data[offset:offset + DIGEST_LENGTH].decode("ascii", "replace")
    if stored != file_digest(data, offset):
        raise LibraryError(f"{path}: corrupted: its SHA-256 digest does not match its contents")
    m_offset, m_size = table[MANIFEST_SECTION]
    raw = data[m_offset:m_offset + m_size].rstrip(b"\0")
    manifest = _parse(raw, path)
    if manifest.get("format") != FORMAT:
        raise LibraryError(f"{path}: not a scanaot library (format {short_repr(manifest.get('format'))})")
    if manifest.get("abi_version") != ABI_VERSION:
        raise LibraryError(f"{path}: built for scanaot ABI version {short_repr(manifest.get('abi_version'))}; "
                           f"this runtime reads version {ABI_VERSION}: rebuild it with this scanaot")
    validate(manifest, path)
    return manifest


def _parse(raw: bytes, path: str) -> dict:
    """The manifest's JSON object; refuses NaN/Infinity and repeated keys, which
    would otherwise hide what the manifest means."""
    try:
        manifest = json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:
        raise LibraryError(f"{path}: corrupted manifest (not JSON: {str(err)[:80]})") from None
    if not isinstance(manifest, dict):
        raise LibraryError(f"{path}: corrupted manifest (not a JSON object)")
    return manifest


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result
