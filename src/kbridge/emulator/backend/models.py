"""The emulator's records: compact, because the account may hold 200k profiles and 2M events.

Profiles are ``__slots__`` objects whose consent state is kept as a few flat
fields (the nested ``subscriptions`` document is built only when asked for).
Events are columns (:class:`EventColumns`): a timestamp, profile index, metric
index and value per event; ids and generated properties are derived from the
event's index at serialisation time.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "EMAIL_CONSENTS",
    "PREDICTIVE_FIELDS",
    "SUPPRESSION_REASONS",
    "EventColumns",
    "JobRecord",
    "JobStatus",
    "ListRecord",
    "MetricRecord",
    "ProfileRecord",
    "SegmentRecord",
]

#: Read-side email consent values (Klaviyo documents only SUBSCRIBED; these are the usual three).
EMAIL_CONSENTS = ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")
#: ``predictive_analytics`` attribute names, in the order ProfileRecord.predictive stores them
PREDICTIVE_FIELDS = (
    "historic_clv",
    "predicted_clv",
    "total_clv",
    "historic_number_of_orders",
    "predicted_number_of_orders",
    "average_days_between_orders",
    "average_order_value",
    "churn_probability",
    "expected_date_of_next_order",
    "ranked_channel_affinity",
)
SUPPRESSION_REASONS = (
    "HARD_BOUNCE",
    "INVALID_EMAIL",
    "SPAM_COMPLAINT",
    "UNSUBSCRIBE",
    "USER_SUPPRESSED",
)


class ProfileRecord:
    """One profile. ``seq`` is its insertion sequence (the keyset tie-breaker)."""

    __slots__ = (
        "created",
        "deleted",
        "email",
        "email_consent",
        "email_consent_ts",
        "email_double_optin",
        "email_last_updated",
        "email_list_suppressions",
        "email_method",
        "email_method_detail",
        "email_suppression",
        "external_id",
        "first_name",
        "id",
        "image",
        "last_event_date",
        "last_name",
        "locale",
        "location",
        "organization",
        "phone_number",
        "predictive",
        "properties",
        "seq",
        "sms_consent",
        "sms_consent_ts",
        "sms_last_updated",
        "sms_method",
        "sms_tx_consent",
        "title",
        "updated",
    )

    def __init__(self, seq: int, profile_id: str, created: float) -> None:
        self.seq = seq
        self.id = profile_id
        self.created = created
        self.updated = created
        self.deleted = False
        self.email: str | None = None
        self.phone_number: str | None = None
        self.external_id: str | None = None
        self.first_name: str | None = None
        self.last_name: str | None = None
        self.organization: str | None = None
        self.locale: str | None = None
        self.title: str | None = None
        self.image: str | None = None
        self.location: dict[str, Any] | None = None
        self.properties: dict[str, Any] = {}
        self.last_event_date: float | None = None
        self.email_consent = "NEVER_SUBSCRIBED"
        self.email_consent_ts: float | None = None
        self.email_last_updated: float | None = None
        self.email_method: str | None = None
        self.email_method_detail: str | None = None
        self.email_double_optin: bool | None = None
        # empty tuples, shared, until a suppression is recorded (a new sequence is
        # assigned, never one changed in place): two lists a profile would be two more
        # objects for the garbage collector to walk, a million times over after imports
        #: [(reason, timestamp)]
        self.email_suppression: Sequence[tuple[str, float]] = ()
        #: [(list_id, reason, timestamp)]
        self.email_list_suppressions: Sequence[tuple[str, str, float]] = ()
        self.sms_consent = "NEVER_SUBSCRIBED"
        self.sms_consent_ts: float | None = None
        self.sms_last_updated: float | None = None
        self.sms_method: str | None = None
        self.sms_tx_consent = "NEVER_SUBSCRIBED"
        #: the generator's noisy predictions in PREDICTIVE_FIELDS order, or None
        self.predictive: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"ProfileRecord(seq={self.seq}, id={self.id!r})"


@dataclass(slots=True)
class ListRecord:
    seq: int
    id: str
    name: str
    created: float
    updated: float
    opt_in_process: str = "single_opt_in"
    #: profile seq -> joined_group_at (epoch seconds)
    members: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class SegmentRecord:
    seq: int
    id: str
    name: str
    definition: dict[str, Any]
    created: float
    updated: float
    is_active: bool = True
    is_starred: bool = False


@dataclass(slots=True)
class MetricRecord:
    index: int
    id: str
    name: str
    created: float
    updated: float
    integration: dict[str, Any]


@dataclass(slots=True)
class EventColumns:
    """All events, one column per field, indexed by event index (insertion order).

    ``generated`` events (index below it) take their properties from the
    generator's deterministic function; later ones keep them in ``extra``.
    """

    ts: array[float] = field(default_factory=lambda: array("d"))
    profile: array[int] = field(default_factory=lambda: array("l"))
    metric: array[int] = field(default_factory=lambda: array("l"))
    value: array[float] = field(default_factory=lambda: array("d"))
    #: generator detail per event (packed product indexes, campaign number, …); 0 for API events
    aux: array[int] = field(default_factory=lambda: array("q"))
    generated: int = 0
    #: event index -> (properties, unique_id) for events created through the API
    extra: dict[int, tuple[dict[str, Any], str | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)

    def append(self, ts: float, profile: int, metric: int, value: float, aux: int = 0) -> int:
        self.ts.append(ts)
        self.profile.append(profile)
        self.metric.append(metric)
        self.value.append(value)
        self.aux.append(aux)
        return len(self.ts) - 1


class JobStatus(StrEnum):
    """An asynchronous job's ``status`` (bulk import, subscribe, suppress, …)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"


@dataclass(slots=True)
class JobRecord:
    """An asynchronous job (bulk import, subscribe, suppress, …) on the simulated clock."""

    kind: str
    id: str
    seq: int
    created: float
    due: float
    payload: Any
    status: JobStatus = JobStatus.QUEUED
    total_count: int = 0
    completed_count: int = 0
    failed_count: int = 0
    skipped_count: int = 0
    started_at: float | None = None
    completed_at: float | None = None
    list_ids: list[str] = field(default_factory=list)
    segment_ids: list[str] = field(default_factory=list)
    profile_seqs: list[int] = field(default_factory=list)
    #: [(code, title, detail, pointer, original_payload)]
    errors: list[tuple[str, str, str, str, dict[str, Any]]] = field(default_factory=list)
    #: rows of the payload processed so far (a bulk import works through them in parts)
    done: int = 0
