"""``client.events``: record and read events (Klaviyo tag *Events*).

``create_event`` sends one event (202, queued). ``bulk_create_events``
takes any number: they are split into jobs of at most 1000 events (Klaviyo's
per-request maximum), grouped by profile inside each job as the API wants,
and sent concurrently within the client's rate limiter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import ListQuery, Progress, Service, chunked, list_params
from kbridge.api.validation import (
    ValidationError,
    check_currency,
    check_email,
    check_payload_size,
    check_phone,
    iso,
)
from kbridge.core.jsoncodec import dumps

__all__ = ["MAX_EVENTS_PER_JOB", "EventsService", "NewEvent", "profile_identity"]

MAX_EVENTS_PER_JOB = 1000


def profile_identity(
    *,
    email: str | None = None,
    phone_number: str | None = None,
    external_id: str | None = None,
    profile_id: str | None = None,
    field_prefix: str = "",
) -> dict[str, Any]:
    """The profile attributes that identify an event's person (at least one is required)."""
    attrs: dict[str, Any] = {}
    if email is not None:
        attrs["email"] = check_email(email, f"{field_prefix}email")
    if phone_number is not None:
        attrs["phone_number"] = check_phone(phone_number, f"{field_prefix}phone_number")
    if external_id is not None:
        attrs["external_id"] = external_id
    if profile_id is not None:
        attrs["id"] = profile_id
    if not attrs:
        raise ValidationError(
            f"{field_prefix}profile",
            "an event needs its profile's email, phone_number, external_id or id",
        )
    return attrs


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """One event to record. ``profile`` holds identifiers (and optionally other attributes)."""

    metric: str
    profile: Mapping[str, Any]
    properties: Mapping[str, Any] = field(default_factory=dict)
    time: datetime | None = None
    value: float | None = None
    value_currency: str | None = None
    unique_id: str | None = None

    def attributes(self, prefix: str = "") -> dict[str, Any]:
        """The event's own attributes (no profile), validated; ``prefix`` locates errors."""
        if not self.metric.strip():
            raise ValidationError(f"{prefix}metric", "the metric name must not be empty")
        attrs: dict[str, Any] = {
            "properties": dict(self.properties),
            "metric": {"data": {"type": "metric", "attributes": {"name": self.metric}}},
        }
        check_payload_size(attrs["properties"], f"{prefix}properties")
        if self.time is not None:
            attrs["time"] = iso(self.time, f"{prefix}time")
        if self.value is not None:
            attrs["value"] = self.value
        if self.value_currency is not None:
            attrs["value_currency"] = check_currency(self.value_currency, f"{prefix}value_currency")
        if self.unique_id is not None:
            attrs["unique_id"] = self.unique_id
        return attrs

    def profile_attributes(self, prefix: str = "") -> dict[str, Any]:
        p = dict(self.profile)
        ident = profile_identity(
            email=p.pop("email", None),
            phone_number=p.pop("phone_number", None),
            external_id=p.pop("external_id", None),
            profile_id=p.pop("id", None),
            field_prefix=f"{prefix}profile.",
        )
        return {**p, **ident}


def bulk_job_body(events: Sequence[NewEvent], offset: int = 0) -> dict[str, Any]:
    """One ``event-bulk-create-job`` body: events grouped under their profile."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for i, event in enumerate(events):
        prefix = f"events[{offset + i}]."
        profile = event.profile_attributes(prefix)
        key = dumps(profile).decode()
        groups.setdefault(key, (profile, []))[1].append(
            {"type": "event", "attributes": event.attributes(prefix)}
        )
    items = [
        {
            "type": "event-bulk-create",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": profile}},
                "events": {"data": evs},
            },
        }
        for profile, evs in groups.values()
    ]
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": items}},
        }
    }


class EventsService(Service):
    async def get_events(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_events", query)

    def iter_events(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_events", query)

    async def get_event(self, event_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_event", **query)
        return await self._one("get_event", path_params={"id": event_id}, params=params)

    async def create_event(self, event: NewEvent) -> None:
        """Record one event (Klaviyo answers 202: validated and queued)."""
        attrs = event.attributes()
        attrs["profile"] = {"data": {"type": "profile", "attributes": event.profile_attributes()}}
        await self._send("create_event", json={"data": {"type": "event", "attributes": attrs}})

    async def bulk_create_events(
        self, events: Sequence[NewEvent], *, progress: Progress | None = None
    ) -> int:
        """Record any number of events in jobs of ≤1000; returns how many were sent.

        Every event is validated before the first job is sent, so a bad one
        half-way through does not leave a partial import behind.
        """
        if not events:
            raise ValidationError("events", "give at least one event")
        chunks = chunked(list(events), MAX_EVENTS_PER_JOB)
        bodies = [bulk_job_body(c, i * MAX_EVENTS_PER_JOB) for i, c in enumerate(chunks)]

        async def send(batch: Sequence[Any]) -> None:
            await self._send("bulk_create_events", json=batch[0])

        await self._run_chunks(
            [[b] for b in bodies], send, progress, weights=[len(c) for c in chunks]
        )
        return len(events)
