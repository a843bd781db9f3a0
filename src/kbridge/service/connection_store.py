"""The service's connection store: connections of one workspace in the app database.

It keeps the promise of :class:`~kbridge.connections.ConnectionStoreProtocol`
the CLI's file store keeps: secrets sealed AES-256-GCM under the master key,
bound to the routing fields by the same associated data
(:func:`~kbridge.connections.secrets_binding`), here with the workspace as
well, so a row edited to point elsewhere, copied onto another connection or
moved to another workspace refuses to open. Beyond the protocol it keeps
what the service needs per connection: its rate-limit setting and warehouse.
"""

from __future__ import annotations

import builtins
import secrets as random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, cast

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kbridge.connections import (
    MASTER_KEY_ENV,
    ConnectionConflictError,
    ConnectionFields,
    ConnectionKind,
    ConnectionNotFoundError,
    ConnectionRecord,
    ConnectionStoreError,
    ConnectionStoreProtocol,
    ConnectionTamperedError,
    OAuthClientInfo,
    RefreshLockingStore,
    SecretBox,
    Sender,
    check_name,
    oauth_json,
    secrets_binding,
)
from kbridge.core import Clock, SystemClock
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads
from kbridge.core.keywords import check_keywords
from kbridge.service.models import Connection, Meta, Workspace

__all__ = ["ConnectionSettings", "SqlConnectionStore"]

_T = TypeVar("_T")
_KEY_CHECK = b"kbridge-app-database"
_KEY_CHECK_AAD = b"kbridge:app-key-check"
#: ``meta`` key of a connection's OAuth refresh lock; the row exists while someone holds it
_REFRESH_LOCK = "oauth-refresh:"
#: a refresh is one HTTP call (30 s timeout); a holder silent longer than this is dead
DEFAULT_REFRESH_LOCK_TTL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What the service keeps about a connection beyond its record."""

    id: str
    workspace_id: str
    #: ``spec``, ``off`` or a factor, as the CLI's ``--rate-limits``
    rate_limits: str
    #: where it syncs to; ``None``: the default DuckDB file named after the connection
    warehouse: str | None


class SqlConnectionStore:
    """The connections of ``workspace_id`` in the app database; secrets under ``master_key``.

    The first store opened on a database seals a key check there; a later
    one given another key fails at once with :class:`ConnectionStoreError`,
    instead of calling every connection tampered.
    """

    def __init__(
        self,
        engine: Engine,
        workspace_id: str,
        *,
        master_key: bytes,
        clock: Clock | None = None,
        refresh_lock_ttl: timedelta = DEFAULT_REFRESH_LOCK_TTL,
    ) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.workspace_id = workspace_id
        self._box = SecretBox(master_key)
        self._clock: Clock = clock or SystemClock()
        self._refresh_lock_ttl = refresh_lock_ttl
        self._check_key_and_workspace()

    def __repr__(self) -> str:
        return f"SqlConnectionStore(workspace_id={self.workspace_id!r})"

    def _check_key_and_workspace(self) -> None:
        with self._sessions() as session, session.begin():
            if session.get(Workspace, self.workspace_id) is None:
                raise ConnectionStoreError("no such workspace in the app database")
            row = session.get(Meta, "key_check")
            if row is None:
                session.add(
                    Meta(key="key_check", value=self._box.seal(_KEY_CHECK, aad=_KEY_CHECK_AAD))
                )
                return
            if self._box.open_or_none(bytes(row.value), aad=_KEY_CHECK_AAD) is None:
                raise ConnectionStoreError(
                    "cannot decrypt the app database's connection secrets: wrong "
                    f"{MASTER_KEY_ENV}? (the key it was first opened with is needed)"
                )

    def _binding(self, row: Connection) -> bytes:
        return secrets_binding(
            row.id,
            row.name,
            row.kind,
            row.base_url,
            row.account_id,
            row.oauth,
            scope=row.workspace_id,
        )

    def _row(self, session: Session, name: str) -> Connection:
        row = session.scalars(
            select(Connection).where(
                Connection.workspace_id == self.workspace_id, Connection.name == name
            )
        ).first()
        if row is None:
            raise ConnectionNotFoundError(name)
        return row

    def _unseal(self, row: Connection) -> dict[str, Any]:
        plain = self._box.open_or_none(bytes(row.secret), aad=self._binding(row))
        if plain is None:  # the key was proven at open: the row no longer matches its blob
            raise ConnectionTamperedError(row.name)
        try:
            value = loads(plain)
        except JSONDecodeError:
            raise ConnectionStoreError(
                f"the secrets of connection {row.name!r} are corrupt"
            ) from None
        if not isinstance(value, dict):
            raise ConnectionStoreError(f"the secrets of connection {row.name!r} are corrupt")
        return cast(dict[str, Any], value)

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> builtins.list[ConnectionRecord]:
        """The workspace's connections, by name."""
        with self._sessions() as session:
            rows = session.scalars(
                select(Connection)
                .where(Connection.workspace_id == self.workspace_id)
                .order_by(Connection.name)
            ).all()
        return [_record(row) for row in rows]

    def get(self, name: str) -> ConnectionRecord:
        """The connection called ``name`` (:class:`ConnectionNotFoundError` if none)."""
        with self._sessions() as session:
            return _record(self._row(session, name))

    def exists(self, name: str) -> bool:
        """Whether this workspace has a connection called ``name``."""
        with self._sessions() as session:
            return (
                session.scalar(
                    select(Connection.id).where(
                        Connection.workspace_id == self.workspace_id, Connection.name == name
                    )
                )
                is not None
            )

    def load(self, name: str) -> tuple[ConnectionRecord, dict[str, Any]]:
        """The connection and its secrets, checked against each other in one read."""
        with self._sessions() as session:
            row = self._row(session, name)
        return _record(row), self._unseal(row)

    def secrets(self, name: str) -> dict[str, Any]:
        """The decrypted secrets of ``name``."""
        return self.load(name)[1]

    def settings(self, name: str) -> ConnectionSettings:
        """The connection's service settings (rate limits, warehouse)."""
        with self._sessions() as session:
            row = self._row(session, name)
        return ConnectionSettings(row.id, row.workspace_id, row.rate_limits, row.warehouse)

    def name_of(self, connection_id: str) -> str:
        """The name of the workspace's connection ``connection_id`` (jobs carry ids)."""
        with self._sessions() as session:
            name = session.scalar(
                select(Connection.name).where(
                    Connection.workspace_id == self.workspace_id, Connection.id == connection_id
                )
            )
        if name is None:
            raise ConnectionNotFoundError(connection_id)
        return name

    # -- writing ----------------------------------------------------------------------------

    def upsert(
        self,
        name: str,
        *,
        rate_limits: str | None = None,
        warehouse: str | None = None,
        mode: Literal["upsert", "create", "replace"] = "upsert",
        **fields: Unpack[ConnectionFields],
    ) -> ConnectionRecord:
        """Save a new connection, or replace the credential of an existing one in place.

        Replacing keeps the id and ``connected_at`` and stamps ``rotated_at``;
        ``rate_limits`` and ``warehouse`` are kept unless given. ``mode="create"``
        refuses a name that exists (:class:`ConnectionConflictError`), so two
        requests creating one name cannot quietly rotate the first one's key;
        ``mode="replace"`` refuses one that does not (:class:`ConnectionNotFoundError`),
        so a rotation racing a deletion does not bring the connection back.
        """
        check_name(name)
        check_keywords(fields, ConnectionFields, "upsert")
        now = self._clock.now()

        def work(session: Session) -> ConnectionRecord:
            row = session.scalars(
                select(Connection)
                .where(Connection.workspace_id == self.workspace_id, Connection.name == name)
                .with_for_update()
            ).first()
            if row is not None and mode == "create":
                raise ConnectionConflictError(f"a connection called {name!r} already exists here")
            if row is None and mode == "replace":
                raise ConnectionNotFoundError(name)
            if row is None:
                row = Connection(
                    id=uuid.uuid4().hex,
                    workspace_id=self.workspace_id,
                    name=name,
                    connected_at=now,
                    rate_limits=rate_limits or "spec",
                    warehouse=warehouse,
                )
                session.add(row)
            else:
                row.rotated_at = now
                if rate_limits is not None:
                    row.rate_limits = rate_limits
                if warehouse is not None:
                    row.warehouse = warehouse
            row.kind = fields["kind"]
            row.base_url = fields["base_url"]
            row.account_id = fields["account_id"]
            row.account_name = fields["account_name"]
            row.sender_name = fields["sender"].name
            row.sender_email = fields["sender"].email
            row.capabilities = list(fields["capabilities"])
            row.scopes = list(fields["scopes"])
            row.oauth = oauth_json(fields.get("oauth"))
            row.secret = self._box.seal(dumps(dict(fields["secrets"])), aad=self._binding(row))
            session.flush()
            return _record(row)

        try:
            return self._write(work)
        except IntegrityError:  # another writer created the same name first
            if mode == "create":
                raise ConnectionConflictError(
                    f"a connection called {name!r} already exists here"
                ) from None
            raise ConnectionStoreError(
                f"connection {name!r} was created by someone else meanwhile; try again"
            ) from None

    def update_secrets(self, name: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the secrets of ``name`` in one transaction (token rotation)."""

        def work(session: Session) -> None:
            row = session.scalars(
                select(Connection)
                .where(Connection.workspace_id == self.workspace_id, Connection.name == name)
                .with_for_update()
            ).first()
            if row is None:
                raise ConnectionNotFoundError(name)
            merged = self._unseal(row)
            merged.update(changes)
            row.secret = self._box.seal(dumps(merged), aad=self._binding(row))

        self._write(work)

    def update_capabilities(
        self, name: str, *, capabilities: tuple[str, ...], scopes: tuple[str, ...]
    ) -> ConnectionRecord:
        """Record what the latest probe found the credential can serve."""

        def work(session: Session) -> ConnectionRecord:
            row = self._row(session, name)
            row.capabilities = list(capabilities)
            row.scopes = list(scopes)
            session.flush()
            return _record(row)

        return self._write(work)

    def delete(self, name: str) -> None:
        """Forget ``name`` and its secrets (SQLite zeroes the freed pages: secure_delete)."""

        def work(session: Session) -> None:
            done = session.execute(
                delete(Connection).where(
                    Connection.workspace_id == self.workspace_id, Connection.name == name
                )
            )
            if not getattr(done, "rowcount", 0):
                raise ConnectionNotFoundError(name)

        self._write(work)

    # -- the OAuth refresh lock (RefreshLockingStore) ---------------------------------------

    def try_refresh_lock(self, name: str) -> _RowLock | None:
        """Take the refresh lock of connection ``name`` without waiting; ``None`` if held.

        The lock is a ``meta`` row keyed by the connection id, holding its
        holder's random tag and expiry: inserting it takes the lock (the
        primary key lets one inserter win, on SQLite and PostgreSQL alike),
        deleting it releases it. A row past its expiry was left by a holder
        that died; it is taken over by one compare-and-swap update, so of two
        processes finding it stale only one gets it.
        """
        key = _REFRESH_LOCK + self.settings(name).id
        now = self._clock.now()
        mine = dumps(
            {"tag": random.token_hex(16), "until": (now + self._refresh_lock_ttl).isoformat()}
        )
        with self._sessions() as session, session.begin():
            held = session.scalar(select(Meta.value).where(Meta.key == key))
        if held is None:
            try:
                with self._sessions() as session, session.begin():
                    session.add(Meta(key=key, value=mine))
            except IntegrityError:  # another process inserted it first
                return None
            return _RowLock(self, key, mine)
        if _lock_until(bytes(held)) > now:
            return None
        with self._sessions() as session, session.begin():
            taken = session.execute(
                update(Meta).where(Meta.key == key, Meta.value == bytes(held)).values(value=mine)
            )
            if getattr(taken, "rowcount", 0) != 1:  # another process took it over first
                return None
        return _RowLock(self, key, mine)

    def refresh_lock_hint(self, name: str) -> str:
        """The lock's ``meta`` row (it expires by itself if its holder died)."""
        return (
            f"the app database's meta row {_REFRESH_LOCK}<connection id>, "
            f"taken over {self._refresh_lock_ttl.total_seconds():g}s after its holder stopped"
        )

    def _release(self, key: str, value: bytes) -> None:
        # only our own row: after a takeover the row is the new holder's
        with self._sessions() as session, session.begin():
            session.execute(delete(Meta).where(Meta.key == key, Meta.value == value))

    def _write(self, work: Callable[[Session], _T]) -> _T:
        with self._sessions() as session, session.begin():
            return work(session)


class _RowLock:
    """A held refresh lock row of a :class:`SqlConnectionStore`."""

    def __init__(self, store: SqlConnectionStore, key: str, value: bytes) -> None:
        self._store = store
        self._key = key
        self._value = value

    def release(self) -> None:
        self._store._release(self._key, self._value)

    def __repr__(self) -> str:
        return f"_RowLock(key={self._key!r})"


def _lock_until(value: bytes) -> datetime:
    """A lock row's expiry; an unreadable row counts as expired (nobody can release it)."""
    try:
        return datetime.fromisoformat(str(loads(value)["until"]))
    except (JSONDecodeError, KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _record(row: Connection) -> ConnectionRecord:
    oauth_info = None
    if row.oauth:
        data = loads(row.oauth)
        oauth_info = OAuthClientInfo(
            client_id=data["client_id"],
            token_url=data["token_url"],
            revoke_url=data["revoke_url"],
            installation_id=data.get("installation_id"),
        )
    return ConnectionRecord(
        id=row.id,
        name=row.name,
        kind=cast(ConnectionKind, row.kind),
        base_url=row.base_url,
        account_id=row.account_id,
        account_name=row.account_name,
        sender=Sender(name=row.sender_name, email=row.sender_email),
        connected_at=row.connected_at,
        rotated_at=row.rotated_at,
        capabilities=tuple(row.capabilities),
        scopes=tuple(row.scopes),
        oauth=oauth_info,
    )


if TYPE_CHECKING:  # the SQL store keeps the protocol's promise (checked by mypy)
    _SQL_STORE: type[ConnectionStoreProtocol] = SqlConnectionStore
    _SQL_LOCKING_STORE: type[RefreshLockingStore] = SqlConnectionStore
