"""The safetensors format (numpy + the standard library only): the format weights are
shipped in, so a library's shared values and a `State` can be read and written by
users' own tools (`safetensors`, `huggingface_hub`, ...) without scanaot.

Layout: an 8-byte little-endian header length N, N bytes of JSON
`{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}`,
then the tensors' raw little-endian bytes (offsets relative to the end of the header).
Everything is validated before an array is made: a damaged or hostile file gives a
`SafetensorsError` naming the file and the entry, never a wrong array.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

DTYPES = {"BOOL": "bool", "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
          "F32": "float32", "F64": "float64"}
CODES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100 << 20  # the reference implementation's limit
ALIGNMENT = 8  # the header is padded with spaces so the data starts 8-byte aligned


class SafetensorsError(ValueError):
    """A file or buffer that is not valid safetensors (or holds a dtype scanaot has not)."""


def dumps(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors bytes of `tensors` (in the mapping's order; values as C-contiguous
    little-endian data)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name, value in tensors.items():
        array = np.asarray(value)
        code = CODES.get(str(array.dtype))
        if not isinstance(name, str) or name == "__metadata__" or not name:
            raise SafetensorsError(f"tensor name {name!r}: expected a non-empty string other than '__metadata__'")
        if code is None:
            raise SafetensorsError(f"tensor {name!r}: dtype {array.dtype} has no safetensors code here; "
                                   f"expected one of {', '.join(CODES)}")
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % ALIGNMENT)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save(path: str | Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write `tensors` to `path` (through a temporary file, so a reader never sees half of it)."""
    path = Path(path)
    data = dumps(tensors, metadata)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def loads(data: bytes, label: str = "<safetensors bytes>") -> dict[str, np.ndarray]:
    """name -> array (read-only views of `data`, in native byte order) of a safetensors buffer."""
    header, start = read_header(data, label)
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = _entry(entry, name, label, len(data) - start)
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"), count=math.prod(shape),
                              offset=start + begin).reshape(shape)
        out[name] = array if array.dtype.isnative else array.astype(dtype)
    return out


def load(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array of a safetensors file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SafetensorsError(f"{path}: cannot read: {err.strerror}") from None
    return loads(data, str(path))


def read_header(data: bytes, label: str) -> tuple[dict, int]:
    """The header (validated as JSON object) and where the data starts."""
    if len(data) < 8:
        raise SafetensorsError(f"{label}: not safetensors (shorter than its 8-byte header length)")
    size, = struct.unpack_from("<Q", data, 0)
    if size > MAX_HEADER or 8 + size > len(data):
        raise SafetensorsError(f"{label}: not safetensors or truncated (header length {size}, "
                               f"file {len(data)} bytes)")
    try:
        header = json.loads(bytes(data[8:8 + size]), object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as err:
        raise SafetensorsError(f"{label}: corrupted safetensors header (not JSON: {str(err)[:80]})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{label}: corrupted safetensors header (not a JSON object)")
    _check_layout(header, label, len(data) - 8 - size)
    return header, 8 + size


def _entry(entry: object, name: str, label: str, available: int) -> tuple[str, list[int], list[int]]:
    """One tensor's (numpy dtype, shape, offsets), each checked against the others."""
    where = f"{label}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"{where}: expected an object with dtype, shape and data_offsets")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if code not in DTYPES:
        raise SafetensorsError(f"{where}: dtype {code!r} is not supported; expected one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or len(shape) > 32:
        raise SafetensorsError(f"{where}: shape must be a list of at most 32 sizes >= 0, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= available):
        raise SafetensorsError(f"{where}: data_offsets {offsets!r} do not lie within the {available} data bytes")
    nbytes = math.prod(shape) * np.dtype(DTYPES[code]).itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise SafetensorsError(f"{where}: data_offsets {offsets} hold {offsets[1] - offsets[0]} bytes, but "
                               f"{code}{shape} needs {nbytes}")
    return DTYPES[code], shape, offsets


def _check_layout(header: dict, label: str, available: int) -> None:
    """Every entry valid; the tensors cover the data exactly, without overlap (as the
    reference implementation requires)."""
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{label}: __metadata__ must map strings to strings")
    spans = sorted(_entry(e, n, label, available)[2] for n, e in header.items() if n != "__metadata__")
    end = 0
    for begin, stop in spans:
        if begin != end:
            raise SafetensorsError(f"{label}: tensor data overlaps or leaves a gap at byte {min(begin, end)}")
        end = stop
    if end != available:
        raise SafetensorsError(f"{label}: {available - end} bytes after the last tensor's data")


def _unique_keys(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result
