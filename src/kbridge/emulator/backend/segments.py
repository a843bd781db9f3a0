"""Segments: CRUD, and membership computed from the definition on read.

Semantics (Klaviyo's UI; the API spec does not say): ``condition_groups``
are ANDed, the ``conditions`` inside one group are ORed. Supported condition
types: ``profile-property``, ``profile-group-membership``, ``profile-metric``
(count or sum over a timeframe; ``metric_filters`` not supported) and
``profile-marketing-consent``. Anything else is refused with a 400 naming the
type, never silently matched.

Membership is cached per segment and recomputed after any change to the
account (``Store.version``) or when the simulated minute changes.
``joined_group_at`` is the time a profile first matched, approximated as
the first qualifying event in the timeframe for metric conditions, the
list's join time for group conditions, and the profile's creation time
otherwise; once a member, the time is kept.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    include_tags,
    page_of,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.lists import member_page
from kbridge.emulator.backend.models import ProfileRecord, SegmentRecord
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page, Query

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["SUPPORTED_CONDITIONS", "SegmentsBackend"]

SUPPORTED_CONDITIONS = frozenset(
    {"profile-property", "profile-group-membership", "profile-metric", "profile-marketing-consent"}
)
_UNITS = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}
_PROP = re.compile(r"""^properties\[(?:'([^']*)'|"([^"]*)")\]$""")
_PROFILE_FIELDS = frozenset(
    {
        "email",
        "phone_number",
        "external_id",
        "first_name",
        "last_name",
        "organization",
        "locale",
        "title",
        "image",
        "created",
        "updated",
        "last_event_date",
    }
)
_LINKS_ONLY = ("profiles", "tags", "flow-triggers")

Matches = dict[int, float]  # profile seq -> when it (approximately) started matching


class SegmentsBackend(TagBackend):
    operations = frozenset(
        {
            "get_segments",
            "get_segment",
            "create_segment",
            "update_segment",
            "delete_segment",
            "get_profiles_for_segment",
            "get_profile_ids_for_segment",
        }
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: dict[str, tuple[tuple[int, int], Matches]] = {}
        self._evaluating: set[str] = set()

    # -- membership ----------------------------------------------------------------

    def members(self, segment_id: str) -> Matches:
        """The segment's current members and their ``joined_group_at``."""
        seg = self.store.segments.get(segment_id)
        if seg is None:
            return {}
        cached = self._cache.get(segment_id)
        stamp = self._stamp()
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if segment_id in self._evaluating:  # a segment defined in terms of itself
            return cached[1] if cached else {}
        self._evaluating.add(segment_id)
        try:
            fresh = self._evaluate(seg.definition)
        finally:
            self._evaluating.discard(segment_id)
        if cached is not None:
            previous = cached[1]
            fresh = {s: previous.get(s, t) for s, t in fresh.items()}
        self._cache[segment_id] = (stamp, fresh)
        return fresh

    def _stamp(self) -> tuple[int, int]:
        """Cache validity: the account's version and the simulated minute (relative
        timeframes such as "in the last 30 days" move with the clock)."""
        return (self.store.version, int(self.ctx.now() // 60))

    def _evaluate(self, definition: dict[str, Any]) -> Matches:
        result: Matches | None = None
        for group in definition.get("condition_groups", []):
            union: Matches = {}
            for cond in group.get("conditions", []):
                for s, t in self._condition(cond).items():
                    if s not in union or t < union[s]:
                        union[s] = t
            if result is None:
                result = union
            else:
                result = {s: max(t, union[s]) for s, t in result.items() if s in union}
        return result or {}

    def _condition(self, cond: dict[str, Any]) -> Matches:
        kind = cond.get("type")
        if kind == "profile-property":
            return self._property(cond)
        if kind == "profile-group-membership":
            return self._membership(cond)
        if kind == "profile-metric":
            return self._metric(cond)
        if kind == "profile-marketing-consent":
            return self._consent(cond)
        raise InvalidError(f"segment condition type {kind!r} is not supported by the emulator")

    def _property(self, cond: dict[str, Any]) -> Matches:
        read = _property_reader(str(cond.get("property", "")))
        test = _value_test(cond.get("filter") or {}, self.ctx.now())
        return {p.seq: p.created for p in self.store.live_profiles() if test(read(p))}

    def _membership(self, cond: dict[str, Any]) -> Matches:
        joined: Matches = {}
        for gid in cond.get("group_ids") or []:
            lst = self.store.lists.get(gid)
            group = lst.members if lst is not None else self.members(gid)
            for s, t in group.items():
                if s not in joined or t < joined[s]:
                    joined[s] = t
        if cond.get("is_member", True):
            return {s: t for s, t in joined.items() if not self.store.profiles[s].deleted}
        return {p.seq: p.created for p in self.store.live_profiles() if p.seq not in joined}

    def _metric(self, cond: dict[str, Any]) -> Matches:
        store = self.store
        metric = store.metric_by_id.get(str(cond.get("metric_id")))
        if metric is None:
            raise InvalidError(f"metric {cond.get('metric_id')!r} does not exist")
        if cond.get("metric_filters"):
            raise InvalidError("profile-metric metric_filters are not supported by the emulator")
        measurement = cond.get("measurement", "count")
        if measurement not in ("count", "sum"):
            raise InvalidError(f"measurement must be count or sum, not {measurement!r}")
        low, high = _timeframe(
            cond.get("timeframe_filter") or {"operator": "alltime"}, self.ctx.now()
        )
        ev = store.events
        indexes = store.events_by_metric.get(metric.index)
        totals: dict[int, float] = {}
        first: dict[int, float] = {}
        if indexes is not None:
            ts = ev.ts
            a = 0 if low is None else bisect_left(indexes, low, key=ts.__getitem__)
            b = len(indexes) if high is None else bisect_right(indexes, high, key=ts.__getitem__)
            add = 1.0 if measurement == "count" else None
            for k in range(a, b):
                i = indexes[k]
                p = ev.profile[i]
                totals[p] = totals.get(p, 0.0) + (add if add is not None else ev.value[i])
                first.setdefault(p, ts[i])
        test = _numeric_test(cond.get("measurement_filter") or {})
        return {
            p.seq: first.get(p.seq, p.created)
            for p in store.live_profiles()
            if test(totals.get(p.seq, 0.0))
        }

    def _consent(self, cond: dict[str, Any]) -> Matches:
        consent = cond.get("consent") or {}
        channel = consent.get("channel")
        want = bool(consent.get("can_receive_marketing", True))
        status = consent.get("consent_status") or {}
        subscription = status.get("subscription", "any")
        filters = status.get("filters") or []
        double_optin: bool | None = None
        for f in filters:
            if f.get("field") == "is_double_opt_in":
                double_optin = bool((f.get("filter") or {}).get("value"))
            else:
                raise InvalidError(
                    f"consent filter {f.get('field')!r} is not supported by the emulator"
                )
        if channel not in ("email", "sms"):
            raise InvalidError(f"consent channel {channel!r} is not supported by the emulator")

        def ok(p: ProfileRecord) -> bool:
            if channel == "email":
                can = p.email_consent == "SUBSCRIBED" and not p.email_suppression
                status_value = p.email_consent
            else:
                can = p.sms_consent == "SUBSCRIBED"
                status_value = p.sms_consent
            if can != want:
                return False
            if subscription not in ("any", status_value.lower()):
                return False
            return double_optin is None or bool(p.email_double_optin) == double_optin

        return {
            p.seq: (p.email_consent_ts if channel == "email" else p.sms_consent_ts) or p.created
            for p in self.store.live_profiles()
            if ok(p)
        }

    # -- resources -----------------------------------------------------------------

    def resource(self, seg: SegmentRecord, query: Query | None) -> Resource:
        attrs: dict[str, Any] = {
            "name": seg.name,
            "definition": seg.definition,
            "created": iso(seg.created),
            "updated": iso(seg.updated),
            "is_active": seg.is_active,
            "is_processing": False,
            "is_starred": seg.is_starred,
        }
        if query is not None and query.wants("segment", "profile_count"):
            attrs["profile_count"] = len(self.members(seg.id))
        return Resource("segment", seg.id, attrs, links_only=_LINKS_ONLY)

    def resource_by_id(self, segment_id: str, query: Query | None) -> Resource:
        return self.resource(self.store.segments[segment_id], query)

    def _get(self, call: Call) -> SegmentRecord:
        sid = self.path_id(call)
        return existing(self.store.segments, "segment", sid)

    def get_segments(self, call: Call) -> Outcome:
        by_seq = {seg.seq: seg for seg in self.store.segments.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s)

        getters: dict[str, Callable[[int], Any]] = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
            "is_active": lambda s: by_seq[s].is_active,
            "is_starred": lambda s: by_seq[s].is_starred,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        items = [self.resource(by_seq[s], call.query) for s in page.items]
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
            included=include_tags(self.ctx, items, call.query),
        )

    def get_segment(self, call: Call) -> Outcome:
        found = self.resource(self._get(call), call.query)
        return Outcome(data=found, included=include_tags(self.ctx, [found], call.query))

    def create_segment(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "segment"))
        name = attrs.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidError("name is required", pointer="/data/attributes/name")
        definition = self._checked_definition(attrs.get("definition"))
        now = self.ctx.now()
        seg = SegmentRecord(
            seq=self.store.next_seq(),
            id=self.store.next_short_id(47),
            name=name,
            definition=definition,
            created=now,
            updated=now,
            is_starred=bool(attrs.get("is_starred") or False),
        )
        self.store.segments[seg.id] = seg
        return Outcome(data=self.resource(seg, None), status=201)

    def update_segment(self, call: Call) -> Outcome:
        seg = self._get(call)
        data = data_of(call.body, "segment")
        if data.get("id") != seg.id:
            raise InvalidError("data.id must match the segment id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        if "name" in attrs:
            if not isinstance(attrs["name"], str) or not attrs["name"].strip():
                raise InvalidError(
                    "name must be a non-empty string", pointer="/data/attributes/name"
                )
            seg.name = attrs["name"]
        if "definition" in attrs:
            seg.definition = self._checked_definition(attrs["definition"])
            self._cache.pop(seg.id, None)
        if "is_starred" in attrs:
            seg.is_starred = bool(attrs["is_starred"])
        seg.updated = self.ctx.now()
        return Outcome(data=self.resource(seg, None))

    def delete_segment(self, call: Call) -> Outcome:
        seg = self._get(call)
        del self.store.segments[seg.id]
        self._cache.pop(seg.id, None)
        self.store.touch()
        return Outcome(status=204)

    def get_profiles_for_segment(self, call: Call) -> Outcome:
        return member_page(self, call, self.members(self._get(call).id), ids_only=False)

    def get_profile_ids_for_segment(self, call: Call) -> Outcome:
        return member_page(self, call, self.members(self._get(call).id), ids_only=True)

    def _checked_definition(self, definition: Any) -> dict[str, Any]:
        """Refuse shapes and condition types we cannot evaluate, naming where they are."""
        base = "/data/attributes/definition"
        if not isinstance(definition, dict) or not isinstance(
            definition.get("condition_groups"), list
        ):
            raise InvalidError("definition.condition_groups must be a list", pointer=base)
        for g, group in enumerate(definition["condition_groups"]):
            conds = group.get("conditions") if isinstance(group, dict) else None
            if not isinstance(conds, list) or not conds:
                raise InvalidError(
                    "each condition group needs a non-empty conditions list",
                    pointer=f"{base}/condition_groups/{g}/conditions",
                )
            for c, cond in enumerate(conds):
                ptr = f"{base}/condition_groups/{g}/conditions/{c}"
                kind = cond.get("type") if isinstance(cond, dict) else None
                if kind not in SUPPORTED_CONDITIONS:
                    raise InvalidError(
                        f"segment condition type {kind!r} is not supported by the emulator "
                        f"(supported: {', '.join(sorted(SUPPORTED_CONDITIONS))})",
                        pointer=f"{ptr}/type",
                    )
                try:
                    self._condition(cond)  # evaluates once: surfaces bad filters now
                except InvalidError as exc:
                    raise InvalidError(exc.detail, pointer=ptr) from None
        return definition


def _property_reader(path: str) -> Callable[[ProfileRecord], Any]:
    m = _PROP.match(path)
    if m:
        name = m.group(1) if m.group(1) is not None else m.group(2)
        return lambda p: p.properties.get(name)
    if path.startswith("properties."):
        name = path[len("properties.") :]
        return lambda p: p.properties.get(name)
    if path.startswith("location."):
        name = path[len("location.") :]
        return lambda p: (p.location or {}).get(name)
    if path in _PROFILE_FIELDS:
        return lambda p: getattr(p, path)
    return lambda p: p.properties.get(path)


def _numeric_test(f: dict[str, Any]) -> Callable[[Any], bool]:
    op, want = f.get("operator"), f.get("value")
    if not isinstance(want, (int, float)) or isinstance(want, bool):
        raise InvalidError("numeric filter value must be a number")
    tests: dict[str, Callable[[float], bool]] = {
        "equals": lambda v: v == want,
        "not-equals": lambda v: v != want,
        "greater-than": lambda v: v > want,
        "greater-than-or-equal": lambda v: v >= want,
        "less-than": lambda v: v < want,
        "less-than-or-equal": lambda v: v <= want,
    }
    test = tests.get(str(op))
    if test is None:
        raise InvalidError(f"numeric operator {op!r} is not supported")

    def check(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and test(float(v))

    return check


def _value_test(f: dict[str, Any], now: float) -> Callable[[Any], bool]:
    """A profile-property filter as a predicate on the property's value."""
    kind, op, want = f.get("type"), str(f.get("operator")), f.get("value")
    if kind == "existence":
        if op not in ("is-set", "not-set"):
            raise InvalidError(f"existence operator {op!r} is not supported")
        return (lambda v: v is not None) if op == "is-set" else (lambda v: v is None)
    if kind == "numeric":
        return _numeric_test(f)
    if kind == "boolean":
        return lambda v: isinstance(v, bool) and v == want
    if kind == "string":
        return _string_test(op, want)
    if kind == "list":
        return _list_test(op, want)
    if kind == "date":
        low, high = _timeframe(f, now)

        def in_range(v: Any) -> bool:
            if isinstance(v, str):
                try:
                    v = timestamp_attr(v, "")
                except InvalidError:
                    return False
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return False
            return (low is None or v >= low) and (high is None or v <= high)

        return in_range
    raise InvalidError(f"profile-property filter type {kind!r} is not supported")


def _string_test(op: str, want: Any) -> Callable[[Any], bool]:
    if op in ("in", "not-in"):
        values = set(want or [])
        return (lambda v: v in values) if op == "in" else (lambda v: v not in values)
    w = "" if want is None else str(want)
    positive: dict[str, Callable[[str], bool]] = {
        "equals": lambda v: v == w,
        "contains": lambda v: w in v,
        "starts-with": lambda v: v.startswith(w),
        "ends-with": lambda v: v.endswith(w),
        "regex": lambda v: re.search(w, v) is not None,
    }
    negate = op.startswith("not-") or op == "nregex"
    base = {"nregex": "regex"}.get(op, op[4:] if op.startswith("not-") else op)
    test = positive.get(base)
    if test is None:
        raise InvalidError(f"string operator {op!r} is not supported")
    if negate:
        return lambda v: not (isinstance(v, str) and test(v))
    return lambda v: isinstance(v, str) and test(v)


def _list_test(op: str, want: Any) -> Callable[[Any], bool]:
    if op in ("contains", "not-contains"):
        neg = op == "not-contains"
        return lambda v: (isinstance(v, list) and want in v) != neg
    lengths: dict[str, Callable[[int], bool]] = {
        "length-equals": lambda n: n == want,
        "length-greater-than": lambda n: n > want,
        "length-greater-than-or-equal": lambda n: n >= want,
        "length-less-than": lambda n: n < want,
        "length-less-than-or-equal": lambda n: n <= want,
    }
    test = lengths.get(op)
    if test is None:
        raise InvalidError(f"list operator {op!r} is not supported")
    return lambda v: isinstance(v, list) and test(len(v))


def _timeframe(f: dict[str, Any], now: float) -> tuple[float | None, float | None]:
    """A date filter as an inclusive ``(low, high)`` epoch range (``None`` = open)."""
    op = f.get("operator")
    if op == "alltime":
        return None, None
    if op in ("after", "before"):
        at = timestamp_attr(f.get("date"), "")
        return (at, None) if op == "after" else (None, at)
    if op == "between-static":
        return timestamp_attr(f.get("start"), ""), timestamp_attr(f.get("end"), "")
    unit = _UNITS.get(str(f.get("unit")))
    if op in ("in-the-last", "at-least", "in-the-next") and unit is not None:
        span = float(f.get("quantity") or 0) * unit
        if op == "in-the-last":
            return now - span, now
        if op == "at-least":
            return None, now - span
        return now, now + span
    if op == "between" and unit is not None:
        return now - float(f.get("end") or 0) * unit, now - float(f.get("start") or 0) * unit
    raise InvalidError(f"timeframe operator {op!r} is not supported by the emulator")
