"""A resource as the backend hands it to http/ for JSON:API serialisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from kbridge.emulator.backend.cache import BoundedCache

__all__ = ["KeptResources", "Linkage", "Rendered", "Resource"]

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


#: a kept serialisation: the base URL its links were made for, and the JSON bytes
Rendered = tuple[str, bytes]


class KeptResources(Sequence[Resource]):
    """Resources of one ``type``, built on demand from record ``keys``.

    Reading it (iterating, indexing) builds each resource afresh with
    ``build(key)``. http/ instead looks each key up in ``cache`` and serves
    the serialisation kept there, building, serialising and keeping only the
    others. The backend hands these out only for records that never change
    while their key is in ``cache``: it discards the key when one goes.

    The cache holds bytes, not resources: a hundred thousand kept resources
    would be millions of objects for every full garbage collection to walk.
    """

    __slots__ = ("build", "cache", "keys", "type")

    def __init__(
        self,
        rtype: str,
        keys: Sequence[int],
        build: Callable[[int], Resource],
        cache: BoundedCache[int, Rendered],
    ) -> None:
        self.type = rtype
        self.keys = keys
        self.build = build
        self.cache = cache

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> Resource: ...
    @overload
    def __getitem__(self, index: slice) -> list[Resource]: ...
    def __getitem__(self, index: int | slice) -> Resource | list[Resource]:
        if isinstance(index, slice):
            return [self.build(k) for k in self.keys[index]]
        return self.build(self.keys[index])
