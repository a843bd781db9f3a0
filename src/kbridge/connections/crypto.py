"""Secrets at rest: AES-256-GCM under one master key.

The master key is 32 random bytes. It comes from ``KBRIDGE_MASTER_KEY`` (the
CLI reads it and hands it over: 64 hex digits, or the standard/URL-safe
base64 of 32 bytes) or else from a key file beside the store, created once
with mode 0600. A key file anyone else can read is refused: it would make
the encryption decorative.

Every secret gets its own random 96-bit nonce, and the connection's identity
and routing (id, name, kind, base URL, account, OAuth endpoints) are the
associated data, so a ciphertext copied onto another connection's row, or a
row pointed at another host, does not decrypt. A wrong master key is
reported as such, never as garbage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kbridge.connections.errors import ConnectionStoreError

__all__ = [
    "KEY_BYTES",
    "MASTER_KEY_ENV",
    "NONCE_BYTES",
    "SecretBox",
    "generate_master_key",
    "load_or_create_key_file",
    "parse_master_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12
#: the environment variable the CLI reads (the library never reads the environment)
MASTER_KEY_ENV = "KBRIDGE_MASTER_KEY"
_FORMAT = (
    f"{MASTER_KEY_ENV} must be 32 bytes written as 64 hex digits or as base64 "
    "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
)


def generate_master_key() -> bytes:
    """32 fresh random bytes."""
    return secrets.token_bytes(KEY_BYTES)


def parse_master_key(text: str) -> bytes:
    """The 32 key bytes from hex (64 digits) or base64 (standard or URL-safe) text."""
    value = text.strip()
    if len(value) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    # URL-safe base64 differs only in two characters; normalise, then decode strictly.
    normalised = value.replace("-", "+").replace("_", "/")
    normalised += "=" * (-len(normalised) % 4)
    try:
        raw = base64.b64decode(normalised.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) == KEY_BYTES:
        return raw
    raise ConnectionStoreError(f"{_FORMAT}; the value given is not")


def load_or_create_key_file(path: Path) -> bytes:
    """The master key from ``path``, creating it (mode 0600, atomically) if it is missing.

    Creation writes a private temporary file and hard-links it into place, so
    two processes starting at once agree on one key and nobody ever reads a
    half-written file.
    """
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(generate_master_key().hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConnectionStoreError(
            f"the master key file {path} is readable by other users "
            f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and try again"
        )
    text = path.read_text(encoding="ascii", errors="replace")
    try:
        return parse_master_key(text)
    except ConnectionStoreError:
        raise ConnectionStoreError(
            f"the master key file {path} does not hold a 32-byte key (64 hex digits)"
        ) from None


class SecretBox:
    """AES-256-GCM with a fresh nonce per message; ``nonce || ciphertext`` on the way out."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConnectionStoreError(f"the master key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``aad``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, *, aad: bytes, what: str) -> bytes:
        """Decrypt ``blob``; a wrong key or tampered data is a :class:`ConnectionStoreError`."""
        if len(blob) <= NONCE_BYTES:
            raise ConnectionStoreError(f"cannot decrypt {what}: the stored value is truncated")
        plain = self.open_or_none(blob, aad=aad)
        if plain is None:
            raise ConnectionStoreError(
                f"cannot decrypt {what}: wrong {MASTER_KEY_ENV}? (or the key file beside the "
                "store was replaced, or the data was altered)"
            )
        return plain

    def open_or_none(self, blob: bytes, *, aad: bytes) -> bytes | None:
        """Decrypt ``blob``, or ``None`` if it does not verify under this key and ``aad``."""
        if len(blob) <= NONCE_BYTES:
            return None
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            return None

    def __repr__(self) -> str:
        return "SecretBox(key=***)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SecretBox holds a key and cannot be pickled")
