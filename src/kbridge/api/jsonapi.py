"""JSON:API in and out: request documents from plain values, responses to resources.

Klaviyo speaks JSON:API: ``{"data": {type, id, attributes, relationships}}``
going in, and ``{"data", "included", "links", "meta"}`` coming out. Callers
should not have to build that nesting or look up ``included`` by hand:
:func:`build_document` does the former and :meth:`Resource.related` the latter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kbridge.core import ConfigurationError
from kbridge.core.jsoncodec import JSONDecodeError, loads

__all__ = [
    "Document",
    "Resource",
    "ResourceRef",
    "build_document",
    "decode_document",
    "identifiers",
    "next_link",
]

ResourceRef = tuple[str, str]
"""``(type, id)``: how a relationship points at a resource."""

_Index = Mapping[ResourceRef, "Resource"]


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource object. ``related(name)`` resolves a relationship through ``included``."""

    type: str
    id: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    relationships: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    _index: _Index = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def ref(self) -> ResourceRef:
        return (self.type, self.id or "")

    def __getitem__(self, name: str) -> Any:
        """``resource["email"]`` reads an attribute."""
        return self.attributes[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def relationship_refs(self, name: str) -> list[ResourceRef]:
        """The ``(type, id)`` linkage of relationship ``name`` (empty if absent or null)."""
        rel = self.relationships.get(name)
        data = rel.get("data") if isinstance(rel, Mapping) else None
        items = data if isinstance(data, list) else ([data] if isinstance(data, Mapping) else [])
        return [
            (str(i["type"]), str(i["id"]))
            for i in items
            if isinstance(i, Mapping) and "type" in i and "id" in i
        ]

    def related(self, name: str) -> list[Resource]:
        """The resources relationship ``name`` points to, full when they were ``included``.

        A linked resource that was not included comes back with only its type
        and id, so code can still follow the link.
        """
        return [
            self._index.get(ref) or Resource(ref[0], ref[1]) for ref in self.relationship_refs(name)
        ]

    def related_one(self, name: str) -> Resource | None:
        """The single resource of a to-one relationship, or ``None``."""
        found = self.related(name)
        return found[0] if found else None


class Document:
    """A decoded top-level response document.

    Built by :func:`decode_document`, it keeps the decoded body and makes its
    :class:`Resource` objects only when ``data``/``included``/``resources`` are first
    read: bulk readers (the sync) take :attr:`records`, the plain resource objects as
    decoded, and never pay for a ``Resource`` per record.
    """

    __slots__ = ("__weakref__", "_body", "_data", "_included", "_ready", "links", "meta")

    links: Mapping[str, Any]
    meta: Mapping[str, Any]

    def __init__(
        self,
        data: Resource | tuple[Resource, ...] | None,
        included: tuple[Resource, ...] = (),
        links: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._body: Mapping[str, Any] | None = None
        self._data = data
        self._included = included
        self._ready = True
        self.links = links if links is not None else {}
        self.meta = meta if meta is not None else {}

    @classmethod
    def _lazy(cls, body: Mapping[str, Any]) -> Document:
        doc = cls(None, (), _members(body.get("links")), _members(body.get("meta")))
        doc._body, doc._ready = body, False
        return doc

    def _build(self) -> None:
        body = self._body
        assert body is not None
        index: dict[ResourceRef, Resource] = {}
        included = tuple(
            _resource(o, index) for o in body.get("included") or () if isinstance(o, Mapping)
        )
        raw = body.get("data")
        data: Resource | tuple[Resource, ...] | None
        if isinstance(raw, list):
            data = tuple(_resource(o, index) for o in raw if isinstance(o, Mapping))
            index.update((r.ref, r) for r in data)
        elif isinstance(raw, Mapping):
            data = _resource(raw, index)
            index[data.ref] = data
        else:
            data = None
        index.update((r.ref, r) for r in included)
        self._data, self._included, self._ready = data, included, True

    @property
    def data(self) -> Resource | tuple[Resource, ...] | None:
        if not self._ready:
            self._build()
        return self._data

    @property
    def included(self) -> tuple[Resource, ...]:
        if not self._ready:
            self._build()
        return self._included

    @property
    def records(self) -> tuple[Mapping[str, Any], ...]:
        """``data``'s resource objects as decoded (plain mappings; non-objects skipped).

        The fast path for bulk readers: no :class:`Resource` is built. A value that is
        not an object (``attributes``: null, say) is as the server sent it, so readers
        check shapes themselves.
        """
        if self._body is None:
            return tuple(_as_record(r) for r in self.resources)
        raw = self._body.get("data")
        if isinstance(raw, list):
            return tuple(o for o in raw if isinstance(o, Mapping))
        return (raw,) if isinstance(raw, Mapping) else ()

    @property
    def resources(self) -> tuple[Resource, ...]:
        """``data`` as a tuple, whether it held one resource, many or none."""
        data = self.data
        if data is None:
            return ()
        return data if isinstance(data, tuple) else (data,)

    @property
    def first(self) -> Resource | None:
        """The single resource, or the first of a collection; ``None`` when there is none."""
        resources = self.resources
        return resources[0] if resources else None

    @property
    def next_url(self) -> str | None:
        """``links.next`` when present and not null: the next page, exactly as given."""
        value = self.links.get("next")
        return value if isinstance(value, str) and value else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return (self.data, self.included, self.links, self.meta) == (
            other.data,
            other.included,
            other.links,
            other.meta,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside, as before

    def __repr__(self) -> str:
        return (
            f"Document(data={self.data!r}, included={self.included!r}, "
            f"links={self.links!r}, meta={self.meta!r})"
        )


def _as_record(r: Resource) -> Mapping[str, Any]:
    return {
        "type": r.type,
        "id": r.id,
        "attributes": r.attributes,
        "relationships": r.relationships,
        "links": r.links,
        "meta": r.meta,
    }


def _members(value: Any) -> Mapping[str, Any]:
    """A member that should be an object; null (or a shape Klaviyo may yet invent) is empty,
    so one odd resource cannot fail a page."""
    return value if isinstance(value, Mapping) else {}


def _resource(obj: Mapping[str, Any], index: _Index) -> Resource:
    return Resource(
        type=str(obj.get("type", "")),
        id=None if obj.get("id") is None else str(obj["id"]),
        attributes=_members(obj.get("attributes")),
        relationships=_members(obj.get("relationships")),
        links=_members(obj.get("links")),
        meta=_members(obj.get("meta")),
        _index=index,
    )


def decode_document(body: Any) -> Document:
    """A :class:`Document` from a decoded JSON body; ``included`` indexed for ``related()``.

    Resources are made on first use and keep a reference to one shared index, so
    resolving a relationship costs a dictionary lookup, and a page's index is freed
    with the page.
    """
    if not isinstance(body, Mapping):
        return Document(data=None)
    return Document._lazy(body)


RelationshipValue = Resource | ResourceRef | Mapping[str, Any] | Sequence[Any] | None


def _linkage(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Resource):
        return {"type": value.type, "id": value.id}
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"type": value[0], "id": value[1]}
    if isinstance(value, Mapping) and "type" in value and "id" in value:
        return {"type": value["type"], "id": value["id"]}
    raise ConfigurationError(
        f"relationship {name!r}: give a Resource, a (type, id) tuple or a {{'type', 'id'}} mapping,"
        f" not {type(value).__name__}"
    )


def _relationship(name: str, value: RelationshipValue) -> dict[str, Any]:
    if isinstance(value, list):
        return {"data": [_linkage(name, v) for v in value]}
    return {"data": _linkage(name, value)}


def build_document(
    type: str,
    *,
    attributes: Mapping[str, Any] | None = None,
    relationships: Mapping[str, RelationshipValue] | None = None,
    id: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A request body ``{"data": {...}}`` from plain values.

    A relationship value may be one ref (to-one), a *list* of refs (to-many;
    an empty list clears it) or ``None`` (clears a to-one). A ref is a
    :class:`Resource`, a ``(type, id)`` tuple or a ``{"type", "id"}`` mapping.
    """
    if not type:
        raise ConfigurationError("build_document: the resource type is required")
    data: dict[str, Any] = {"type": type}
    if id is not None:
        data["id"] = id
    data["attributes"] = dict(attributes or {})
    if relationships:
        data["relationships"] = {k: _relationship(k, v) for k, v in relationships.items()}
    if meta:
        data["meta"] = dict(meta)
    return {"data": data}


def identifiers(type: str, ids: Iterable[str]) -> dict[str, Any]:
    """A relationship-endpoint body: ``{"data": [{"type": type, "id": id}, ...]}``."""
    return {"data": [{"type": type, "id": i} for i in ids]}


_LINKS_KEY = b'"links":'


def next_link(body: bytes) -> str | None:
    """A JSON:API body's top-level ``links.next`` without decoding its resources.

    A page of 1,000 events is ~10,000 Python objects to decode; its pagination link
    sits in a small top-level ``links`` object, which Klaviyo writes after ``data``.
    The last ``"links":`` in the body is read as ``{"links": …}`` up to the end: that
    parses only when it is the top-level member (a nested one leaves the brackets of
    its enclosing objects unmatched, and escaped text inside strings cannot match).
    Anything else, including a body that is not JSON, falls back to decoding it whole.
    Raises :class:`~kbridge.core.jsoncodec.JSONDecodeError` for a body that is not JSON.
    """
    at = body.rfind(_LINKS_KEY)
    tail: Any = None
    if at > 0:
        try:
            tail = loads(b"{" + body[at:])
        except JSONDecodeError:
            tail = None
    if not isinstance(tail, dict):
        tail = loads(body)
    links = tail.get("links") if isinstance(tail, dict) else None
    value = links.get("next") if isinstance(links, dict) else None
    return value if isinstance(value, str) and value else None
