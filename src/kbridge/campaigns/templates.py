"""Templates as files: push a CODE template by name (create or update), render one with a context.

:func:`push_template` is idempotent: the template is found by its exact name
(Klaviyo does not make names unique; the most recently updated one wins) and
updated only when its HTML or text differ, so pushing the same file twice
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kbridge.api import AsyncClient
from kbridge.api.capabilities import TEMPLATE_PUSH, TEMPLATE_RENDER, Workflow
from kbridge.api.filter_builder import F
from kbridge.api.jsonapi import Resource
from kbridge.api.validation import ValidationError
from kbridge.campaigns._common import explained

__all__ = [
    "TEMPLATE_OPERATIONS",
    "PushResult",
    "RenderedTemplate",
    "push_template",
    "render_template",
]

TEMPLATE_OPERATIONS = Workflow.of("templates", TEMPLATE_PUSH, TEMPLATE_RENDER).operations


@dataclass(frozen=True, slots=True)
class PushResult:
    """The template pushed and what happened to it."""

    id: str
    name: str
    action: Literal["created", "updated", "unchanged"]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.action}


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """A template rendered with a context (``html``, ``text``)."""

    id: str
    html: str | None
    text: str | None

    def as_json(self) -> dict[str, Any]:
        # the shape `kbridge templates render` printed before it took context files
        return {
            "type": "template",
            "id": self.id,
            "attributes": {"html": self.html, "text": self.text},
        }


async def _find(client: AsyncClient, name: str) -> Resource | None:
    found: Resource | None = None
    async for t in client.templates.iter_templates(filter=F.equals("name", name)):
        if t.attributes.get("name") != name:
            continue  # only an exact match counts, whatever the server's comparison
        if found is None or str(t.attributes.get("updated") or "") > str(
            found.attributes.get("updated") or ""
        ):
            found = t
    return found


async def push_template(
    client: AsyncClient, *, name: str, html: str, text: str | None = None
) -> PushResult:
    """Create the CODE template ``name`` or bring the existing one up to date."""
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    if not html.strip():
        raise ValidationError("html", "the HTML file is empty")
    with explained("push the template", TEMPLATE_PUSH):
        existing = await _find(client, name)
        if existing is None:
            made = await client.templates.create_template(name=name, html=html, text=text)
            return PushResult(made.id or "", name, "created")
        assert existing.id is not None
        attrs = existing.attributes
        same_text = text is None or attrs.get("text") == text
        if attrs.get("html") == html and same_text:
            return PushResult(existing.id, name, "unchanged")
        await client.templates.update_template(existing.id, html=html, text=text)
        return PushResult(existing.id, name, "updated")


async def render_template(
    client: AsyncClient, template_id: str, context: Mapping[str, Any] | None = None
) -> RenderedTemplate:
    """``template_id`` rendered by Klaviyo with ``context`` (missing variables render empty)."""
    if context is not None and not isinstance(context, Mapping):
        raise ValidationError("context", "must be a JSON object")
    with explained("render the template", TEMPLATE_RENDER):
        done = await client.templates.render_template(template_id, context=context or {})
    attrs = done.attributes
    return RenderedTemplate(template_id, attrs.get("html"), attrs.get("text"))
