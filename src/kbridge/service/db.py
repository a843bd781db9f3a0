"""Opening and migrating the app database: SQLite embedded, PostgreSQL for many machines.

``database_url(data_dir)`` is the embedded default (``app.sqlite3`` in the
data directory); ``postgresql://…`` URLs are used through psycopg 3, the
driver the warehouse already ships. :func:`migrate` brings any database to
the newest schema with Alembic, programmatically: no ``alembic.ini`` is
needed at run time.

SQLite is tuned for a service: WAL (readers never wait for the writer),
foreign keys enforced, a busy timeout instead of instant "database is
locked", and every transaction begun ``IMMEDIATE`` so that a read-then-write
(claiming a job) takes the write lock first and cannot fail half-way on a
stale snapshot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from kbridge.service.errors import AppDatabaseError

__all__ = ["APP_DB_FILE_NAME", "database_url", "migrate", "open_engine", "schema_revision"]

APP_DB_FILE_NAME = "app.sqlite3"
_ALEMBIC_DIR = Path(__file__).with_name("alembic")
#: how long a SQLite writer waits for another before giving up (seconds)
_SQLITE_BUSY_TIMEOUT = 30.0
#: the PostgreSQL advisory lock key migrations hold (any constant unlikely to collide)
_MIGRATION_LOCK = 0x6B627269_64676531


def database_url(data_dir: Path) -> str:
    """The embedded app database's URL: ``app.sqlite3`` in ``data_dir``."""
    return f"sqlite:///{(Path(data_dir) / APP_DB_FILE_NAME).resolve()}"


def _normalise(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; anything else is used as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLite file or PostgreSQL), tuned for the service."""
    try:
        parsed = make_url(_normalise(url))
    except ArgumentError:
        raise AppDatabaseError(
            "the app database URL is not understood; give postgresql://… or sqlite:///PATH"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(parsed, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT}, **kwargs)
        _tune_sqlite(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise AppDatabaseError(
            f"the app database must be SQLite or PostgreSQL, not {parsed.get_backend_name()!r}"
        )
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # the driver's own transaction handling would BEGIN DEFERRED; we BEGIN below instead
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # a forgotten connection's sealed secret is zeroed on disk, not left in a free page
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode up to the OS
            cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(engine_connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_ALEMBIC_DIR))
    config.attributes["connection"] = engine_connection
    return config


def migrate(url: str | Engine) -> None:
    """Bring the app database at ``url`` to the newest schema (creating it if empty).

    Safe to run on every start and from several processes: Alembic records
    the revision in the database, and each migration runs in a transaction.
    """
    from alembic import command

    engine = url if isinstance(url, Engine) else open_engine(url)
    try:
        with _sqlite_migration_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # two services starting at once: the second waits, then finds nothing to do
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            # (SQLite: a file lock beside the database serialises the migrators)
            command.upgrade(_alembic_config(connection), "head")
    except SQLAlchemyError as exc:
        cause: BaseException = getattr(exc, "orig", None) or exc
        raise AppDatabaseError(
            f"cannot migrate the app database: {type(cause).__name__}: {_first_line(cause)}"
        ) from None
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.migrate.lock`` while an SQLite file migrates.

    Services starting at once each connect and switch the new file to WAL while another
    holds its first write transaction, and SQLite answers some of those with an instant
    "database is locked" that no busy timeout waits out; one migrator at a time avoids it.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (``None``: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return MigrationContext.configure(connection).get_current_revision()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
