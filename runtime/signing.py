"""Signed libraries: a service loads only libraries signed by a key it trusts.

The digest inside a library guards against damage, not against someone who can
rewrite the file (they can recompute it). A signature can't be recomputed
without the private key: the build machine signs the library's SHA-256 with
Ed25519 (`scanaot sign`), the service lists the public keys it trusts
(`rt.load(path, trusted_keys=[...])`) and the runtime refuses any library
without a valid signature by one of them.

The signature is a detached JSON file `LIB.so.sig`:

    {"format": "scanaot-signature", "version": 1, "algorithm": "ed25519",
     "public_key": hex, "sha256": hex of the library, "signature": hex}

Ed25519 (RFC 8032) is implemented here in plain Python so the runtime keeps
its dependencies to numpy and the standard library; it is checked against the
RFC's test vectors. Verifying costs a few milliseconds, once per load. Signing
is not constant-time: sign on a build machine, not where others can time it.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

from .elf import LibraryError

FORMAT = "scanaot-signature"
_DOMAIN = b"scanaot-library-signature-v1\n"

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_BASE = (_GX, _GY, 1, _GX * _GY % _P)  # extended coordinates (X, Y, Z, T)


def _add(p: tuple, q: tuple) -> tuple:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: tuple) -> tuple:
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point, scalar = _add(point, point), scalar >> 1
    return result


def _equal(p: tuple, q: tuple) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _compress(point: tuple) -> bytes:
    inverse = pow(point[2], _P - 2, _P)
    x, y = point[0] * inverse % _P, point[1] * inverse % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _decompress(data: bytes) -> tuple | None:
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _hash_int(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % _L


def _expand(seed: bytes) -> tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    return scalar, digest[32:]


def public_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte private seed."""
    return _compress(_mul(_expand(seed)[0], _BASE))


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """RFC 8032 Ed25519 signature (64 bytes)."""
    scalar, prefix = _expand(seed)
    key = _compress(_mul(scalar, _BASE))
    r = _hash_int(prefix, message)
    big_r = _compress(_mul(r, _BASE))
    s = (r + _hash_int(big_r, key, message) * scalar) % _L
    return big_r + s.to_bytes(32, "little")


def ed25519_verify(key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `key`'s RFC 8032 Ed25519 signature of `message`."""
    if len(key) != 32 or len(signature) != 64:
        return False
    point, big_r = _decompress(key), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if point is None or big_r is None or s >= _L:
        return False
    h = _hash_int(signature[:32], key, message)
    return _equal(_mul(s, _BASE), _add(big_r, _mul(h, point)))


def generate_seed() -> bytes:
    """A new private key (32 random bytes from the OS)."""
    return os.urandom(32)


def sign_library(data: bytes, seed: bytes) -> dict:
    """The signature record of a library's bytes."""
    digest = hashlib.sha256(data).digest()
    return {"format": FORMAT, "version": 1, "algorithm": "ed25519", "public_key": public_key(seed).hex(),
            "sha256": digest.hex(), "signature": ed25519_sign(seed, _DOMAIN + digest).hex()}


def check_signature(data: bytes, record: object, trusted_keys: Sequence[str], label: str) -> None:
    """LibraryError unless `record` is a valid signature of `data` by a trusted key."""
    trusted = {_key_hex(k, label) for k in trusted_keys}
    if not trusted:
        raise LibraryError(f"{label}: trusted_keys is empty: no signature can be accepted")
    fields = ("format", "algorithm", "public_key", "sha256", "signature")
    if not isinstance(record, dict) or not all(isinstance(record.get(f), str) for f in fields):
        raise LibraryError(f"{label}: the signature is not a scanaot signature record")
    if record["format"] != FORMAT or record["algorithm"] != "ed25519" or record.get("version") != 1:
        raise LibraryError(f"{label}: unsupported signature {record['format']} version {record.get('version')!r}"
                           f" ({record['algorithm']}); this runtime reads {FORMAT} version 1 (ed25519)")
    key = record["public_key"].lower()
    if key not in trusted:
        raise LibraryError(f"{label}: signed by {key[:16]}..., which is not a trusted key")
    digest = hashlib.sha256(data).digest()
    try:
        ok = record["sha256"].lower() == digest.hex() and ed25519_verify(
            bytes.fromhex(key), _DOMAIN + digest, bytes.fromhex(record["signature"]))
    except ValueError:
        ok = False
    if not ok:
        raise LibraryError(f"{label}: the signature does not match the library's bytes")


def _key_hex(key: object, label: str) -> str:
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdefABCDEF" for c in key):
        raise TypeError(f"trusted_keys: expected 64-character hex Ed25519 public keys, got {key!r}")
    return key.lower()


def read_signature(path: str, label: str) -> object:
    """The JSON record of a detached signature file (`LIB.so.sig`)."""
    try:
        with open(path, "rb") as f:
            text = f.read(65536)
    except OSError as err:
        raise LibraryError(f"{label}: no signature at {path} ({err.strerror}); sign it with "
                           "`scanaot sign`") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # a signature record is small and flat
        raise LibraryError(f"{label}: the signature file {path} is not a signature record") from None
