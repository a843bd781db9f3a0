"""The connection store's SQLite schema and how its rows map to records (no key, no I/O)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kbridge.connections.model import ConnectionRecord, OAuthClientInfo, Sender
from kbridge.core.jsoncodec import dumps, loads

_BOUND_PREFIX = b"kbridge:connection-secrets:v2\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('api_key', 'oauth')),
    base_url      TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    account_name  TEXT,
    sender_name   TEXT,
    sender_email  TEXT,
    connected_at  TEXT NOT NULL,
    rotated_at    TEXT,
    capabilities  TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    oauth         TEXT,
    secret        BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS privacy_audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at   TEXT NOT NULL,
    subject_hash  TEXT NOT NULL,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    batch_id      TEXT,
    requested_at  TEXT,
    confirmed_at  TEXT,
    profile_ids   TEXT NOT NULL,
    request_ids   TEXT NOT NULL,
    detail        TEXT
);
CREATE INDEX IF NOT EXISTS privacy_audit_batch ON privacy_audit (batch_id, subject_hash);
CREATE TRIGGER IF NOT EXISTS privacy_audit_no_update BEFORE UPDATE ON privacy_audit
BEGIN SELECT RAISE(ABORT, 'the privacy audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS privacy_audit_no_delete BEFORE DELETE ON privacy_audit
BEGIN SELECT RAISE(ABORT, 'the privacy audit log is append-only'); END;
"""


def _statements(script: str) -> list[str]:
    """The script's statements (``sqlite3.complete_statement`` keeps trigger bodies whole)."""
    out: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out


_COLUMNS = (
    "SELECT id, name, kind, base_url, account_id, account_name, sender_name, sender_email, "
    "connected_at, rotated_at, capabilities, scopes, oauth"
)

_SELECT = _COLUMNS + " FROM connections"

#: the columns a secret is bound to, then the secret: see :func:`_binding`
_BINDING_SELECT = "SELECT id, name, kind, base_url, account_id, oauth, secret FROM connections"


def _binding(row: Sequence[Any]) -> bytes:
    """The associated data a connection's secrets are sealed with (see :func:`secrets_binding`).

    ``row`` starts with id, name, kind, base URL, account id and the OAuth column's text.
    """
    return secrets_binding(*(str(row[i]) if row[i] is not None else None for i in range(6)))


def secrets_binding(
    id_: str | None,
    name: str | None,
    kind: str | None,
    base_url: str | None,
    account_id: str | None,
    oauth: str | None,
    *,
    scope: str | None = None,
) -> bytes:
    """The associated data a connection's secrets are sealed with, in every store.

    Everything that decides where a secret goes: id, name, kind, base URL,
    account id and the OAuth column's text (its token and revoke endpoints
    receive secrets). Fields that only describe (account name, sender,
    capabilities) stay editable. ``scope`` binds a store's own owner as well
    (the service's workspace), so a row moved to another owner won't open.
    """
    fields = [id_, name, kind, base_url, account_id, oauth]
    return _BOUND_PREFIX + dumps(fields if scope is None else [*fields, scope])


def oauth_json(info: OAuthClientInfo | None) -> str | None:
    """The canonical text of an OAuth client's public half, as stored and bound."""
    return None if info is None else dumps(_oauth_dict(info)).decode()


_AUDIT_SELECT = (
    "SELECT id, recorded_at, subject_hash, action, outcome, batch_id, requested_at, "
    "confirmed_at, profile_ids, request_ids, detail FROM privacy_audit"
)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _audit_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (id_, recorded_at, subject_hash, action, outcome, batch_id) = row[:6]
    requested_at, confirmed_at, profile_ids, request_ids, detail = row[6:]
    return {
        "id": id_,
        "recorded_at": datetime.fromisoformat(recorded_at),
        "subject_hash": subject_hash,
        "action": action,
        "outcome": outcome,
        "batch_id": batch_id,
        "requested_at": _time(requested_at),
        "confirmed_at": _time(confirmed_at),
        "profile_ids": list(loads(profile_ids)),
        "request_ids": list(loads(request_ids)),
        "detail": detail,
    }


def _oauth_dict(info: OAuthClientInfo) -> dict[str, Any]:
    return {
        "client_id": info.client_id,
        "token_url": info.token_url,
        "revoke_url": info.revoke_url,
        "installation_id": info.installation_id,
    }


def _record(row: tuple[Any, ...]) -> ConnectionRecord:
    (id_, name, kind, base_url, account_id, account_name, sender_name, sender_email) = row[:8]
    connected_at, rotated_at, capabilities, scopes, oauth = row[8:]
    oauth_info = None
    if oauth:
        data = loads(oauth)
        oauth_info = OAuthClientInfo(
            client_id=data["client_id"],
            token_url=data["token_url"],
            revoke_url=data["revoke_url"],
            installation_id=data.get("installation_id"),
        )
    return ConnectionRecord(
        id=id_,
        name=name,
        kind=kind,
        base_url=base_url,
        account_id=account_id,
        account_name=account_name,
        sender=Sender(name=sender_name, email=sender_email),
        connected_at=datetime.fromisoformat(connected_at),
        rotated_at=datetime.fromisoformat(rotated_at) if rotated_at else None,
        capabilities=tuple(loads(capabilities)),
        scopes=tuple(loads(scopes)),
        oauth=oauth_info,
    )
