"""A resource as the backend hands it to http/ for JSON:API serialisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from kbridge.emulator.backend.cache import BoundedCache

__all__ = ["Flat", "FlatResource", "KeptResources", "Linkage", "Rendered", "Resource"]

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

#: a resource in wire pieces: its id, its ``attributes`` object as JSON bytes, then the id
#: of each of :attr:`Flat.to_one` in order; ids as they appear inside a JSON string (escaped)
FlatResource = tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Flat:
    """A cheaper way to a page of resources of one shape than :class:`Resource` objects.

    Every resource has the relationships ``to_one`` (name, related type; never
    empty) and ``links_only``, so http/ can write their links around the
    pieces ``build(keys)`` returns, one :data:`FlatResource` per key, instead
    of building and serialising nested dicts per resource: on a cold page of
    1000 events that was most of the server time. The bytes must be those of
    :class:`Resource` ``build`` on the generic path (tests hold them equal).
    """

    to_one: tuple[tuple[str, str], ...]
    links_only: tuple[str, ...]
    build: Callable[[Sequence[int]], list[FlatResource]]


class KeptResources(Sequence[Resource]):
    """Resources of one ``type``, built on demand from record ``keys``.

    Reading it (iterating, indexing) builds each resource afresh with
    ``build(key)``. http/ instead looks each key up in ``cache`` and serves
    the serialisation kept there, building (through ``flat`` when given),
    serialising and keeping only the others. The backend hands these out only
    for records that never change while their key is in ``cache``: it discards
    the key when one goes.

    The cache holds bytes, not resources: a hundred thousand kept resources
    would be millions of objects for every full garbage collection to walk.
    """

    __slots__ = ("build", "cache", "flat", "keys", "type")

    def __init__(
        self,
        rtype: str,
        keys: Sequence[int],
        build: Callable[[int], Resource],
        cache: BoundedCache[int, Rendered],
        flat: Flat | None = None,
    ) -> None:
        self.type = rtype
        self.keys = keys
        self.build = build
        self.cache = cache
        self.flat = flat

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
