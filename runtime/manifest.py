"""The manifest embedded in every library, and the digest that seals the file.

Format (JSON, section `.scanaot_manifest`, also exported as `scanaot_manifest`):

    {"format": "scanaot-library", "abi_version": 1,
     "target": {"name": "cpu", "triple": ..., "cpu": ...},
     "compiler": {"scanaot": ..., "llvm": ...},
     "functions": [{"name", "symbol", "graph_hash", "workspace_bytes",
                    "args": [{"name", "dtype", "ndim", "shape": [expr...]}],
                    "outputs": [{"name", "dtype", "ndim", "shape": [expr...], "bounded": [bool...]}],
                    "constraints": [{"rel": "eq"|"ge", "args": [expr, expr], "why"}],
                    "dims_length"}]}

The digest section holds the SHA-256 (hex) of the whole file with the digest
itself replaced by zeros: any flipped or missing byte is detected.
"""
from __future__ import annotations

import hashlib
import json

from .elf import DIGEST_SECTION, MANIFEST_SECTION, LibraryError, sections

ABI_VERSION = 1
FORMAT = "scanaot-library"
DIGEST_LENGTH = 64


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
    """The manifest of a library's bytes, after checking the digest and the ABI."""
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
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise LibraryError(f"{path}: corrupted manifest (not JSON)") from None
    if manifest.get("format") != FORMAT:
        raise LibraryError(f"{path}: not a scanaot library (format {manifest.get('format')!r})")
    if manifest.get("abi_version") != ABI_VERSION:
        raise LibraryError(f"{path}: built for scanaot ABI version {manifest.get('abi_version')}; "
                           f"this runtime reads version {ABI_VERSION}: rebuild it with this scanaot")
    return manifest
