"""Master keys and the AES-256-GCM box: formats, key-file safety, wrong keys."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from kbridge.connections import (
    ConnectionStoreError,
    SecretBox,
    generate_master_key,
    load_or_create_key_file,
    parse_master_key,
)

pytestmark = pytest.mark.unit


def test_master_key_accepts_hex_and_both_base64_alphabets() -> None:
    key = bytes(range(32))
    assert parse_master_key(key.hex()) == key
    assert parse_master_key(base64.b64encode(key).decode()) == key
    assert parse_master_key(base64.urlsafe_b64encode(key).decode().rstrip("=")) == key
    assert parse_master_key(f"  {key.hex().upper()}\n") == key


@pytest.mark.parametrize("text", ["", "abc", "00" * 31, base64.b64encode(b"x" * 16).decode()])
def test_master_key_of_the_wrong_size_is_refused_with_the_format(text: str) -> None:
    with pytest.raises(ConnectionStoreError, match="64 hex digits or as base64"):
        parse_master_key(text)


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.key"
    first = load_or_create_key_file(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp file left


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_or_create_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConnectionStoreError, match=r"readable by other users \(mode 0644\)"):
        load_or_create_key_file(path)


def test_key_file_with_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("not a key\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConnectionStoreError, match="does not hold a 32-byte key"):
        load_or_create_key_file(path)


def test_box_round_trips_with_a_fresh_nonce_each_time() -> None:
    box = SecretBox(generate_master_key())
    a = box.seal(b"secret", aad=b"shop")
    b = box.seal(b"secret", aad=b"shop")
    assert a != b  # random nonce
    assert b"secret" not in a
    assert box.open(a, aad=b"shop", what="x") == b"secret"


def test_wrong_key_or_other_connection_name_does_not_decrypt() -> None:
    sealed = SecretBox(generate_master_key()).seal(b"secret", aad=b"shop")
    with pytest.raises(ConnectionStoreError, match="wrong KBRIDGE_MASTER_KEY"):
        SecretBox(generate_master_key()).open(sealed, aad=b"shop", what="the key of 'shop'")
    box = SecretBox(bytes(32))
    moved = box.seal(b"secret", aad=b"shop")
    with pytest.raises(ConnectionStoreError, match="cannot decrypt"):
        box.open(moved, aad=b"other", what="x")


def test_box_never_shows_its_key() -> None:
    assert repr(SecretBox(bytes(32))) == "SecretBox(key=***)"
    with pytest.raises(ConnectionStoreError, match="must be 32 bytes"):
        SecretBox(b"short")
