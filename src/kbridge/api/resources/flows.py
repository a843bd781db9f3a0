"""``client.flows``: automated flows (Klaviyo tag *Flows*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params
from kbridge.api.validation import ValidationError, check_choice

__all__ = ["FLOW_STATUSES", "FlowsService"]

FLOW_STATUSES = ("draft", "manual", "live")


class FlowsService(Service):
    async def get_flows(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_flows", query)

    def iter_flows(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_flows", query)

    async def get_flow(self, flow_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_flow", **query)
        return await self._one("get_flow", path_params={"id": flow_id}, params=params)

    async def create_flow(self, *, name: str, definition: Mapping[str, Any]) -> Resource:
        """A flow from a definition (``triggers``, ``actions``, ``entry_action_id`` …).

        Args:
            name: the flow's name
            definition: the flow's triggers and actions
        """
        if not name.strip():
            raise ValidationError("name", "must not be empty")
        for key in ("triggers", "actions"):
            if not isinstance(definition.get(key), list):
                raise ValidationError(f"definition.{key}", "must be a list")
        attrs = {"name": name, "definition": dict(definition)}
        return await self._one("create_flow", json=build_document("flow", attributes=attrs))

    async def update_flow(self, flow_id: str, *, status: str) -> Resource:
        """Set the status of the flow and all its actions (draft, manual or live)."""
        check_choice(status, FLOW_STATUSES, "status")
        body = build_document("flow", id=flow_id, attributes={"status": status})
        return await self._one("update_flow", path_params={"id": flow_id}, json=body)

    async def delete_flow(self, flow_id: str) -> None:
        await self._send("delete_flow", path_params={"id": flow_id})
