"""Keyword families declared once as a TypedDict still refuse a wrong call at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.connections import ConnectionStore, Sender
from kbridge.core import ManualClock
from kbridge.privacy import MemoryAuditLog

pytestmark = pytest.mark.unit


def test_append_audit_refuses_an_unknown_or_a_missing_keyword() -> None:
    log = MemoryAuditLog(clock=ManualClock())
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchid'"):
        log.append_audit(subject_hash="h", action="access", outcome="reported", batchid="b")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"missing .*required keyword-only argument.*'outcome'"):
        log.append_audit(subject_hash="h", action="access")  # type: ignore[call-arg]
    assert log.audit_entries() == []
    assert log.append_audit(subject_hash="h", action="access", outcome="reported") == 1


def test_a_store_upsert_refuses_an_unknown_keyword(tmp_path: Path) -> None:
    store = ConnectionStore(tmp_path / "c.sqlite3", master_key=bytes(32), clock=ManualClock())
    fields = {
        "kind": "api_key",
        "base_url": "http://127.0.0.1:8765",
        "account_id": "A",
        "account_name": None,
        "sender": Sender(),
        "capabilities": (),
        "scopes": (),
        "secrets": {"api_key": "pk_x"},
    }
    with pytest.raises(TypeError, match="unexpected keyword argument 'oauht'"):
        store.upsert("shop", oauht=None, **fields)  # type: ignore[arg-type]
    assert not store.exists("shop")
    assert store.upsert("shop", **fields).account_id == "A"  # type: ignore[arg-type]
