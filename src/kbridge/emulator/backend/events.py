"""Events: list/get from the columnar store, and create (single or bulk).

Reading pages is the hot path (2M events): the candidate order comes from an
index (per profile, per metric, or global by time), datetime ranges are
resolved by bisection, and only the served events are turned into JSON
(straight to bytes on a first read: :meth:`EventsBackend.event_flats`).
The default order is ascending ``datetime`` (Klaviyo does not document one).
``unique_id`` de-duplicates per (metric, profile, unique_id) for events
received through the API; a repeat is accepted (202) and dropped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from kbridge.core import dumps
from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    not_found,
    page_of,
    required_jobs,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.filtering import condition_value, range_bounds
from kbridge.emulator.backend.ids import base62_id, event_ids, iso, isos
from kbridge.emulator.backend.models import MetricRecord, ProfileRecord
from kbridge.emulator.backend.profiles import (
    apply_attributes,
    profile_resource,
    validate_profile_payload,
)
from kbridge.emulator.backend.resource import Flat, FlatResource, KeptResources, Resource
from kbridge.emulator.backend.vocabulary import (
    INTEGRATIONS,
    event_properties,
    event_properties_json,
)
from kbridge.emulator.query import Condition, Page, Query

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["EventsBackend", "ParsedEvent", "resolve_profile"]

MAX_BULK_EVENTS = 1000
MAX_BULK_BYTES = 5 * 1024 * 1024
YEAR = 365 * 86400.0

_EVENT_IDENTIFIERS = frozenset({"email", "phone_number", "external_id", "anonymous_id", "_kx"})

ParsedEvent = tuple[float, str, float, dict[str, Any], str | None]


def resolve_profile(ctx: Context, pdata: Any, pointer: str) -> ProfileRecord:
    """The profile an event or subscription names: by id, else by identifiers; created if new."""
    if not isinstance(pdata, dict):
        raise InvalidError("profile data must be an object", pointer=pointer)
    attrs = pdata.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InvalidError("profile attributes must be an object", pointer=f"{pointer}/attributes")
    store = ctx.store
    if pdata.get("id"):
        p = store.profile(str(pdata["id"]))
        if p is None:
            raise InvalidError(f"profile {pdata['id']!r} does not exist", pointer=f"{pointer}/id")
        return p
    if not any(attrs.get(f) for f in ("email", "phone_number", "external_id", "anonymous_id")):
        raise InvalidError(
            "the profile needs an id or an identifier (email, phone_number, external_id)",
            pointer=f"{pointer}/attributes",
        )
    validate_profile_payload(pdata, attrs, require_identifier=False, base=pointer)
    now = ctx.now()
    for field in ("email", "phone_number", "external_id"):
        value = attrs.get(field)
        if isinstance(value, str):
            found = store.find_identifier(field, value)
            if found is not None:
                # The event may also update the profile; identifiers stay as they are
                # (changing them here could collide with another profile).
                update = {k: v for k, v in attrs.items() if k not in _EVENT_IDENTIFIERS}
                if update:
                    store.change_profile(
                        found, now, partial(apply_attributes, found, update, pdata)
                    )
                return found
    p = store.new_profile(now)
    known = {k: v for k, v in attrs.items() if k not in ("anonymous_id", "_kx")}
    store.change_profile(p, now, lambda: apply_attributes(p, known, pdata))
    return p


#: an event's relationships, as :meth:`EventsBackend.event_resource` gives them
_EVENT_TO_ONE = (("profile", "profile"), ("metric", "metric"))
_EVENT_LINKS_ONLY = ("attributions",)
#: an event's attributes as :meth:`EventsBackend.event_resource` orders them, for
#: :meth:`EventsBackend.event_flats` (the uuid in :func:`_uuid`'s layout)
_EVENT_ATTRIBUTES = (
    b'{"timestamp":%d,"event_properties":%s,"datetime":"%s","uuid":"%s-%s-4%s-a%s-%s"}'
)


def _json_string(text: str) -> bytes:
    """``text`` as it appears between the quotes of a JSON string (orjson's escaping)."""
    return orjson.dumps(text)[1:-1]


def _uuid(seed: int, i: int) -> str:
    """A stable UUID-shaped string per event (display only: two multiplicative hashes)."""
    a = ((i + 1) * 0x9E3779B97F4A7C15 ^ seed * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    b = (a * 0xD6E8FEB86659FD93 + i) & 0xFFFFFFFFFFFFFFFF
    # the 32 hex digits of a then b: one conversion in C, not two formats
    h = (a << 64 | b).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class EventsBackend(TagBackend):
    operations = frozenset(
        {
            "get_events",
            "get_event",
            "create_event",
            "bulk_create_events",
            "get_metric_for_event",
            "get_profile_for_event",
            "get_metric_id_for_event",
            "get_profile_id_for_event",
        }
    )

    # -- serialisation ----------------------------------------------------------------

    def event_resource(self, i: int) -> Resource:
        store = self.store
        ev = store.events
        ts, m = ev.ts[i], ev.metric[i]
        if i < ev.generated:
            props, _ = event_properties(store.seed, i, m, ev.aux[i], ev.value[i])
        else:
            stored, _ = ev.extra.get(i, ({}, None))
            props = dict(stored)
        attrs = {
            "timestamp": int(ts),
            "event_properties": props,
            "datetime": iso(ts),
            "uuid": _uuid(store.seed, i),
        }
        return Resource(
            "event",
            store.event_id(i),
            attrs,
            relationships={
                "profile": ("profile", store.profiles[ev.profile[i]].id),
                "metric": ("metric", store.metrics[m].id),
            },
            links_only=_EVENT_LINKS_ONLY,
        )

    def event_flats(self, keys: Sequence[int]) -> list[FlatResource]:
        """Events ``keys`` in wire pieces (:class:`Flat`), the same bytes as
        :meth:`event_resource` serialised: the cold events page's hot loop, so
        columns and helpers are bound once and nothing but bytes is built."""
        store = self.store
        ev = store.events
        seed, generated, extra = store.seed, ev.generated, ev.extra
        ts_col, metric_col, profile_col = ev.ts, ev.metric, ev.profile
        aux_col, value_col = ev.aux, ev.value
        profiles = store.profiles
        # ids are escaped as orjson would inside a string; metrics are few, so once per page
        metric_ids = [_json_string(m.id) for m in store.metrics]
        props_json, mask64 = event_properties_json, 0xFFFFFFFFFFFFFFFF
        seed_mix = seed * 0xBF58476D1CE4E5B9
        out: list[FlatResource] = []
        append = out.append
        ids, whens = event_ids(ts_col, keys, seed), isos(ts_col, keys)
        for i, eid, when in zip(keys, ids, whens, strict=True):
            m = metric_col[i]
            if i < generated:
                props = props_json(seed, i, m, aux_col[i], value_col[i])
            else:
                props = dumps(extra.get(i, ({}, None))[0])
            # _uuid's hashes, written straight into the bytes
            a = ((i + 1) * 0x9E3779B97F4A7C15 ^ seed_mix) & mask64
            h = (a << 64 | (a * 0xD6E8FEB86659FD93 + i) & mask64).to_bytes(16, "big").hex().encode()
            attrs = _EVENT_ATTRIBUTES % (
                int(ts_col[i]),
                props,
                when,
                h[:8],
                h[8:12],
                h[13:16],
                h[17:20],
                h[20:],
            )
            append((eid, attrs, _json_string(profiles[profile_col[i]].id), metric_ids[m]))
        return out

    def _attributed(self, events: Sequence[int]) -> tuple[list[Resource], list[Resource]]:
        """``events`` with their ``attributions`` linkage, and the attribution records."""
        from kbridge.emulator.backend.attributions import attribution_of

        resources: list[Resource] = []
        records: list[Resource] = []
        for i in events:
            res = self.event_resource(i)
            record = attribution_of(self.ctx, i)
            linkage: list[tuple[str, str]] = []
            if record is not None:
                records.append(record)
                linkage.append(("attribution", record.id))
            res.relationships["attributions"] = linkage
            res.links_only = ()
            resources.append(res)
        return resources, records

    def _included(self, events: Sequence[int], query: Query) -> list[Resource]:
        from kbridge.emulator.backend.metrics import metric_resource

        store = self.store
        out: list[Resource] = []
        if "metric" in query.include:
            for m in sorted({store.events.metric[i] for i in events}):
                out.append(metric_resource(store.metrics[m]))
        if "profile" in query.include:
            seen: set[int] = set()
            for i in events:
                p = store.events.profile[i]
                if p not in seen:
                    seen.add(p)
                    out.append(profile_resource(store.profiles[p], None))
        return out

    # -- reads -----------------------------------------------------------------

    def get_events(self, call: Call) -> Outcome:
        store, q = self.store, call.query
        ev = store.events
        ordered, settled = self._candidates(q)
        sort_field = q.sort.field if q.sort is not None else "datetime"
        if sort_field not in ("datetime", "timestamp"):
            raise InvalidError(f"cannot sort events by {sort_field!r}", parameter="sort")
        lo, hi = 0, len(ordered)
        ts_key = ev.ts.__getitem__
        for name in ("datetime", "timestamp"):
            low, low_inc, high, high_inc = range_bounds(q.conditions, name)
            if low is not None:
                b = bisect_left if low_inc else bisect_right
                lo = max(lo, b(ordered, low, key=ts_key))
            if high is not None:
                b = bisect_right if high_inc else bisect_left
                hi = min(hi, b(ordered, high, key=ts_key))
        P, M = store.profiles, store.metrics
        getters: dict[str, Callable[[int], Any]] = {
            "metric_id": lambda i: M[ev.metric[i]].id,
            "profile_id": lambda i: P[ev.profile[i]].id,
            "profile": lambda i: True,
            "metric": lambda i: True,
            "datetime": ts_key,
            "timestamp": ts_key,
        }
        # Conditions the index choice and the bisection already guarantee need no re-check.
        remaining = tuple(
            c
            for c in q.conditions
            if c not in settled
            and not (
                c.field in ("datetime", "timestamp") and not c.negated and c.operator != "equals"
            )
            and not (c.operator == "has" and not c.negated)
        )
        page = page_of(
            call, ordered, store.event_key, getters, lo=lo, hi=max(lo, hi), conditions=remaining
        )
        if "attributions" in q.include:
            # the linkage changes the events' bytes: the generic path, not the kept ones
            events, records = self._attributed(page.items)
            return Outcome(
                data=Page(items=events, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
                included=records + self._included(page.items, q),
            )
        # Events never change, so a page served again (paging walkers, retries) is
        # mostly kept bytes; building and serialising 1000 events is what costs.
        items = KeptResources(
            "event",
            page.items,
            self.event_resource,
            store.event_json,
            Flat(_EVENT_TO_ONE, _EVENT_LINKS_ONLY, self.event_flats),
        )
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
            included=self._included(page.items, q),
        )

    def _candidates(self, q: Query) -> tuple[Sequence[int], tuple[Condition, ...]]:
        """The narrowest time-ordered index the equality filters allow, and the
        conditions that index satisfies by construction."""
        store = self.store
        pc = q.condition("profile_id", "equals")
        if pc is not None and not pc.negated:
            seq = store.by_id.get(str(pc.value))
            found = store.events_by_profile.get(seq, ()) if seq is not None else ()
            return found, (pc,)
        mc = q.condition("metric_id", "equals")
        if mc is not None and not mc.negated and not isinstance(mc.value, tuple):
            m = store.metric_by_id.get(str(condition_value(mc.value)))
            return (store.events_by_metric.get(m.index, ()) if m is not None else ()), (mc,)
        return store.event_order, ()

    def _get(self, call: Call) -> int:
        eid = self.path_id(call)
        i = self.store.event_by_id(eid)
        if i is None:
            raise not_found("event", eid)
        return i

    def get_event(self, call: Call) -> Outcome:
        i = self._get(call)
        if "attributions" in call.query.include:
            events, records = self._attributed([i])
            return Outcome(data=events[0], included=records + self._included([i], call.query))
        return Outcome(data=self.event_resource(i), included=self._included([i], call.query))

    def get_metric_for_event(self, call: Call) -> Outcome:
        from kbridge.emulator.backend.metrics import metric_resource

        i = self._get(call)
        return Outcome(data=metric_resource(self.store.metrics[self.store.events.metric[i]]))

    def get_profile_for_event(self, call: Call) -> Outcome:
        i = self._get(call)
        p = self.store.profiles[self.store.events.profile[i]]
        return Outcome(data=profile_resource(p, call.query))

    def get_metric_id_for_event(self, call: Call) -> Outcome:
        i = self._get(call)
        m = self.store.metrics[self.store.events.metric[i]]
        return Outcome(data=Resource("metric", m.id, {}), identifiers_only=True)

    def get_profile_id_for_event(self, call: Call) -> Outcome:
        i = self._get(call)
        p = self.store.profiles[self.store.events.profile[i]]
        return Outcome(data=Resource("profile", p.id, {}), identifiers_only=True)

    # -- writes ----------------------------------------------------------------

    def create_event(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "event"))
        parsed = self.parse_event(attrs, "/data/attributes")
        profile = _profile_block(attrs, "/data/attributes/profile")
        p = resolve_profile(self.ctx, profile, "/data/attributes/profile/data")
        self.record(p, parsed)
        return Outcome(status=202)

    def bulk_create_events(self, call: Call) -> Outcome:
        size = call.body_bytes if call.body_bytes is not None else len(orjson.dumps(call.body))
        if size > MAX_BULK_BYTES:
            raise InvalidError("a bulk event request must not exceed 5 MB", pointer="/data")
        attrs = attributes_of(data_of(call.body, "event-bulk-create-job"))
        block = attrs.get("events-bulk-create")
        items = block.get("data") if isinstance(block, dict) else None
        base = "/data/attributes/events-bulk-create/data"
        if not isinstance(items, list):
            raise InvalidError("events-bulk-create.data must be a list", pointer=base)
        batches: list[tuple[dict[str, Any], list[ParsedEvent]]] = []
        total = 0
        for k, item in enumerate(items):
            ptr = f"{base}/{k}"
            if not isinstance(item, dict) or item.get("type") != "event-bulk-create":
                raise InvalidError("each item must be of type 'event-bulk-create'", pointer=ptr)
            a = attributes_of(item, f"{ptr}/attributes")
            profile = _profile_block(a, f"{ptr}/attributes/profile")
            evs = (a.get("events") or {}).get("data") if isinstance(a.get("events"), dict) else None
            if not isinstance(evs, list) or not evs:
                raise InvalidError(
                    "events.data must be a non-empty list", pointer=f"{ptr}/attributes/events/data"
                )
            parsed = []
            for j, e in enumerate(evs):
                eptr = f"{ptr}/attributes/events/data/{j}"
                if not isinstance(e, dict) or e.get("type") != "event":
                    raise InvalidError("each event must be of type 'event'", pointer=eptr)
                eattrs = attributes_of(e, f"{eptr}/attributes")
                parsed.append(self.parse_event(eattrs, f"{eptr}/attributes"))
            total += len(parsed)
            batches.append((profile, parsed))
        if total > MAX_BULK_EVENTS:
            raise InvalidError(
                f"at most {MAX_BULK_EVENTS} events per job (got {total})", pointer=base
            )
        required_jobs(self.ctx).schedule("event-bulk-create-job", batches, total=total)
        return Outcome(status=202)

    def apply_bulk(self, batches: list[tuple[dict[str, Any], list[ParsedEvent]]]) -> int:
        """Record a bulk job's events; returns how many profiles failed to resolve."""
        failed = 0
        for profile, parsed in batches:
            try:
                p = resolve_profile(self.ctx, profile, "/data")
            except InvalidError:
                failed += 1
                continue
            for e in parsed:
                self.record(p, e)
        return failed

    def parse_event(self, attrs: dict[str, Any], ptr: str) -> ParsedEvent:
        props = attrs.get("properties")
        if not isinstance(props, dict):
            raise InvalidError(
                "properties is required and must be an object", pointer=f"{ptr}/properties"
            )
        metric = attrs.get("metric")
        mdata = metric.get("data") if isinstance(metric, dict) else None
        mattrs = mdata.get("attributes") if isinstance(mdata, dict) else None
        name = mattrs.get("name") if isinstance(mattrs, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise InvalidError(
                "metric.data.attributes.name is required",
                pointer=f"{ptr}/metric/data/attributes/name",
            )
        now = self.ctx.now()
        ts = now
        if attrs.get("time") is not None:
            ts = timestamp_attr(attrs["time"], f"{ptr}/time")
            if ts < 946684800.0 or ts > now + YEAR:
                raise InvalidError(
                    "time must be between the year 2000 and one year from now",
                    pointer=f"{ptr}/time",
                )
        value = attrs.get("value")
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise InvalidError("value must be a number", pointer=f"{ptr}/value")
        unique_id = attrs.get("unique_id")
        if unique_id is not None and not isinstance(unique_id, str):
            raise InvalidError("unique_id must be a string", pointer=f"{ptr}/unique_id")
        props = dict(props)
        if value is not None:
            props.setdefault("$value", value)
        if attrs.get("value_currency") is not None:
            props.setdefault("$value_currency", attrs["value_currency"])
        if unique_id is not None:
            props.setdefault("$event_id", unique_id)
        return (ts, name, float(value or 0.0), props, unique_id)

    def record(self, p: ProfileRecord, e: ParsedEvent) -> None:
        ts, name, value, props, unique_id = e
        metric = self._metric(name)
        i = self.store.add_event(ts, p.seq, metric.index, value, props, unique_id)
        if i is not None:
            for callback in self.ctx.on_event:
                callback(i)

    def _metric(self, name: str) -> MetricRecord:
        store = self.store
        m = store.metric_by_name.get(name)
        if m is None:
            now = self.ctx.now()
            m = MetricRecord(
                index=len(store.metrics),
                id=base62_id(store.seed, 0x3E7, len(store.metrics)),
                name=name,
                created=now,
                updated=now,
                integration=dict(INTEGRATIONS["api"]),
            )
            store.metrics.append(m)
            store.metric_by_id[m.id] = m
            store.metric_by_name[name] = m
        return m


def _profile_block(attrs: dict[str, Any], ptr: str) -> dict[str, Any]:
    profile = attrs.get("profile")
    pdata = profile.get("data") if isinstance(profile, dict) else None
    if not isinstance(pdata, dict):
        raise InvalidError("profile.data is required", pointer=f"{ptr}/data")
    return pdata
