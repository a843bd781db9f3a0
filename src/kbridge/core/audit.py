"""The fields of one privacy audit entry, declared once for every log that keeps them.

The privacy workflows append entries through ``kbridge.privacy.AuditLog``; the
file store (``connections``) and the app database (``service``) keep them too,
and neither may import ``privacy``, so the fields live here, on the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from kbridge.core.keywords import check_keywords

__all__ = ["AuditFields", "audit_fields", "audit_json"]


class _Required(TypedDict):
    subject_hash: str
    action: str
    outcome: str


# the optional keys by total=False rather than NotRequired[…]: under postponed annotations
# the runtime cannot see NotRequired, and check_keywords reads the keys at run time
class AuditFields(_Required, total=False):
    """What ``append_audit(**fields)`` records: the subject by keyed hash, what was done
    and how it ended; the rest is optional."""

    batch_id: str | None
    requested_at: datetime | None
    confirmed_at: datetime | None
    profile_ids: Sequence[str]
    request_ids: Sequence[str]
    detail: str | None


def audit_fields(fields: AuditFields) -> dict[str, Any]:
    """Every field, in declaration order, an absent one at its default (ids as lists)."""
    check_keywords(fields, AuditFields, "append_audit")
    return {
        "subject_hash": fields["subject_hash"],
        "action": fields["action"],
        "outcome": fields["outcome"],
        "batch_id": fields.get("batch_id"),
        "requested_at": fields.get("requested_at"),
        "confirmed_at": fields.get("confirmed_at"),
        "profile_ids": list(fields.get("profile_ids", ())),
        "request_ids": list(fields.get("request_ids", ())),
        "detail": fields.get("detail"),
    }


def audit_json(fields: AuditFields) -> dict[str, Any]:
    """:func:`audit_fields` as stored in a file or a JSON column: times as ISO 8601 text."""
    out = audit_fields(fields)
    for name in ("requested_at", "confirmed_at"):
        when = out[name]
        out[name] = None if when is None else when.isoformat()
    return out
