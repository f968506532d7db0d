"""Signed libraries: Ed25519 against RFC 8032's vectors, and loads that accept only
libraries signed by a trusted key (runtime/signing.py, docs/deploy.md)."""
import json
import shutil

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.runtime import signing
from scanaot.tools import cli

# RFC 8032, section 7.1: TEST 1, 2, 3 (secret key, public key, message, signature)
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595b"
     "be24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb430"
     "2aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716e"
     "d28dc027beceea1ec40a"),
]


@pytest.mark.parametrize("secret, public, message, signature", RFC8032)
def test_rfc8032_vectors(secret, public, message, signature):
    seed, msg = bytes.fromhex(secret), bytes.fromhex(message)
    assert signing.public_key(seed).hex() == public
    assert signing.ed25519_sign(seed, msg).hex() == signature
    assert signing.ed25519_verify(bytes.fromhex(public), msg, bytes.fromhex(signature))


@pytest.mark.parametrize("secret, public, message, signature", RFC8032)
def test_tampered_signatures_fail(secret, public, message, signature):
    key, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytearray.fromhex(signature)
    assert not signing.ed25519_verify(key, msg + b"x", bytes(sig))
    for i in (0, 31, 32, 63):
        bad = bytearray(sig)
        bad[i] ^= 1
        assert not signing.ed25519_verify(key, msg, bytes(bad))
    assert not signing.ed25519_verify(key, msg, bytes(sig[:63]))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    x = at.fvector("x")
    art = scanaot.compile([x], x * 3, name="triple", out_dir=tmp_path_factory.mktemp("signed"))
    return art.library


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "key"
    assert cli.main(["keygen", str(path)]) == 0
    return path, (tmp_path / "key.pub").read_text().strip()


def test_signed_library_loads_with_its_key(tmp_path, library, key, capsys):
    copy = tmp_path / "libtriple.so"
    shutil.copy(library, copy)
    assert cli.main(["sign", str(copy), "--key", str(key[0])]) == 0
    lib = rt.load(copy, trusted_keys=[key[1]])
    np.testing.assert_array_equal(lib.triple(np.ones(2, "float32")), [3, 3])
    record = json.loads((tmp_path / "libtriple.so.sig").read_text())
    assert rt.load_bytes(copy.read_bytes(), "mem", trusted_keys=[key[1].upper()], signature=record)


def test_refusals(tmp_path, library, key):
    copy = tmp_path / "libtriple.so"
    shutil.copy(library, copy)
    with pytest.raises(rt.LibraryError, match="no signature"):
        rt.load(copy, trusted_keys=[key[1]])
    cli.main(["sign", str(copy), "--key", str(key[0])])
    with pytest.raises(rt.LibraryError, match="not a trusted key"):
        rt.load(copy, trusted_keys=["ab" * 32])
    with pytest.raises(rt.LibraryError, match="trusted_keys is empty"):
        rt.load(copy, trusted_keys=[])
    with pytest.raises(TypeError, match="trusted_keys"):
        rt.load(copy, trusted_keys=["not hex"])
    x = at.fvector("x")  # another valid library put where the signed one was
    other = scanaot.compile([x], x * 4, name="triple", out_dir=tmp_path / "other").library
    shutil.copy(other, copy)
    with pytest.raises(rt.LibraryError, match="does not match"):
        rt.load(copy, trusted_keys=[key[1]])
    (tmp_path / "libtriple.so.sig").write_text("{")
    with pytest.raises(rt.LibraryError, match="not a signature record"):
        rt.load(copy, trusted_keys=[key[1]])
    with pytest.raises(rt.LibraryError, match="not a scanaot signature"):
        rt.load(copy, trusted_keys=[key[1]], signature={"format": 1})


def test_keygen_never_overwrites_and_sign_checks_its_inputs(tmp_path, library, key, capsys):
    assert cli.main(["keygen", str(key[0])]) == 2
    assert key[0].stat().st_mode & 0o777 == 0o600
    bad = tmp_path / "bad.key"
    bad.write_text("xyz")
    assert cli.main(["sign", str(library), "--key", str(bad)]) == 2
    assert cli.main(["sign", str(bad), "--key", str(key[0])]) == 1
    assert "not a key file" in capsys.readouterr().err


def test_malformed_signature_records(tmp_path, library, key):
    copy = tmp_path / "libtriple.so"
    shutil.copy(library, copy)
    (tmp_path / "libtriple.so.sig").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(rt.LibraryError, match="not a signature record"):
        rt.load(copy, trusted_keys=[key[1]])
    cli.main(["sign", str(copy), "--key", str(key[0])])
    record = json.loads((tmp_path / "libtriple.so.sig").read_text())
    with pytest.raises(rt.LibraryError, match="version 99"):
        rt.load(copy, trusted_keys=[key[1]], signature={**record, "version": 99})
    with pytest.raises(TypeError, match="needs trusted_keys"):
        rt.load(copy, signature=record)
