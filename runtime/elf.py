"""Just enough ELF64 reading to find a library's manifest before loading it.

`load` reads the manifest and checks the digest from the file's bytes, so a
truncated, corrupted or foreign file is refused before `dlopen` runs any of it.
"""
from __future__ import annotations

import struct

MANIFEST_SECTION = ".scanaot_manifest"
DIGEST_SECTION = ".scanaot_digest"
STATE_SECTION = ".scanaot_state"  # the shared variables' values shipped in the library (safetensors)


class LibraryError(ValueError):
    """A file the runtime cannot or will not load."""


def sections(data: bytes, path: str = "library") -> dict[str, tuple[int, int]]:
    """Section name -> (file offset, size), validated against the file's length."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise LibraryError(f"{path}: not a shared library (no ELF header)")
    if data[4] != 2 or data[5] != 1:
        raise LibraryError(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shentsize != 64 or shoff + shnum * 64 > len(data) or shstrndx >= shnum:
        raise LibraryError(f"{path}: truncated or corrupted (bad section table)")
    headers = []
    for i in range(shnum):
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * 64)
        headers.append((name, offset, size))
    str_offset, str_size = headers[shstrndx][1], headers[shstrndx][2]
    if str_offset + str_size > len(data):
        raise LibraryError(f"{path}: truncated or corrupted (bad section names)")
    table = data[str_offset:str_offset + str_size]
    result = {}
    for name, offset, size in headers:
        end = table.find(b"\0", name)
        label = table[name:end].decode("ascii", "replace")
        result[label] = (offset, size)
    return result
