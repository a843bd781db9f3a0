"""``client.lists``: static lists and their membership (Klaviyo tag *Lists*).

Membership changes do not touch consent (use ``client.subscriptions`` for
that). Klaviyo takes at most 1000 profile ids per membership request; more
are split into chunks sent concurrently within the client's rate limiter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document, identifiers
from kbridge.api.resources._base import (
    ListQuery,
    Progress,
    Service,
    chunked,
    list_params,
    shared_args,
)
from kbridge.api.validation import ValidationError, check_choice

__all__ = ["MAX_MEMBERSHIP_IDS", "OPT_IN_PROCESSES", "ListsService"]

MAX_MEMBERSHIP_IDS = 1000
OPT_IN_PROCESSES = ("single_opt_in", "double_opt_in")


#: the members of a by-email membership change
_BY_EMAIL_ARGS = """
    Args:
        profile_ids: a profile id (repeatable; any number, sent 1000 at a time)
        emails: a profile's email (repeatable; looked up first, membership only, no consent)
"""


class ListsService(Service):
    async def get_lists(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """The first page of lists (Klaviyo serves at most 10 per page)."""
        return await self._page("get_lists", query)

    def iter_lists(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_lists", query)

    async def get_list(self, list_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_list", **query)
        return await self._one("get_list", path_params={"id": list_id}, params=params)

    async def create_list(self, *, name: str, opt_in_process: str | None = None) -> Resource:
        """A new, empty list.

        Args:
            name: the list's name
        """
        attrs: dict[str, Any] = {"name": _name(name)}
        if opt_in_process is not None:
            attrs["opt_in_process"] = check_choice(
                opt_in_process, OPT_IN_PROCESSES, "opt_in_process"
            )
        return await self._one("create_list", json=build_document("list", attributes=attrs))

    async def update_list(
        self, list_id: str, *, name: str | None = None, opt_in_process: str | None = None
    ) -> Resource:
        attrs: dict[str, Any] = {}
        if name is not None:
            attrs["name"] = _name(name)
        if opt_in_process is not None:
            attrs["opt_in_process"] = check_choice(
                opt_in_process, OPT_IN_PROCESSES, "opt_in_process"
            )
        body = build_document("list", id=list_id, attributes=attrs)
        return await self._one("update_list", path_params={"id": list_id}, json=body)

    async def delete_list(self, list_id: str) -> None:
        await self._send("delete_list", path_params={"id": list_id})

    async def get_profiles_for_list(
        self, list_id: str, **query: Unpack[ListQuery]
    ) -> list[Resource]:
        return await self._page("get_profiles_for_list", query, path_params={"id": list_id})

    def iter_profiles_for_list(
        self, list_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        """Every member of the list (filter by email, phone_number, joined_group_at …)."""
        return self._all("get_profiles_for_list", query, path_params={"id": list_id})

    async def add_profiles_to_list(
        self, list_id: str, *, profile_ids: Sequence[str], progress: Progress | None = None
    ) -> int:
        """Add profiles by id, in chunks of 1000; returns how many ids were sent."""
        return await self._membership("add_profiles_to_list", list_id, profile_ids, progress)

    async def remove_profiles_from_list(
        self, list_id: str, *, profile_ids: Sequence[str], progress: Progress | None = None
    ) -> int:
        """Remove profiles by id, in chunks of 1000; returns how many ids were sent."""
        return await self._membership("remove_profiles_from_list", list_id, profile_ids, progress)

    @shared_args(_BY_EMAIL_ARGS)
    async def add_profiles_to_list_by_email(
        self,
        list_id: str,
        *,
        emails: Sequence[str],
        profile_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> int:
        """Add the profiles with these emails (and ``profile_ids``); how many ids were sent.

        Membership only: consent is not touched (``client.subscriptions`` subscribes by
        email). An email without a profile is a :class:`ValidationError` before anything
        is added, naming the emails (create them first, e.g. ``create_or_update_profile``)."""
        ids = await self._ids_for(emails)
        return await self.add_profiles_to_list(
            list_id, profile_ids=[*profile_ids, *ids], progress=progress
        )

    @shared_args(_BY_EMAIL_ARGS)
    async def remove_profiles_from_list_by_email(
        self,
        list_id: str,
        *,
        emails: Sequence[str],
        profile_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> int:
        """Remove the profiles with these emails (and ``profile_ids``); how many ids were sent."""
        ids = await self._ids_for(emails)
        return await self.remove_profiles_from_list(
            list_id, profile_ids=[*profile_ids, *ids], progress=progress
        )

    async def _ids_for(self, emails: Sequence[str]) -> list[str]:
        found = await self._client.profiles.profile_ids_for_emails(emails)
        missing = [e for e in dict.fromkeys(emails) if e not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise ValidationError(
                "email", f"no profile has the email {shown}; create it first (profiles upsert)"
            )
        return [found[e] for e in dict.fromkeys(emails)]

    async def _membership(
        self, operation_id: str, list_id: str, ids: Sequence[str], progress: Progress | None
    ) -> int:
        unique = list(dict.fromkeys(ids))
        if not unique:
            raise ValidationError("profile_ids", "give at least one profile id")

        async def send(chunk: Sequence[Any]) -> None:
            await self._send(
                operation_id, path_params={"id": list_id}, json=identifiers("profile", chunk)
            )

        await self._run_chunks(chunked(unique, MAX_MEMBERSHIP_IDS), send, progress)
        return len(unique)


def _name(name: str) -> str:
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    return name
