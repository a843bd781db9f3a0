"""The audit log in the connection store: append-only, keyed, and free of addresses."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbridge.connections import ConnectionStore
from kbridge.connections.errors import ConnectionStoreError
from kbridge.core import ManualClock
from kbridge.privacy import AuditLog, MemoryAuditLog, Subject, read_log, subject_hash

pytestmark = pytest.mark.unit


KEY = bytes(range(32))
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def store_at(path: Path, key: bytes = KEY) -> ConnectionStore:
    return ConnectionStore(path, master_key=key, clock=ManualClock(WHEN))


def test_the_store_is_an_audit_log_and_keeps_one_sealed_key(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = store_at(path)
    assert isinstance(store, AuditLog)
    key = store.audit_key()
    assert len(key) == 32
    assert store_at(path).audit_key() == key  # stable across openings
    assert key not in path.read_bytes()  # sealed, not in clear
    assert store_at(tmp_path / "other.sqlite3").audit_key() != key
    with pytest.raises(ConnectionStoreError):
        store_at(path, key=bytes(32)).audit_key()


def test_entries_round_trip_filter_and_hold_no_address(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = store_at(path)
    hashed = subject_hash(store.audit_key(), Subject(email="secret.person@example.com"))
    first = store.append_audit(
        subject_hash=hashed,
        action="delete",
        outcome="requested",
        batch_id="b1",
        requested_at=WHEN,
        profile_ids=["P1", "P2"],
        request_ids=["r-1"],
    )
    second = store.append_audit(
        subject_hash=hashed, action="delete", outcome="confirmed", batch_id="b1",
        requested_at=WHEN, confirmed_at=WHEN, profile_ids=["P1", "P2"],
    )  # fmt: skip
    store.append_audit(subject_hash="other", action="access", outcome="reported")
    assert second == first + 1
    entries = read_log(store, batch_id="b1")
    assert [(e.id, e.outcome) for e in entries] == [(first, "requested"), (second, "confirmed")]
    assert entries[0].profile_ids == ("P1", "P2")
    assert entries[0].request_ids == ("r-1",)
    assert entries[0].recorded_at == WHEN
    assert entries[1].confirmed_at == WHEN
    assert [e.outcome for e in read_log(store, action="access")] == ["reported"]
    assert [e.id for e in read_log(store, subject_hash=hashed, action="delete")] == [first, second]
    assert len(read_log(store)) == 3
    assert b"secret.person" not in path.read_bytes()
    assert entries[1].to_dict()["confirmed_at"] == WHEN.isoformat()


def test_the_audit_table_refuses_updates_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    store = store_at(path)
    store.append_audit(subject_hash="h", action="delete", outcome="pending")
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE privacy_audit SET outcome = 'confirmed'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM privacy_audit")
    finally:
        conn.close()
    assert [e.outcome for e in read_log(store)] == ["pending"]


def test_the_memory_log_behaves_like_the_store(tmp_path: Path) -> None:
    memory = MemoryAuditLog(key=KEY, clock=ManualClock(WHEN))
    store = store_at(tmp_path / "c.sqlite3")
    for log in (memory, store):
        log.append_audit(subject_hash="h", action="delete", outcome="requested", batch_id="b")
        log.append_audit(subject_hash="h", action="delete", outcome="confirmed", batch_id="b")
        log.append_audit(subject_hash="g", action="access", outcome="reported", batch_id="c")
    assert [e.to_dict() for e in read_log(memory, batch_id="b")] == [
        e.to_dict() for e in read_log(store, batch_id="b")
    ]
    assert memory.audit_key() == KEY
    assert "entries=3" in repr(memory)


def test_an_entry_about_an_email_and_a_phone_is_found_by_either(tmp_path: Path) -> None:
    from kbridge.privacy import identifier_hash

    both = Subject(email="Both.Ways@example.com", phone_number="+15005550006")
    for log in (MemoryAuditLog(key=KEY, clock=ManualClock(WHEN)), store_at(tmp_path / "c.db")):
        key = log.audit_key()
        log.append_audit(subject_hash=subject_hash(key, both), action="delete", outcome="confirmed")
        alone = Subject(email="both.ways@example.com")
        log.append_audit(subject_hash=subject_hash(key, alone), action="access", outcome="reported")
        other = Subject(email="someone.else@example.com", phone_number="+15005550007")
        log.append_audit(subject_hash=subject_hash(key, other), action="delete", outcome="refused")
        by_email = read_log(
            log, identifier=identifier_hash(key, Subject(email="BOTH.WAYS@example.com"))
        )
        assert [e.outcome for e in by_email] == ["confirmed", "reported"]
        by_phone = read_log(
            log, identifier=identifier_hash(key, Subject(phone_number="+15005550006"))
        )
        assert [e.outcome for e in by_phone] == ["confirmed"]
        assert (
            read_log(log, identifier=identifier_hash(key, Subject(phone_number="+15005550008")))
            == []
        )
        assert [e.outcome for e in read_log(log, identifier=by_phone[0].subject_hash)] == []
