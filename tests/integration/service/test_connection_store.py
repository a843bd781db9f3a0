"""One connection-store protocol, two stores: the CLI's file and the service's SQL tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

from kbridge.connections import (
    ConnectionNotFoundError,
    ConnectionStore,
    ConnectionStoreError,
    ConnectionStoreProtocol,
    ConnectionTamperedError,
    OAuthClientInfo,
    Sender,
    generate_master_key,
)
from kbridge.core import ManualClock
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.db import database_url
from kbridge.service.models import Connection

pytestmark = pytest.mark.integration

KEY = "pk_" + "s3cr3t" * 6


@dataclass
class Subject:
    store: ConnectionStoreProtocol
    #: set a plain column of connection ``name`` behind the store's back
    tamper: Callable[[str, str, str], None]
    #: every byte the store has written
    raw: Callable[[], bytes]


@pytest.fixture(params=["file", "sql-sqlite", "sql-postgresql"])
def subject(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Subject]:
    master = generate_master_key()
    if request.param == "file":
        path = tmp_path / "connections.sqlite3"
        store = ConnectionStore(path, master_key=master, clock=clock)

        def tamper_file(name: str, column: str, value: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(
                    f"UPDATE connections SET {column} = ? WHERE name = ?",  # noqa: S608
                    (value, name),
                )

        yield Subject(store, tamper_file, path.read_bytes)
        return
    url = (
        database_url(tmp_path)
        if request.param == "sql-sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    appdb = AppDatabase.open(url, clock=clock)
    ws = appdb.create_workspace("acme")
    sql = SqlConnectionStore(appdb.engine, ws.id, master_key=master, clock=clock)

    def tamper_sql(name: str, column: str, value: str) -> None:
        with appdb.engine.begin() as conn:
            conn.execute(
                update(Connection)
                .where(Connection.name == name, Connection.workspace_id == ws.id)
                .values({column: value})
            )

    def raw_sql() -> bytes:
        with appdb.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT * FROM connections").all()
        return repr(rows).encode()

    try:
        yield Subject(sql, tamper_sql, raw_sql)
    finally:
        appdb.close()


def _save(store: ConnectionStoreProtocol, name: str = "shop", **changes: object) -> None:
    fields: dict[str, object] = {
        "kind": "api_key",
        "base_url": "http://127.0.0.1:8765",
        "account_id": "ACCT1",
        "account_name": "Shop",
        "sender": Sender(name="Shop", email="hi@shop.test"),
        "capabilities": ("sync",),
        "scopes": ("profiles:read",),
        "secrets": {"api_key": KEY},
    }
    fields.update(changes)
    store.upsert(name, **fields)  # type: ignore[arg-type]


def test_a_saved_connection_loads_with_its_secrets(subject: Subject, clock: ManualClock) -> None:
    store = subject.store
    _save(store)
    record, secrets = store.load("shop")
    assert (record.name, record.account_id, record.sender.email) == (
        "shop",
        "ACCT1",
        "hi@shop.test",
    )
    assert secrets == {"api_key": KEY}
    assert store.exists("shop")
    assert [r.name for r in store.list()] == ["shop"]
    assert KEY.encode() not in subject.raw()
    assert KEY not in repr(record)

    clock.advance(60)
    _save(store, secrets={"api_key": KEY + "2"})
    rotated = store.get("shop")
    assert rotated.id == record.id
    assert rotated.rotated_at == clock.now()
    store.update_secrets("shop", {"note": "x"})
    assert store.secrets("shop") == {"api_key": KEY + "2", "note": "x"}
    again = store.update_capabilities("shop", capabilities=("sync", "privacy"), scopes=("a",))
    assert again.capabilities == ("sync", "privacy")


@pytest.mark.parametrize(
    ("column", "value"),
    [("base_url", "https://evil.test"), ("account_id", "OTHER"), ("kind", "oauth")],
)
def test_a_routing_field_edited_behind_the_store_keeps_the_secret_shut(
    subject: Subject, column: str, value: str
) -> None:
    _save(subject.store)
    subject.tamper("shop", column, value)
    with pytest.raises(ConnectionTamperedError):
        subject.store.load("shop")
    with pytest.raises(ConnectionTamperedError):
        subject.store.update_secrets("shop", {"api_key": "new"})


def test_an_oauth_endpoint_is_bound_too(subject: Subject) -> None:
    oauth = OAuthClientInfo(
        client_id="cid", token_url="http://127.0.0.1:1/token", revoke_url="http://127.0.0.1:1/r"
    )
    _save(subject.store, kind="oauth", oauth=oauth, secrets={"access_token": "at"})
    assert subject.store.load("shop")[0].oauth == oauth
    subject.tamper(
        "shop",
        "oauth",
        '{"client_id":"cid","token_url":"https://evil.test/token","revoke_url":"x",'
        '"installation_id":null}',
    )
    with pytest.raises(ConnectionTamperedError):
        subject.store.load("shop")


def test_a_forgotten_connection_is_gone(subject: Subject) -> None:
    _save(subject.store)
    subject.store.delete("shop")
    assert not subject.store.exists("shop")
    with pytest.raises(ConnectionNotFoundError):
        subject.store.load("shop")
    with pytest.raises(ConnectionNotFoundError):
        subject.store.delete("shop")


# -- the SQL store's own promises ----------------------------------------------------------------


def test_workspaces_do_not_see_each_others_connections(appdb: AppDatabase) -> None:
    key = generate_master_key()
    acme = appdb.create_workspace("acme")
    globex = appdb.create_workspace("globex")
    a = SqlConnectionStore(appdb.engine, acme.id, master_key=key)
    g = SqlConnectionStore(appdb.engine, globex.id, master_key=key)
    _save(a, rate_limits="0.5", warehouse="postgresql://wh/acme")
    _save(g)  # the same name in another workspace is another connection
    assert a.get("shop").id != g.get("shop").id
    assert a.secrets("shop") == {"api_key": KEY}
    with pytest.raises(ConnectionNotFoundError):
        g.name_of(a.get("shop").id)
    settings = a.settings("shop")
    assert (settings.rate_limits, settings.warehouse) == ("0.5", "postgresql://wh/acme")
    assert g.settings("shop").rate_limits == "spec"
    assert a.name_of(settings.id) == "shop"


def test_a_connection_moved_to_another_workspace_will_not_open(appdb: AppDatabase) -> None:
    key = generate_master_key()
    acme = appdb.create_workspace("acme")
    globex = appdb.create_workspace("globex")
    a = SqlConnectionStore(appdb.engine, acme.id, master_key=key)
    _save(a)
    with appdb.engine.begin() as conn:
        conn.execute(update(Connection).values(workspace_id=globex.id))
    g = SqlConnectionStore(appdb.engine, globex.id, master_key=key)
    with pytest.raises(ConnectionTamperedError):
        g.load("shop")


def test_a_wrong_master_key_is_named_as_such(appdb: AppDatabase) -> None:
    ws = appdb.create_workspace("acme")
    SqlConnectionStore(appdb.engine, ws.id, master_key=generate_master_key())
    with pytest.raises(ConnectionStoreError, match="KBRIDGE_MASTER_KEY"):
        SqlConnectionStore(appdb.engine, ws.id, master_key=generate_master_key())
