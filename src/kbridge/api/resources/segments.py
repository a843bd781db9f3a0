"""``client.segments``: rule-based audiences (Klaviyo tag *Segments*).

A definition is ``{"condition_groups": [{"conditions": [...]}, ...]}``:
groups are ANDed, conditions inside a group ORed (Klaviyo's UI semantics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params, shared_args
from kbridge.api.validation import ValidationError

__all__ = ["SegmentsService", "segment_definition"]


def segment_definition(condition_groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A segment ``definition``; each group must carry a non-empty ``conditions`` list."""
    if not condition_groups:
        raise ValidationError("condition_groups", "a segment needs at least one condition group")
    for i, group in enumerate(condition_groups):
        conditions = group.get("conditions") if isinstance(group, Mapping) else None
        if not isinstance(conditions, list) or not conditions:
            raise ValidationError(f"condition_groups[{i}]", "needs a non-empty 'conditions' list")
        for j, cond in enumerate(conditions):
            if not isinstance(cond, Mapping) or not cond.get("type"):
                raise ValidationError(
                    f"condition_groups[{i}].conditions[{j}]",
                    "needs a 'type' (e.g. profile-property, profile-group-membership)",
                )
    return {"condition_groups": [dict(g) for g in condition_groups]}


#: the options of a segment, new or changed
_SEGMENT_ARGS = """
    Args:
        name: the segment's name
        condition_groups: a list of {conditions: [...]}
        is_starred: star the segment
"""


class SegmentsService(Service):
    async def get_segments(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_segments", query)

    def iter_segments(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_segments", query)

    async def get_segment(self, segment_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_segment", **query)
        return await self._one("get_segment", path_params={"id": segment_id}, params=params)

    @shared_args(_SEGMENT_ARGS)
    async def create_segment(
        self,
        *,
        name: str,
        condition_groups: Sequence[Mapping[str, Any]],
        is_starred: bool | None = None,
    ) -> Resource:
        """A segment of the profiles matching ``condition_groups``."""
        attrs: dict[str, Any] = {
            "name": _name(name),
            "definition": segment_definition(condition_groups),
        }
        if is_starred is not None:
            attrs["is_starred"] = is_starred
        return await self._one("create_segment", json=build_document("segment", attributes=attrs))

    @shared_args(_SEGMENT_ARGS)
    async def update_segment(
        self,
        segment_id: str,
        *,
        name: str | None = None,
        condition_groups: Sequence[Mapping[str, Any]] | None = None,
        is_starred: bool | None = None,
    ) -> Resource:
        """Change the given attributes; the others stay as they are."""
        attrs: dict[str, Any] = {}
        if name is not None:
            attrs["name"] = _name(name)
        if condition_groups is not None:
            attrs["definition"] = segment_definition(condition_groups)
        if is_starred is not None:
            attrs["is_starred"] = is_starred
        body = build_document("segment", id=segment_id, attributes=attrs)
        return await self._one("update_segment", path_params={"id": segment_id}, json=body)

    async def delete_segment(self, segment_id: str) -> None:
        await self._send("delete_segment", path_params={"id": segment_id})

    def iter_profiles_for_segment(
        self, segment_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        return self._all("get_profiles_for_segment", query, path_params={"id": segment_id})


def _name(name: str) -> str:
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    return name
