"""What every per-tag backend shares: the context, body parsing, listing helpers."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.filtering import compile_conditions
from kbridge.emulator.backend.ids import parse_iso
from kbridge.emulator.backend.paging import Key, paginate
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.store import Store
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.query import Condition, Page, Query
from kbridge.emulator.simclock import SimClock

if TYPE_CHECKING:
    from array import array

    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.campaigns import CampaignsBackend
    from kbridge.emulator.backend.flows import FlowsBackend
    from kbridge.emulator.backend.images import ImagesBackend
    from kbridge.emulator.backend.jobs import JobsBackend
    from kbridge.emulator.backend.outbox import Outbox
    from kbridge.emulator.backend.segments import SegmentsBackend
    from kbridge.emulator.backend.tags import TagsBackend
    from kbridge.emulator.backend.templates import TemplateRecord

__all__ = [
    "Context",
    "TagBackend",
    "attributes_of",
    "data_of",
    "existing",
    "include_tags",
    "page_of",
    "page_outcome",
    "related_page",
    "relationship_ids",
    "required_jobs",
]


@dataclass
class Context:
    """Shared by the per-tag backends of one emulator."""

    store: Store
    clock: SimClock
    config: EmulatorConfig
    #: The backends that others reach into, each set by itself (or EmulatorBackend) once
    #: built: profiles need segment membership for includes, campaigns and events run jobs,
    #: tags link campaigns and flows, reporting maps message ids through campaigns.
    segments: SegmentsBackend | None = None
    jobs: JobsBackend | None = None
    campaigns: CampaignsBackend | None = None
    flows: FlowsBackend | None = None
    images: ImagesBackend | None = None
    tags: TagsBackend | None = None
    #: sent campaign emails and verified senders (made on first use: see ``outbox_of``)
    outbox: Outbox | None = None
    #: the account's templates, shared by the templates and campaigns backends
    templates: dict[str, TemplateRecord] = field(default_factory=dict)
    #: group members sorted by join time, per (operation, group id): see lists.members_page
    member_order: dict[Any, tuple[Any, array[int]]] = field(default_factory=dict)
    #: called with each event index stored through the API or a bulk job (flows trigger on it)
    on_event: list[Callable[[int], None]] = field(default_factory=list)
    #: called by ``run_due()`` after the jobs: other scheduled work (flow emails, deletions)
    on_due: list[Callable[[], None]] = field(default_factory=list)

    def now(self) -> float:
        return self.clock.now().timestamp()


def required_jobs(ctx: Context) -> JobsBackend:
    """The jobs backend, which EmulatorBackend builds before every backend that queues work."""
    if ctx.jobs is None:
        raise RuntimeError("the jobs backend must be built before the backends that use it")
    return ctx.jobs


class TagBackend:
    """Base of the per-tag backends: methods are named after Klaviyo operation ids."""

    #: operation ids this backend serves
    operations: frozenset[str] = frozenset()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def store(self) -> Store:
        return self.ctx.store

    def path_id(self, call: Call, name: str = "id") -> str:
        value = call.path_params.get(name)
        if not value:
            raise InvalidError(f"missing path parameter {name!r}", parameter=name)
        return value


def data_of(body: Any, expected_type: str) -> dict[str, Any]:
    """``body["data"]`` as an object of ``expected_type``, or a 400 naming what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise InvalidError(
            "the request body must be a JSON:API document with a data object", pointer="/data"
        )
    data: dict[str, Any] = body["data"]
    if data.get("type") != expected_type:
        raise InvalidError(
            f"data.type must be {expected_type!r}, not {data.get('type')!r}", pointer="/data/type"
        )
    return data


def attributes_of(data: dict[str, Any], pointer: str = "/data/attributes") -> dict[str, Any]:
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        raise InvalidError("attributes must be an object", pointer=pointer)
    return attrs


def relationship_ids(data: dict[str, Any], name: str, rtype: str, *, many: bool) -> list[str]:
    """Ids in ``data.relationships[name].data`` (empty when absent)."""
    rels = data.get("relationships") or {}
    rel = rels.get(name) if isinstance(rels, dict) else None
    if rel is None:
        return []
    linkage = rel.get("data") if isinstance(rel, dict) else None
    items = linkage if many and isinstance(linkage, list) else [linkage]
    ids: list[str] = []
    for k, item in enumerate(items):
        if item is None and not many:
            continue
        ptr = f"/data/relationships/{name}/data" + (f"/{k}" if many else "")
        if not isinstance(item, dict) or item.get("type") != rtype or not item.get("id"):
            raise InvalidError(f"expected a {{type: {rtype!r}, id}} linkage", pointer=ptr)
        ids.append(str(item["id"]))
    return ids


def identifier_list(body: Any, rtype: str) -> list[str]:
    """Ids from a relationship-edit body ``{"data": [{type, id}, …]}``."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise InvalidError('the body must be {"data": [{"type", "id"}, …]}', pointer="/data")
    ids: list[str] = []
    for k, item in enumerate(body["data"]):
        if not isinstance(item, dict) or item.get("type") != rtype or not item.get("id"):
            raise InvalidError(f"expected a {{type: {rtype!r}, id}} linkage", pointer=f"/data/{k}")
        ids.append(str(item["id"]))
    return ids


def timestamp_attr(value: Any, pointer: str) -> float:
    if not isinstance(value, str):
        raise InvalidError("expected an ISO 8601 datetime string", pointer=pointer)
    try:
        return parse_iso(value)
    except ValueError:
        raise InvalidError(f"{value!r} is not an ISO 8601 datetime", pointer=pointer) from None


def page_of(
    call: Call,
    ordered: Sequence[int],
    key: Callable[[int], Key],
    getters: dict[str, Callable[[int], Any]],
    *,
    alive: Callable[[int], bool] | None = None,
    lo: int = 0,
    hi: int | None = None,
    descending: bool | None = None,
    conditions: tuple[Condition, ...] | None = None,
) -> Page[int]:
    """Filter ``ordered`` by the call's conditions and serve the requested page.

    ``conditions`` replaces the call's when the caller already enforced some of
    them through its choice of index and bounds (the cursor scope still
    covers them all).
    """
    q: Query = call.query
    predicate = compile_conditions(q.conditions if conditions is None else conditions, getters)
    accept: Callable[[int], bool] | None
    if predicate is not None and alive is not None:
        pred, live = predicate, alive

        def accept(rec: int) -> bool:
            return live(rec) and pred(rec)
    else:
        accept = predicate or alive
    op = call.operation
    size = q.page_size or op.default_page_size or op.max_page_size or 20
    scope = scope_of(call)
    desc = q.sort.descending if descending is None and q.sort is not None else bool(descending)
    return paginate(
        ordered,
        key,
        accept,
        page_size=size,
        cursor=q.cursor,
        scope=scope,
        descending=desc,
        lo=lo,
        hi=hi,
    )


def page_outcome(
    page: Page[int],
    render: Callable[[int], Resource],
    *,
    included: list[Resource] | None = None,
    identifiers_only: bool = False,
) -> Outcome:
    """``page`` (of record numbers) as the answer: each record as ``render`` gives it."""
    return Outcome(
        data=Page(
            items=[render(s) for s in page.items],
            next_cursor=page.next_cursor,
            prev_cursor=page.prev_cursor,
        ),
        included=[] if included is None else included,
        identifiers_only=identifiers_only,
    )


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_R = TypeVar("_R", bound=_Identified)


def related_page(
    page: Page[int],
    records: Mapping[int, _R],
    rtype: str,
    render: Callable[[_R], Resource],
    *,
    ids_only: bool,
    included: list[Resource] | None = None,
) -> Outcome:
    """A relationship endpoint's page: the ``records`` as resources, or only their ids.

    The ``…-ids`` twin of a related-resources operation answers ``{type, id}``, so
    it skips rendering.
    """
    if ids_only:
        return page_outcome(
            page, lambda s: Resource(rtype, records[s].id, {}), identifiers_only=True
        )
    return page_outcome(page, lambda s: render(records[s]), included=included)


def scope_of(call: Call) -> str:
    """What a cursor is valid for: the operation, its path, sort and filter."""
    q = call.query
    basis = repr((sorted(call.path_params.items()), str(q.sort), q.conditions))
    return f"{call.operation.operation_id}:{zlib.crc32(basis.encode()):08x}"


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: whether a string is an email address / an E.164 number, as check_email/check_phone judge
is_email = _EMAIL.match
is_phone = _E164.match


def check_email(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise InvalidError(f"Invalid email address: {value!r}", pointer=pointer)
    return value


def check_phone(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not _E164.match(value):
        raise InvalidError(
            f"Invalid phone number: {value!r}; use E.164 format such as +15005550006",
            pointer=pointer,
        )
    return value


def not_found(kind: str, ident: str) -> NotFoundError:
    return NotFoundError(f"A {kind} with id {ident!r} does not exist.")


_V = TypeVar("_V")


def existing(records: Mapping[str, _V], kind: str, ident: str) -> _V:
    """The record ``ident`` of ``records``, or Klaviyo's 404 for a ``kind`` it does not have."""
    record = records.get(ident)
    if record is None:
        raise not_found(kind, ident)
    return record


def include_tags(ctx: Context, resources: Sequence[Resource], query: Query) -> list[Resource]:
    """``include=tags``: give each resource its ``tags`` linkage and return the tags to
    include (once each). Without the include the relationship stays links-only."""
    tags = ctx.tags
    if tags is None or "tags" not in query.include:
        return []
    included: dict[str, Resource] = {}
    for r in resources:
        linked = tags.tags_of(r.type, r.id)
        r.relationships["tags"] = [("tag", t.id) for t in linked]
        r.links_only = tuple(name for name in r.links_only if name != "tags")
        for t in linked:
            if t.id not in included:
                included[t.id] = tags.tag_resource(t)
    return list(included.values())
