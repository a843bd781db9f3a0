"""Serialise a backend :class:`Outcome` as Klaviyo's JSON:API document, generically.

The backend hands over plain resources; this module adds everything the
wire format needs (digest §1, §7, §9.4):

- each resource's ``links.self`` as an absolute URL with a trailing slash
  (``https://host/api/profiles/01H…/``), its collection path taken from the
  spec (``_spectables.RESOURCE_PATHS``);
- each relationship as ``{"data": linkage, "links": {"self": …/relationships/<name>/,
  "related": …/<name>/}}`` (``data`` left out for ``links_only`` names);
- sparse fieldsets ``fields[type]=a,b.c`` applied to attributes, dotted names
  selecting sub-fields;
- collection ``links.self/next/prev`` as absolute URLs that keep every original
  query parameter, URL-encoded, with only the cursor replaced (``null`` at the ends);
- ``included`` (deduplicated) when the backend gives related resources;
- no body at all for 204, or for 202 when there is no data.

A page of :class:`KeptResources` (events) is serialised resource by resource
(:meth:`RequestContext.render_kept`) and spliced in as ``orjson.Fragment`` objects,
keeping each resource's bytes in the backend's cache: serving it again costs a
lookup instead of building and serialising it. Those not kept yet come from the
backend as :class:`Flat` pieces written into a byte template, which is this
module's own rendering of a resource serialised with marker values (so both
paths give the same bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from kbridge.catalog import Operation
from kbridge.core import dumps
from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.resource import Flat, KeptResources, Linkage, Resource
from kbridge.emulator.http._spectables import RESOURCE_PATHS
from kbridge.emulator.http.errors import JSONAPI_CONTENT_TYPE
from kbridge.emulator.http.params import uses_page_cursor_parameter
from kbridge.emulator.query import Page

__all__ = ["FieldTree", "RequestContext", "compile_fields", "project", "render_outcome"]

#: A compiled sparse fieldset: ``True`` keeps a whole value, a dict selects sub-fields.
FieldTree = dict[str, "FieldTree | bool"]

_NO_BODY_STATUSES = frozenset({204, 304})

#: where a :class:`Flat` resource's pieces go in its template: the attributes object (a
#: marker string, quotes included, that it replaces), or an id inside a string
_MARKER = re.compile(rb'"\\u0000(1)\\u0000"|\\u0000([0-9]+)\\u0000')


def _mark(slot: int) -> str:
    """A marker orjson writes as ``\\u0000<slot>\\u0000``: no id or URL can hold it."""
    return f"\x00{slot}\x00"


def compile_fields(names: Sequence[str]) -> FieldTree:
    """``("email", "location.country")`` → ``{"email": True, "location": {"country": True}}``.

    A whole field wins over any of its sub-fields (``location`` and
    ``location.country`` keep all of ``location``).
    """
    tree: FieldTree = {}
    for name in names:
        node = tree
        parts = name.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            current = node.get(part)
            if current is True:
                break
            if last:
                node[part] = True
                break
            if not isinstance(current, dict):
                current = {}
                node[part] = current
            node = current
    return tree


def project(attributes: Mapping[str, Any], tree: FieldTree) -> dict[str, Any]:
    """The attributes that ``tree`` selects; absent names are simply left out."""
    out: dict[str, Any] = {}
    for name, sub in tree.items():
        if name not in attributes:
            continue
        value = attributes[name]
        if sub is True:
            out[name] = value
        elif isinstance(value, Mapping) and isinstance(sub, dict):
            out[name] = project(value, sub)
    return out


def _linkage(value: Linkage) -> Any:
    if value is None:
        return None
    if isinstance(value, tuple):
        return {"type": value[0], "id": value[1]}
    return [{"type": t, "id": i} for t, i in value]


class RequestContext:
    """What rendering needs from the request: base URL, path, query and sparse fieldsets."""

    __slots__ = (
        "_fields",
        "_paths",
        "_templates",
        "base_url",
        "path",
        "query_items",
        "raw_query",
    )

    def __init__(
        self,
        *,
        base_url: str,
        path: str,
        query_items: Sequence[tuple[str, str]] = (),
        raw_query: str = "",
        fields: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.query_items = list(query_items)
        self.raw_query = raw_query
        self._fields = {rtype: compile_fields(names) for rtype, names in (fields or {}).items()}
        self._paths: dict[str, str] = {}
        self._templates: dict[tuple[Any, ...], tuple[bytes, itemgetter[Any]]] = {}

    def self_url(self) -> str:
        url = self.base_url + self.path
        return f"{url}?{self.raw_query}" if self.raw_query else url

    def page_url(self, cursor: str | None, cursor_param: str) -> str | None:
        """This request's URL with the cursor replaced (or ``None`` at an end)."""
        if cursor is None:
            return None
        items = [(k, v) for k, v in self.query_items if k != cursor_param]
        items.append((cursor_param, cursor))
        return f"{self.base_url}{self.path}?{urlencode(items)}"

    def collection_url(self, rtype: str) -> str:
        url = self._paths.get(rtype)
        if url is None:
            url = self.base_url + RESOURCE_PATHS.get(rtype, f"/api/{rtype}s")
            self._paths[rtype] = url
        return url

    def render_kept(self, kept: KeptResources) -> list[bytes]:
        """Each of ``kept`` serialised: kept bytes where the cache has them for this base
        URL, else built, serialised and kept. A sparse fieldset on the type bypasses the
        cache both ways (it changes the attributes)."""
        if kept.type in self._fields:
            return [dumps(self.resource(res)) for res in kept]
        cache, base = kept.cache, self.base_url
        out: list[bytes] = []
        missed: list[int] = []  # positions in out still to fill
        for key in kept.keys:
            hit = cache.get(key)
            if hit is not None and hit[0] == base:
                out.append(hit[1])
            else:
                missed.append(len(out))
                out.append(b"")
        if not missed:
            return out
        keys = [kept.keys[at] for at in missed]
        flat = kept.flat
        if flat is not None:
            template, order = self._flat_template(kept.type, flat)
            bodies = [template % order(pieces) for pieces in flat.build(keys)]
        else:
            bodies = [dumps(self.resource(kept.build(key))) for key in keys]
        for at, key, body in zip(missed, keys, bodies, strict=True):
            cache.put(key, (base, body))
            out[at] = body
        return out

    def _flat_template(self, rtype: str, flat: Flat) -> tuple[bytes, itemgetter[Any]]:
        """A ``%``-template of one resource's document for this request, and what takes
        a :data:`FlatResource`'s pieces into its slots' order.

        The template is :meth:`resource` itself serialised with marker values, so the
        fast path writes the same keys, order, links and escaping as the generic one.
        """
        key = (rtype, flat.to_one, flat.links_only)
        made = self._templates.get(key)
        if made is not None:
            return made
        rels: dict[str, Linkage] = {
            name: (related, _mark(k + 2)) for k, (name, related) in enumerate(flat.to_one)
        }
        doc = self.resource(Resource(rtype, _mark(0), {}, rels, flat.links_only))
        doc["attributes"] = _mark(1)
        raw = dumps(doc).replace(b"%", b"%%")
        slots = [int(m[1] or m[2]) for m in _MARKER.finditer(raw)]
        template = _MARKER.sub(b"%s", raw)
        # (always 3 slots or more: id, attributes and links.self, so a tuple comes back)
        made = (template, itemgetter(*slots))
        self._templates[key] = made
        return made

    def resource(self, res: Resource) -> dict[str, Any]:
        self_url = f"{self.collection_url(res.type)}/{res.id}/"
        tree = self._fields.get(res.type)
        attributes = res.attributes if tree is None else project(res.attributes, tree)
        doc: dict[str, Any] = {"type": res.type, "id": res.id, "attributes": attributes}
        if res.relationships or res.links_only:
            rels: dict[str, Any] = {}
            for name, linkage in res.relationships.items():
                rels[name] = {
                    # a to-one pair inline: two per event on every cold events page
                    "data": {"type": linkage[0], "id": linkage[1]}
                    if isinstance(linkage, tuple)
                    else _linkage(linkage),
                    "links": {
                        "self": f"{self_url}relationships/{name}/",
                        "related": f"{self_url}{name}/",
                    },
                }
            for name in res.links_only:
                rels[name] = {
                    "links": {
                        "self": f"{self_url}relationships/{name}/",
                        "related": f"{self_url}{name}/",
                    }
                }
            doc["relationships"] = rels
        doc["links"] = {"self": self_url}
        return doc


def _cursor_param(operation: Operation) -> str:
    return "page_cursor" if uses_page_cursor_parameter(operation) else "page[cursor]"


def _dedupe(resources: Sequence[Resource]) -> list[Resource]:
    seen: set[tuple[str, str]] = set()
    out: list[Resource] = []
    for res in resources:
        key = (res.type, res.id)
        if key not in seen:
            seen.add(key)
            out.append(res)
    return out


def render_outcome(outcome: Outcome, operation: Operation, ctx: RequestContext) -> Response:
    """The HTTP response for ``outcome`` (status from it or the operation's success status)."""
    status = outcome.status or operation.success_status
    headers = {"content-type": JSONAPI_CONTENT_TYPE}
    if outcome.raw_body is not None:
        return Response(outcome.raw_body, status_code=status, headers=headers)
    data = outcome.data
    if status in _NO_BODY_STATUSES or (data is None and not outcome.null_data):
        return Response(status_code=status)

    def one(res: Resource) -> dict[str, Any]:
        if outcome.identifiers_only:
            return {"type": res.type, "id": res.id}
        return ctx.resource(res)

    links: dict[str, Any] = {"self": ctx.self_url()}
    body: dict[str, Any]
    if isinstance(data, Page):
        param = _cursor_param(operation)
        links["next"] = ctx.page_url(data.next_cursor, param)
        links["prev"] = ctx.page_url(data.prev_cursor, param)
        items = data.items
        if isinstance(items, KeptResources) and not outcome.identifiers_only:
            docs: list[Any] = [orjson.Fragment(b) for b in ctx.render_kept(items)]
        else:
            docs = [one(r) for r in items]
        body = {"data": docs, "links": links}
    elif isinstance(data, list):
        body = {"data": [one(r) for r in data], "links": links}
    elif data is None:
        body = {"data": None, "links": links}
    else:
        body = {"data": one(data), "links": links}
    if outcome.included:
        body["included"] = [ctx.resource(r) for r in _dedupe(outcome.included)]
    if outcome.meta:
        body["meta"] = outcome.meta
    return Response(dumps(body), status_code=status, headers=headers)
