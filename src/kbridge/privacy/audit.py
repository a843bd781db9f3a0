"""The audit log of privacy requests: what the workflows need from it, and a memory one.

Every access report and deletion request appends entries; nothing is ever
changed or removed. An entry names its subject only by a keyed hash (see
:func:`~kbridge.privacy.subjects.subject_hash`), with the action, outcome,
request and confirmation times, the matched profile ids and the API
request ids. Entries sharing a ``batch_id`` belong to one batch, which is
how an interrupted batch knows which subjects it already finished.

The privacy layer may not import the connection store, so it states what it
needs as the :class:`AuditLog` protocol; ``ConnectionStore`` satisfies it
(its entries survive between runs) and :class:`MemoryAuditLog` serves tests
and one-off library use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, Unpack, runtime_checkable

from kbridge.core import Clock, SystemClock
from kbridge.core.audit import AuditFields, audit_fields

__all__ = [
    "FINAL_OUTCOMES",
    "Action",
    "AuditEntry",
    "AuditLog",
    "MemoryAuditLog",
    "Outcome",
    "read_log",
]

Action = Literal["access", "delete"]
#: ``requested``: the deletion job was accepted, not yet seen done; ``confirmed``: the
#: profiles are gone; ``pending``: still there when polling gave up; ``not_found``: no
#: profile matched (a job was still requested for the identifiers); ``refused``: the
#: guard stopped it (ambiguous match without ``--yes``); ``reported``: an access report
#: was produced; ``failed``: the API refused (``detail`` says why)
Outcome = Literal["requested", "confirmed", "pending", "not_found", "refused", "reported", "failed"]
#: outcomes after which a batch run again skips the subject
FINAL_OUTCOMES: frozenset[str] = frozenset({"confirmed", "not_found", "reported"})


@runtime_checkable
class AuditLog(Protocol):
    """Where privacy requests are recorded (``ConnectionStore`` is one)."""

    def audit_key(self) -> bytes:
        """The secret key subjects are hashed under (created once, then stable)."""
        ...

    def append_audit(self, **fields: Unpack[AuditFields]) -> int:
        """Append one entry (the fields of :class:`~kbridge.core.audit.AuditFields`); its id."""
        ...

    def audit_entries(
        self,
        *,
        batch_id: str | None = None,
        subject_hash: str | None = None,
        action: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries, oldest first, as plain dicts (the fields of :class:`AuditEntry`)."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    recorded_at: datetime
    subject_hash: str
    action: str
    outcome: str
    batch_id: str | None = None
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    profile_ids: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 text, ids as lists."""
        return {
            "id": self.id,
            "recorded_at": self.recorded_at.isoformat(),
            "subject_hash": self.subject_hash,
            "action": self.action,
            "outcome": self.outcome,
            "batch_id": self.batch_id,
            "requested_at": None if self.requested_at is None else self.requested_at.isoformat(),
            "confirmed_at": None if self.confirmed_at is None else self.confirmed_at.isoformat(),
            "profile_ids": list(self.profile_ids),
            "request_ids": list(self.request_ids),
            "detail": self.detail,
        }


def read_log(
    log: AuditLog,
    *,
    batch_id: str | None = None,
    subject_hash: str | None = None,
    action: str | None = None,
    identifier: str | None = None,
) -> list[AuditEntry]:
    """The log's entries (filtered), oldest first, as :class:`AuditEntry` values.

    ``subject_hash`` matches a subject exactly; ``identifier`` (an
    :func:`~kbridge.privacy.subjects.identifier_hash`) every subject that gave that
    identifier, alone or beside another.
    """
    rows = log.audit_entries(batch_id=batch_id, subject_hash=subject_hash, action=action)
    if identifier is not None:
        rows = [r for r in rows if identifier in str(r["subject_hash"]).split("+")]
    return [
        AuditEntry(
            id=int(r["id"]),
            recorded_at=r["recorded_at"],
            subject_hash=str(r["subject_hash"]),
            action=str(r["action"]),
            outcome=str(r["outcome"]),
            batch_id=r.get("batch_id"),
            requested_at=r.get("requested_at"),
            confirmed_at=r.get("confirmed_at"),
            profile_ids=tuple(r.get("profile_ids") or ()),
            request_ids=tuple(r.get("request_ids") or ()),
            detail=r.get("detail"),
        )
        for r in rows
    ]


class MemoryAuditLog:
    """An :class:`AuditLog` in memory (tests, one-off scripts); gone with the process."""

    def __init__(self, *, key: bytes | None = None, clock: Clock | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._clock: Clock = clock or SystemClock()
        self._rows: list[dict[str, Any]] = []

    def audit_key(self) -> bytes:
        return self._key

    def append_audit(self, **fields: Unpack[AuditFields]) -> int:
        entry_id = len(self._rows) + 1
        self._rows.append(
            {"id": entry_id, "recorded_at": self._clock.now(), **audit_fields(fields)}
        )
        return entry_id

    def audit_entries(
        self,
        *,
        batch_id: str | None = None,
        subject_hash: str | None = None,
        action: str | None = None,
    ) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._rows
            if (batch_id is None or r["batch_id"] == batch_id)
            and (subject_hash is None or r["subject_hash"] == subject_hash)
            and (action is None or r["action"] == action)
        ]

    def __repr__(self) -> str:
        return f"MemoryAuditLog(entries={len(self._rows)})"
