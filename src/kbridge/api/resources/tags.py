"""``client.tags``: tags and what they are attached to (Klaviyo tag *Tags*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document, identifiers
from kbridge.api.resources._base import ListQuery, Service, list_params, shared_args
from kbridge.api.validation import ValidationError, check_choice

__all__ = ["TAGGABLE", "TagsService"]

#: resource kind → (its JSON:API type, the tag/untag operation ids)
TAGGABLE = {
    "campaigns": ("campaign", "tag_campaigns", "remove_tag_from_campaigns"),
    "flows": ("flow", "tag_flows", "remove_tag_from_flows"),
    "lists": ("list", "tag_lists", "remove_tag_from_lists"),
    "segments": ("segment", "tag_segments", "remove_tag_from_segments"),
}


#: what a tag is put on or taken off
_TAGGED_ARGS = """
    Args:
        kind: what the ids name
        ids: a campaign, flow, list or segment id (repeatable)
"""


class TagsService(Service):
    async def get_tags(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_tags", query)

    def iter_tags(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_tags", query)

    async def get_tag(self, tag_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_tag", **query)
        return await self._one("get_tag", path_params={"id": tag_id}, params=params)

    async def create_tag(self, *, name: str, tag_group_id: str | None = None) -> Resource:
        """A new tag, in the default group unless ``tag_group_id`` is given.

        Args:
            name: the tag's name
        """
        if not name.strip():
            raise ValidationError("name", "must not be empty")
        rels: dict[str, Any] = {}
        if tag_group_id is not None:
            rels["tag-group"] = ("tag-group", tag_group_id)
        body = build_document("tag", attributes={"name": name}, relationships=rels or None)
        return await self._one("create_tag", json=body)

    async def update_tag(self, tag_id: str, *, name: str) -> None:
        if not name.strip():
            raise ValidationError("name", "must not be empty")
        body = build_document("tag", id=tag_id, attributes={"name": name})
        await self._send("update_tag", path_params={"id": tag_id}, json=body)

    async def delete_tag(self, tag_id: str) -> None:
        await self._send("delete_tag", path_params={"id": tag_id})

    @shared_args(_TAGGED_ARGS)
    async def tag_resources(self, tag_id: str, *, kind: str, ids: Sequence[str]) -> None:
        """Attach the tag to campaigns, flows, lists or segments by id."""
        rtype, add_op, _ = TAGGABLE[check_choice(kind, TAGGABLE, "kind")]
        await self._send(add_op, path_params={"id": tag_id}, json=identifiers(rtype, ids))

    @shared_args(_TAGGED_ARGS)
    async def untag_resources(self, tag_id: str, *, kind: str, ids: Sequence[str]) -> None:
        """Detach the tag from campaigns, flows, lists or segments by id."""
        rtype, _, remove_op = TAGGABLE[check_choice(kind, TAGGABLE, "kind")]
        await self._send(remove_op, path_params={"id": tag_id}, json=identifiers(rtype, ids))
