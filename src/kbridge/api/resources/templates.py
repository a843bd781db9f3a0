"""``client.templates``: email templates, their rendering and cloning (tag *Templates*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params
from kbridge.api.validation import ValidationError, check_choice, check_payload_size

__all__ = ["EDITOR_TYPES", "TemplatesService"]

#: editors a template can be created with over the API (SIMPLE is read-only)
EDITOR_TYPES = ("CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE")


class TemplatesService(Service):
    async def get_templates(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_templates", query)

    def iter_templates(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_templates", query)

    async def get_template(self, template_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_template", **query)
        return await self._one("get_template", path_params={"id": template_id}, params=params)

    async def create_template(
        self,
        *,
        name: str,
        html: str | None = None,
        text: str | None = None,
        editor_type: str = "CODE",
    ) -> Resource:
        """A template; the CODE editor (the default) needs ``html``.

        Args:
            name: the template's name
            html: the template's HTML
            text: the plain-text version
        """
        if not name.strip():
            raise ValidationError("name", "must not be empty")
        check_choice(editor_type, EDITOR_TYPES, "editor_type")
        if editor_type == "CODE" and not html:
            raise ValidationError("html", "a CODE template needs its HTML")
        attrs: dict[str, Any] = {"name": name, "editor_type": editor_type}
        if html is not None:
            attrs["html"] = html
        if text is not None:
            attrs["text"] = text
        check_payload_size(attrs, "template", limit=1024 * 1024)
        return await self._one("create_template", json=build_document("template", attributes=attrs))

    async def update_template(
        self,
        template_id: str,
        *,
        name: str | None = None,
        html: str | None = None,
        text: str | None = None,
    ) -> Resource:
        """Change the given attributes; the others stay as they are.

        Args:
            html: the template's HTML
            text: the plain-text version
        """
        attrs: dict[str, Any] = {}
        if name is not None:
            if not name.strip():
                raise ValidationError("name", "must not be empty")
            attrs["name"] = name
        if html is not None:
            attrs["html"] = html
        if text is not None:
            attrs["text"] = text
        body = build_document("template", id=template_id, attributes=attrs)
        return await self._one("update_template", path_params={"id": template_id}, json=body)

    async def delete_template(self, template_id: str) -> None:
        await self._send("delete_template", path_params={"id": template_id})

    async def render_template(
        self, template_id: str, *, context: Mapping[str, Any] | None = None
    ) -> Resource:
        """The template rendered with ``context`` (``html``, ``text``, ``amp`` attributes).

        Args:
            context: the variables the template reads, e.g. {"first_name": "Ada"}
        """
        body = build_document(
            "template", id=template_id, attributes={"context": dict(context or {})}
        )
        return await self._one("render_template", json=body)

    async def clone_template(self, template_id: str, *, name: str | None = None) -> Resource:
        attrs = {"name": name} if name is not None else {}
        body = build_document("template", id=template_id, attributes=attrs)
        return await self._one("clone_template", json=body)
