"""A resource as the backend hands it to http/ for JSON:API serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Linkage", "Resource"]

#: Relationship linkage: ``None`` (to-one, empty), ``(type, id)`` (to-one), or a list (to-many).

Linkage = tuple[str, str] | list[tuple[str, str]] | None


@dataclass(slots=True)
class Resource:
    """``type``/``id``/``attributes`` as Klaviyo returns them; relationships by name.

    http/ adds ``links.self`` and each relationship's ``links.self``/``links.related``;
    a relationship whose name is in ``links_only`` is emitted without ``data``.
    """

    type: str
    id: str
    attributes: dict[str, Any]
    relationships: dict[str, Linkage] = field(default_factory=dict)
    links_only: tuple[str, ...] = ()
