"""``client.bulk``: the long-running imports in one place (events, profiles, consent).

Each method splits its input at Klaviyo's per-request maximum and sends the
chunks concurrently within the client's rate limiter; pass ``progress`` to
hear of each finished chunk (the CLI draws a progress bar with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import Progress, Service, chunked
from kbridge.api.resources.events import EventsService, NewEvent
from kbridge.api.resources.profiles import profile_attributes
from kbridge.api.resources.subscriptions import Contact, SubscriptionsService
from kbridge.api.validation import ValidationError

if TYPE_CHECKING:
    from kbridge.api.client import AsyncClient

__all__ = ["MAX_IMPORT_PROFILES", "BulkService"]

MAX_IMPORT_PROFILES = 10_000


class BulkService(Service):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self._events = EventsService(client)
        self._subscriptions = SubscriptionsService(client)

    async def bulk_create_events(
        self, events: Sequence[NewEvent], *, progress: Progress | None = None
    ) -> int:
        """See :meth:`EventsService.bulk_create_events` (jobs of ≤1000 events)."""
        return await self._events.bulk_create_events(events, progress=progress)

    async def bulk_subscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        custom_source: str | None = None,
        historical_import: bool | None = None,
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`SubscriptionsService.bulk_subscribe_profiles` (jobs of ≤1000)."""
        return await self._subscriptions.bulk_subscribe_profiles(
            profiles,
            list_id=list_id,
            channels=channels,
            custom_source=custom_source,
            historical_import=historical_import,
            progress=progress,
        )

    async def bulk_import_profiles(
        self,
        profiles: Sequence[Mapping[str, Any]],
        *,
        list_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Resource]:
        """Create or update profiles in jobs of ≤10,000; returns the job resources.

        Each profile is a mapping of :func:`profile_attributes` keywords
        (``email``, ``first_name``, ``properties`` …), validated up front.
        """
        if not profiles:
            raise ValidationError("profiles", "give at least one profile")
        rows = []
        for i, p in enumerate(profiles):
            try:
                attrs = profile_attributes(**p)
            except TypeError as exc:
                raise ValidationError(f"profiles[{i}]", str(exc)) from None
            except ValidationError as exc:
                raise ValidationError(f"profiles[{i}].{exc.field}", exc.reason) from None
            rows.append({"type": "profile", "attributes": attrs})

        async def send(chunk: Sequence[Any]) -> Resource:
            data: dict[str, Any] = {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": list(chunk)}},
            }
            if list_ids:
                data["relationships"] = {
                    "lists": {"data": [{"type": "list", "id": i} for i in list_ids]}
                }
            return await self._one("bulk_import_profiles", json={"data": data})

        return await self._run_chunks(chunked(rows, MAX_IMPORT_PROFILES), send, progress)
