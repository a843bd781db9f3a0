"""The connection store: one SQLite file, secrets sealed with AES-256-GCM.

Plain columns hold what is safe to show (account, sender, base URL,
capabilities); each connection's secrets (API key, or OAuth tokens and
client secret) are one sealed JSON blob, so a token rotation rewrites them
in a single transaction: after a crash either the old or the new tokens
are on disk, never neither. Nothing is ever written in clear.

The plain columns that decide where a secret is sent (id, name, kind, base
URL, account id, the OAuth endpoints) are the blob's associated data: anyone
can edit the file, but an edit to them makes the secrets refuse to open
(:class:`ConnectionTamperedError`) instead of following the edit to another
host. Stores written before this binding (the name alone was the associated
data) are re-sealed once, when first opened.

The library takes paths and key bytes; only the CLI decides them from the
environment (``KBRIDGE_HOME``, ``KBRIDGE_MASTER_KEY``).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import secrets
import sqlite3
import stat
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack, cast

from kbridge.connections._store_rows import (
    _AUDIT_SELECT,
    _BINDING_SELECT,
    _COLUMNS,
    _SCHEMA,
    _SELECT,
    _audit_row,
    _binding,
    _record,
    _statements,
    oauth_json,
    secrets_binding,
)
from kbridge.connections.crypto import MASTER_KEY_ENV, SecretBox, load_or_create_key_file
from kbridge.connections.errors import (
    ConnectionNotFoundError,
    ConnectionStoreError,
    ConnectionTamperedError,
)
from kbridge.connections.model import ConnectionFields, ConnectionRecord
from kbridge.core import Clock, SystemClock
from kbridge.core.audit import AuditFields, audit_json
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads
from kbridge.core.keywords import check_keywords

if sys.platform != "win32":
    import fcntl

__all__ = [
    "KEY_FILE_NAME",
    "STORE_FILE_NAME",
    "ConnectionStore",
    "ConnectionStoreProtocol",
    "RefreshLock",
    "RefreshLockingStore",
    "check_name",
    "oauth_json",
    "secrets_binding",
]

STORE_FILE_NAME = "connections.sqlite3"
KEY_FILE_NAME = "master.key"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY_CHECK = b"kbridge-connection-store"
_KEY_CHECK_AAD = b"kbridge:key-check"
_AUDIT_KEY_AAD = b"kbridge:privacy-audit-key"
#: meta row saying every connection's secrets are bound to its routing fields
_BOUND_MARKER = "secrets_aad"
_BOUND_VERSION = b"2"


def check_name(name: str) -> str:
    """``name`` if it is a usable connection name (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME.match(name):
        raise ConnectionStoreError(
            f"invalid connection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class ConnectionStoreProtocol(Protocol):
    """What every connection store does: the CLI's encrypted file, the service's SQL tables.

    Secrets are sealed AES-256-GCM and bound to the routing fields
    (:func:`secrets_binding`); ``load`` hands out a record with the secrets
    checked against it, or :class:`ConnectionTamperedError`.
    """

    def list(self) -> builtins.list[ConnectionRecord]: ...

    def get(self, name: str) -> ConnectionRecord: ...

    def exists(self, name: str) -> bool: ...

    def load(self, name: str) -> tuple[ConnectionRecord, dict[str, Any]]: ...

    def secrets(self, name: str) -> dict[str, Any]: ...

    def upsert(self, name: str, **fields: Unpack[ConnectionFields]) -> ConnectionRecord: ...

    def update_secrets(self, name: str, changes: Mapping[str, Any]) -> None: ...

    def update_capabilities(
        self, name: str, *, capabilities: tuple[str, ...], scopes: tuple[str, ...]
    ) -> ConnectionRecord: ...

    def delete(self, name: str) -> None: ...


class RefreshLock(Protocol):
    """A held refresh lock of one connection; ``release`` lets the next process refresh."""

    def release(self) -> None: ...


class RefreshLockingStore(ConnectionStoreProtocol, Protocol):
    """A connection store that serialises OAuth refreshes of a connection across processes.

    Klaviyo rotates refresh tokens: two processes refreshing with the same one
    leave one holding a spent token. ``try_refresh_lock`` never waits (the
    caller polls without blocking its event loop); ``None`` means another
    holder has it. A holder that dies must not block the connection forever.
    """

    def try_refresh_lock(self, name: str) -> RefreshLock | None: ...

    def refresh_lock_hint(self, name: str) -> str:
        """Where the lock lives, for the line that says one seems stuck."""
        ...


class _FileLock:
    """A held ``flock``: closing the descriptor releases it (so does the holder's death)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class ConnectionStore:
    """Saved connections in ``path`` (a SQLite file); secrets sealed under ``master_key``.

    Without ``master_key`` the key is read from (or created in) ``master.key``
    beside the store, mode 0600. Opening the store with the wrong key fails at
    once with a :class:`ConnectionStoreError`; so does a store file other users
    can read, and a missing key file beside a store that holds anything sealed
    under it (a new key would orphan it: the old one must be restored).
    """

    def __init__(
        self, path: Path, *, master_key: bytes | None = None, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self._clock: Clock = clock or SystemClock()
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700)
        self._check_mode()
        new_key = False
        if master_key is None and self.path.exists() and not self.key_file.exists():
            self._refuse_a_new_key_if_anything_needs_the_old()
            new_key = True
        key = master_key if master_key is not None else load_or_create_key_file(self.key_file)
        self._box = SecretBox(key)
        self._initialise(new_key=new_key)

    @property
    def key_file(self) -> Path:
        """Where the master key lives when it is not given explicitly."""
        return self.path.with_name(KEY_FILE_NAME)

    @property
    def lock_file(self) -> Path:
        """The file whose lock serialises OAuth refreshes across processes."""
        return self.path.with_name(self.path.name + ".lock")

    def try_refresh_lock(self, name: str | None = None) -> RefreshLock | None:
        """Take the store's refresh lock without waiting (``release()`` it when done).

        ``None`` while another process (or another store instance) holds it. The
        lock is ``flock`` on :attr:`lock_file`, so a crashed holder releases it;
        it covers every connection of the file, whichever ``name`` is given.
        """
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        if sys.platform == "win32":  # no flock: refreshes there are serialised per process
            return _FileLock(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return _FileLock(fd)

    def refresh_lock_hint(self, name: str) -> str:
        """The lock file."""
        return f"lock: {self.lock_file}"

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One short-lived connection; writes run inside ``BEGIN IMMEDIATE … COMMIT``."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise ConnectionStoreError(
                f"cannot open the connection store {self.path}: {exc}"
            ) from None
        try:
            conn.execute("PRAGMA secure_delete = ON")
            if write:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise ConnectionStoreError(
                f"the connection store {self.path} is unreadable ({exc}); is it a kbridge store?"
            ) from None
        finally:
            conn.close()

    def _check_mode(self) -> None:
        """Refuse a store file others can read: it holds account details and audit hashes."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConnectionStoreError(
                f"the connection store {self.path} is readable by other users "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {self.path}` and try again"
            )

    def _refuse_a_new_key_if_anything_needs_the_old(self) -> None:
        """The key file is gone: making a new one is fine only if nothing is sealed yet."""
        held: builtins.list[str] = []
        with self._db() as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            for table, noun in (("connections", "connection"), ("privacy_audit", "audit entry")):
                if table in tables:
                    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
                    if n:
                        held.append(f"{n} {noun if n == 1 else _plural(noun)}")
        if held:
            raise ConnectionStoreError(
                f"the master key file {self.key_file} is missing, but the store {self.path} "
                f"holds {' and '.join(held)} sealed under it; restore the file from a backup "
                f"(or set {MASTER_KEY_ENV} to the key): a new key could not open them"
            )

    def _initialise(self, *, new_key: bool = False) -> None:
        fresh = not self.path.exists()
        if fresh:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        with self._db(write=True) as conn:
            for statement in _statements(_SCHEMA):
                conn.execute(statement)
            if new_key:  # an empty store whose key was lost: its checks were sealed under it
                conn.execute("DELETE FROM meta WHERE key IN ('key_check', 'audit_key')")
            row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            if row is None:
                sealed = self._box.seal(_KEY_CHECK, aad=_KEY_CHECK_AAD)
                conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (sealed,))
            else:  # inside the transaction: a wrong key rolls back before any migration
                what = f"the connection store {self.path}"
                self._box.open(bytes(row[0]), aad=_KEY_CHECK_AAD, what=what)
            marker = conn.execute(
                "SELECT value FROM meta WHERE key = ?", (_BOUND_MARKER,)
            ).fetchone()
            if marker is None:
                self._bind_legacy_secrets(conn)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (_BOUND_MARKER, _BOUND_VERSION)
                )

    def _bind_legacy_secrets(self, conn: sqlite3.Connection) -> None:
        """Re-seal secrets of the previous format (AAD: the name alone) bound to their row.

        Runs once per store, in the opening transaction; the marker it leaves
        means the old format is never accepted again, so an old-style blob
        copied in later cannot carry a changed base URL past the check.
        """
        for row in conn.execute(_BINDING_SELECT).fetchall():
            name, blob = row[1], bytes(row[6])
            plain = self._box.open_or_none(blob, aad=name.encode())
            if plain is None:
                continue  # already altered under the old format: refused when used
            conn.execute(
                "UPDATE connections SET secret = ? WHERE id = ?",
                (self._box.seal(plain, aad=_binding(row)), row[0]),
            )

    def _seal(self, binding: bytes, secrets: Mapping[str, Any]) -> bytes:
        return self._box.seal(dumps(dict(secrets)), aad=binding)

    def _unseal(self, name: str, binding: bytes, blob: bytes) -> dict[str, Any]:
        plain = self._box.open_or_none(blob, aad=binding)
        if plain is None:
            # the master key was proven at open, so the row itself no longer matches its blob
            raise ConnectionTamperedError(name)
        try:
            value = loads(plain)
        except JSONDecodeError:
            raise ConnectionStoreError(f"the secrets of connection {name!r} are corrupt") from None
        if not isinstance(value, dict):
            raise ConnectionStoreError(f"the secrets of connection {name!r} are corrupt")
        return cast(dict[str, Any], value)

    def _bound_secrets(self, conn: sqlite3.Connection, name: str) -> dict[str, Any]:
        row = conn.execute(_BINDING_SELECT + " WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ConnectionNotFoundError(name)
        return self._unseal(name, _binding(row), bytes(row[6]))

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> list[ConnectionRecord]:
        """Every connection, by name."""
        with self._db() as conn:
            rows = conn.execute(_SELECT + " ORDER BY name").fetchall()
        return [_record(row) for row in rows]

    def get(self, name: str) -> ConnectionRecord:
        """The connection called ``name`` (:class:`ConnectionNotFoundError` if none)."""
        with self._db() as conn:
            row = conn.execute(_SELECT + " WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ConnectionNotFoundError(name)
        return _record(row)

    def load(self, name: str) -> tuple[ConnectionRecord, dict[str, Any]]:
        """The connection ``name`` and its decrypted secrets, read together.

        One read, so the details a caller sends the secrets by are the ones
        they were checked against (:class:`ConnectionTamperedError` if they
        were changed outside kbridge).
        """
        with self._db() as conn:
            row = conn.execute(_COLUMNS + ", secret FROM connections WHERE name = ?", (name,))
            found = row.fetchone()
        if found is None:
            raise ConnectionNotFoundError(name)
        record = _record(found[:-1])
        binding = _binding(
            (
                record.id,
                record.name,
                record.kind,
                record.base_url,
                record.account_id,
                found[12],
            )
        )
        return record, self._unseal(name, binding, bytes(found[-1]))

    def exists(self, name: str) -> bool:
        """Whether a connection called ``name`` is saved."""
        with self._db() as conn:
            return (
                conn.execute("SELECT 1 FROM connections WHERE name = ?", (name,)).fetchone()
                is not None
            )

    def secrets(self, name: str) -> dict[str, Any]:
        """The decrypted secrets of ``name`` (``api_key``, or ``access_token``/…)."""
        with self._db() as conn:
            return self._bound_secrets(conn, name)

    # -- writing ----------------------------------------------------------------------------

    def upsert(self, name: str, **fields: Unpack[ConnectionFields]) -> ConnectionRecord:
        """Save a new connection, or replace the credential of an existing one in place.

        Replacing (a key rotation, a re-authorisation) keeps the id and the
        original ``connected_at`` and stamps ``rotated_at``.
        """
        check_name(name)
        check_keywords(fields, ConnectionFields, "upsert")
        now = self._clock.now().isoformat()
        kind, base_url, account_id = fields["kind"], fields["base_url"], fields["account_id"]
        oauth_text = oauth_json(fields.get("oauth"))
        with self._db(write=True) as conn:
            row = conn.execute("SELECT id FROM connections WHERE name = ?", (name,)).fetchone()
            id_ = uuid.uuid4().hex if row is None else row[0]
            sealed = self._seal(
                _binding((id_, name, kind, base_url, account_id, oauth_text)), fields["secrets"]
            )
            values = (
                kind,
                base_url,
                account_id,
                fields["account_name"],
                fields["sender"].name,
                fields["sender"].email,
                dumps(list(fields["capabilities"])).decode(),
                dumps(list(fields["scopes"])).decode(),
                oauth_text,
                sealed,
            )
            if row is None:
                conn.execute(
                    "INSERT INTO connections (kind, base_url, account_id, account_name, "
                    "sender_name, sender_email, capabilities, scopes, oauth, secret, "
                    "id, name, connected_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*values, id_, name, now),
                )
            else:
                conn.execute(
                    "UPDATE connections SET kind=?, base_url=?, account_id=?, account_name=?, "
                    "sender_name=?, sender_email=?, capabilities=?, scopes=?, oauth=?, secret=?, "
                    "rotated_at=? WHERE name=?",
                    (*values, now, name),
                )
        return self.get(name)

    def update_secrets(self, name: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the secrets of ``name`` in one transaction (token rotation)."""
        with self._db(write=True) as conn:
            row = conn.execute(_BINDING_SELECT + " WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ConnectionNotFoundError(name)
            binding = _binding(row)
            merged = self._unseal(name, binding, bytes(row[6]))
            merged.update(changes)
            conn.execute(
                "UPDATE connections SET secret = ? WHERE id = ?",
                (self._seal(binding, merged), row[0]),
            )

    def update_capabilities(
        self, name: str, *, capabilities: tuple[str, ...], scopes: tuple[str, ...]
    ) -> ConnectionRecord:
        """Record what the latest probe found the credential can serve."""
        with self._db(write=True) as conn:
            cursor = conn.execute(
                "UPDATE connections SET capabilities = ?, scopes = ? WHERE name = ?",
                (dumps(list(capabilities)).decode(), dumps(list(scopes)).decode(), name),
            )
            if cursor.rowcount == 0:
                raise ConnectionNotFoundError(name)
        return self.get(name)

    def delete(self, name: str) -> None:
        """Forget ``name`` and its secrets."""
        with self._db(write=True) as conn:
            cursor = conn.execute("DELETE FROM connections WHERE name = ?", (name,))
            if cursor.rowcount == 0:
                raise ConnectionNotFoundError(name)
        with self._db() as conn:
            conn.execute("VACUUM")  # drop freed pages that held the sealed secret

    # -- privacy audit log (satisfies kbridge.privacy.AuditLog) ------------------------------

    def audit_key(self) -> bytes:
        """The key privacy subjects are hashed under: random, made once, kept sealed here.

        Sealed under the master key, so a copy of the store alone cannot be used
        to test guessed addresses against the logged hashes.
        """
        with self._db(write=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'audit_key'").fetchone()
            if row is None:
                key = secrets.token_bytes(32)
                sealed = self._box.seal(key, aad=_AUDIT_KEY_AAD)
                conn.execute("INSERT INTO meta (key, value) VALUES ('audit_key', ?)", (sealed,))
                return key
        return self._box.open(bytes(row[0]), aad=_AUDIT_KEY_AAD, what="the audit key")

    def append_audit(self, **fields: Unpack[AuditFields]) -> int:
        """Append one privacy audit entry (entries are never changed or removed); its id."""
        entry = audit_json(fields)
        with self._db(write=True) as conn:
            cursor = conn.execute(
                "INSERT INTO privacy_audit (recorded_at, subject_hash, action, outcome, batch_id, "
                "requested_at, confirmed_at, profile_ids, request_ids, detail) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    self._clock.now().isoformat(),
                    entry["subject_hash"],
                    entry["action"],
                    entry["outcome"],
                    entry["batch_id"],
                    entry["requested_at"],
                    entry["confirmed_at"],
                    dumps(entry["profile_ids"]).decode(),
                    dumps(entry["request_ids"]).decode(),
                    entry["detail"],
                ),
            )
            return int(cursor.lastrowid or 0)

    def audit_entries(
        self,
        *,
        batch_id: str | None = None,
        subject_hash: str | None = None,
        action: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Privacy audit entries matching every filter given, oldest first."""
        where: builtins.list[str] = []
        params: builtins.list[str] = []
        for column, value in (
            ("batch_id", batch_id),
            ("subject_hash", subject_hash),
            ("action", action),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = _AUDIT_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        with self._db() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_audit_row(row) for row in rows]

    def __repr__(self) -> str:
        return f"ConnectionStore(path={str(self.path)!r})"


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


if TYPE_CHECKING:  # the file store keeps the protocol's promise (checked by mypy)
    _FILE_STORE: type[RefreshLockingStore] = ConnectionStore
