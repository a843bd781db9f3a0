"""The SQLite connection store: records, rotation in place, secrets only ever sealed."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kbridge.connections import (
    ConnectionNotFoundError,
    ConnectionRecord,
    ConnectionStore,
    ConnectionStoreError,
    ConnectionTamperedError,
    OAuthClientInfo,
    SecretBox,
    Sender,
    generate_master_key,
)
from kbridge.core import ManualClock
from kbridge.core.jsoncodec import dumps

pytestmark = pytest.mark.unit

KEY = "pk_" + "A1b2C3d4E5" * 3 + "xyzw"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _save(
    store: ConnectionStore, name: str = "shop", key: str = KEY, **overrides: object
) -> ConnectionRecord:
    values: dict[str, object] = {
        "kind": "api_key",
        "base_url": "http://127.0.0.1:1",
        "account_id": "ACC123",
        "account_name": "Northwind",
        "sender": Sender("Northwind", "hello@northwind.example"),
        "capabilities": ("connect", "sync"),
        "scopes": ("accounts:read", "profiles:read"),
        "secrets": {"api_key": key},
    }
    values.update(overrides)
    return store.upsert(name, **values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> ConnectionStore:
    return ConnectionStore(tmp_path / "connections.sqlite3", clock=clock)


def test_saved_connection_reads_back_without_secrets(store: ConnectionStore) -> None:
    record = _save(store)
    assert record == store.get("shop")
    assert record.account_id == "ACC123"
    assert record.sender == Sender("Northwind", "hello@northwind.example")
    assert record.connected_at == T0
    assert record.rotated_at is None
    assert record.capabilities == ("connect", "sync")
    assert KEY not in repr(record)
    assert store.secrets("shop") == {"api_key": KEY}
    assert [r.name for r in store.list()] == ["shop"]


def test_rotation_keeps_the_id_and_first_connection_time(
    store: ConnectionStore, clock: ManualClock
) -> None:
    first = _save(store)
    clock.advance(3 * 86400)
    new_key = "pk_" + "Z9" * 18
    rotated = _save(store, key=new_key, capabilities=("connect",))
    assert rotated.id == first.id
    assert rotated.connected_at == T0
    assert rotated.rotated_at == T0 + timedelta(days=3)
    assert rotated.capabilities == ("connect",)
    assert store.secrets("shop") == {"api_key": new_key}


def test_the_file_on_disk_never_holds_a_secret_in_clear(tmp_path: Path) -> None:
    store = ConnectionStore(tmp_path / "c.sqlite3")
    token = "oauth-access-" + "q" * 30
    _save(store, key=KEY)
    _save(
        store,
        name="app",
        kind="oauth",
        secrets={"access_token": token, "refresh_token": "refresh-" + "r" * 30},
        oauth=OAuthClientInfo("client-1", "http://t/token", "http://t/revoke", "ACC123"),
    )
    store.update_secrets("app", {"client_secret": "client-secret-" + "s" * 20})
    _save(store, key="pk_" + "Z9" * 18)  # rotation: the old key must not linger either
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("c.sqlite3"))
    assert b"ACC123" in blobs  # the file is readable, plainly: we grep the right thing
    for secret in (KEY, "pk_" + "Z9" * 18, token, "refresh-" + "r" * 30, "client-secret-"):
        assert secret.encode() not in blobs
    key_bytes = (tmp_path / "master.key").read_text().strip()
    assert key_bytes.encode() not in blobs
    assert bytes.fromhex(key_bytes) not in blobs


def test_wrong_master_key_is_a_clear_error_at_open(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    _save(ConnectionStore(path, master_key=generate_master_key()))
    with pytest.raises(ConnectionStoreError, match=r"cannot decrypt .*wrong KBRIDGE_MASTER_KEY\?"):
        ConnectionStore(path, master_key=generate_master_key())


def test_key_file_is_used_when_no_master_key_is_given(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    _save(ConnectionStore(path))
    assert ConnectionStore(path).secrets("shop") == {"api_key": KEY}
    assert (tmp_path / "master.key").exists()


def test_update_secrets_merges_in_one_transaction(store: ConnectionStore) -> None:
    _save(store, secrets={"access_token": "a1", "refresh_token": "r1", "client_secret": "s"})
    store.update_secrets("shop", {"access_token": "a2", "refresh_token": "r2"})
    assert store.secrets("shop") == {
        "access_token": "a2",
        "refresh_token": "r2",
        "client_secret": "s",
    }


def test_failed_secret_update_leaves_the_old_secrets(
    store: ConnectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(store, secrets={"refresh_token": "r1"})

    def boom(name: str, secrets: object) -> bytes:
        raise RuntimeError("crash mid-write")

    monkeypatch.setattr(store, "_seal", boom)
    with pytest.raises(RuntimeError):
        store.update_secrets("shop", {"refresh_token": "r2"})
    monkeypatch.undo()
    assert store.secrets("shop") == {"refresh_token": "r1"}


def test_delete_forgets_and_unknown_names_say_what_to_do(store: ConnectionStore) -> None:
    _save(store)
    store.delete("shop")
    assert store.list() == []
    with pytest.raises(ConnectionNotFoundError, match="kbridge connections list"):
        store.get("shop")
    with pytest.raises(ConnectionNotFoundError):
        store.delete("shop")
    with pytest.raises(ConnectionNotFoundError):
        store.secrets("shop")


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "../etc"])
def test_invalid_names_are_refused(store: ConnectionStore, name: str) -> None:
    with pytest.raises(ConnectionStoreError, match="invalid connection name"):
        _save(store, name=name)


def test_a_file_that_is_not_a_store_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    path.chmod(0o600)
    with pytest.raises(ConnectionStoreError, match="unreadable"):
        ConnectionStore(path, master_key=bytes(32))


def _tamper(path: Path, sql: str, *params: object) -> None:
    """What someone with write access to the file (and not the key) can do."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(sql, params)


OAUTH = OAuthClientInfo("client-1", "http://127.0.0.1:1/oauth/token", "http://t/revoke", "ACC123")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("base_url", "http://127.0.0.1:9"),
        ("account_id", "ACC999"),
        ("kind", "api_key"),
        ("id", "0" * 32),
        (
            "oauth",
            '{"client_id":"client-1","token_url":"http://evil.test/token",'
            '"revoke_url":"http://t/revoke","installation_id":"ACC123"}',
        ),
    ],
)
def test_a_changed_field_that_decides_where_secrets_go_refuses_them(
    store: ConnectionStore, column: str, value: str
) -> None:
    _save(store, kind="oauth", secrets={"access_token": "a1"}, oauth=OAUTH)
    _tamper(store.path, f"UPDATE connections SET {column} = ? WHERE name = 'shop'", value)  # noqa: S608
    for read in (store.secrets, store.load):
        with pytest.raises(ConnectionTamperedError) as err:
            read("shop")
        assert "'shop'" in str(err.value)
        assert "changed outside kbridge" in str(err.value)
        assert "connect again" in str(err.value)
        assert "\n" not in str(err.value)
    with pytest.raises(ConnectionTamperedError):
        store.update_secrets("shop", {"access_token": "a2"})


def test_a_renamed_row_refuses_its_secrets(store: ConnectionStore) -> None:
    _save(store)
    _tamper(store.path, "UPDATE connections SET name = 'other' WHERE name = 'shop'")
    with pytest.raises(ConnectionTamperedError, match="'other'"):
        store.secrets("other")


def test_fields_that_do_not_direct_secrets_may_change(store: ConnectionStore) -> None:
    _save(store)
    store.update_capabilities("shop", capabilities=("connect",), scopes=("accounts:read",))
    _tamper(store.path, "UPDATE connections SET account_name = 'x', sender_email = 'y@z.example'")
    record, secrets = store.load("shop")
    assert record.account_name == "x"
    assert secrets == {"api_key": KEY}


def _downgrade_to_v1(path: Path, key: bytes) -> None:
    """Rewrite every secret as the previous version sealed it: the connection name as AAD."""
    box = SecretBox(key)
    store = ConnectionStore(path, master_key=key)
    sealed = {
        record.name: box.seal(dumps(store.secrets(record.name)), aad=record.name.encode())
        for record in store.list()
    }
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DELETE FROM meta WHERE key = 'secrets_aad'")
        for name, blob in sealed.items():
            conn.execute("UPDATE connections SET secret = ? WHERE name = ?", (blob, name))


def test_a_store_of_the_previous_version_is_migrated_on_open(tmp_path: Path) -> None:
    path, key = tmp_path / "c.sqlite3", generate_master_key()
    store = ConnectionStore(path, master_key=key)
    _save(store)
    _save(store, name="app", kind="oauth", secrets={"refresh_token": "r1"}, oauth=OAUTH)
    _downgrade_to_v1(path, key)
    migrated = ConnectionStore(path, master_key=key)
    assert migrated.secrets("shop") == {"api_key": KEY}
    assert migrated.secrets("app") == {"refresh_token": "r1"}
    # migrated means bound: the same tampering is now caught
    _tamper(path, "UPDATE connections SET base_url = 'http://127.0.0.1:9'")
    with pytest.raises(ConnectionTamperedError):
        ConnectionStore(path, master_key=key).secrets("shop")


def test_after_migration_an_old_style_secret_is_refused(tmp_path: Path) -> None:
    path, key = tmp_path / "c.sqlite3", generate_master_key()
    _save(ConnectionStore(path, master_key=key))
    legacy = SecretBox(key).seal(dumps({"api_key": KEY}), aad=b"shop")
    _tamper(path, "UPDATE connections SET secret = ?, base_url = 'http://127.0.0.1:9'", legacy)
    with pytest.raises(ConnectionTamperedError):
        ConnectionStore(path, master_key=key).secrets("shop")


def test_a_new_store_its_key_and_its_directory_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = ConnectionStore(tmp_path / "home" / "c.sqlite3")
        _save(store)
        store.update_secrets("shop", {"api_key": KEY})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o700
    for name in ("c.sqlite3", "master.key"):
        assert stat.S_IMODE((tmp_path / "home" / name).stat().st_mode) == 0o600


def test_a_store_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    _save(ConnectionStore(path))
    path.chmod(0o644)
    with pytest.raises(ConnectionStoreError) as err:
        ConnectionStore(path)
    assert "readable by other users" in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)
    path.chmod(0o600)
    assert ConnectionStore(path).secrets("shop") == {"api_key": KEY}


def test_a_missing_key_file_is_not_recreated_over_a_store_that_needs_it(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    _save(ConnectionStore(path))
    (tmp_path / "master.key").unlink()
    with pytest.raises(ConnectionStoreError) as err:
        ConnectionStore(path)
    message = str(err.value)
    assert "master key file" in message
    assert "missing" in message
    assert "1 connection" in message
    assert "\n" not in message
    assert not (tmp_path / "master.key").exists()  # restoring the backup stays possible


def test_a_missing_key_file_is_made_afresh_for_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    first = ConnectionStore(path)
    first.audit_key()
    (tmp_path / "master.key").unlink()
    again = ConnectionStore(path)
    _save(again)
    assert again.secrets("shop") == {"api_key": KEY}
    assert len(again.audit_key()) == 32
    assert ConnectionStore(path).secrets("shop") == {"api_key": KEY}
