"""``query_metric_aggregates``: counts, value sums and unique profiles of one metric's events.

Computed over the account's events, so every figure can be recounted from
``GET /api/events``:

* ``count`` = events, ``sum_value`` = the sum of their ``$value`` property,
  ``unique`` = distinct profiles, per bucket;
* buckets (``interval`` hour, day, week, month; day by default) start on
  calendar boundaries in ``timezone`` (UTC by default; weeks on Monday) at or
  before the range's start; ``dates`` lists each bucket's start;
* the range comes from the required ``greater-or-equal``/``greater-than`` and
  ``less-than``/``less-or-equal`` filters on ``datetime`` (a datetime without an
  offset is read in ``timezone``); ``equals(prop,"v")`` and
  ``any(prop,["v",…])`` on an event property narrow the events;
* ``by`` groups rows by event properties (a missing one is ``""``), rows
  sorted by their dimensions (``sort`` on one of them, ``-`` for descending),
  ``page_size`` rows a page (500 by default) with ``page_cursor`` for the next.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.campaign_records import zone
from kbridge.emulator.backend.common import TagBackend, attributes_of, data_of, existing
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.report_time import series_edges
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.vocabulary import event_properties

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MetricAggregatesBackend"]

_PTR = "/data/attributes"
MEASUREMENTS = ("count", "sum_value", "unique")
_INTERVALS = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}
_FILTER = re.compile(r"^\s*([a-z-]+)\(\s*([^,]+?)\s*,\s*(.+?)\s*\)\s*$")
_LOWER = {"greater-or-equal": True, "greater-than": False}
_UPPER = {"less-than": False, "less-or-equal": True}
#: Klaviyo's page size default and ceiling for aggregate rows
_PAGE_SIZE = 500


def _value(text: str, ptr: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidError(f"cannot read the filter value {text[:60]!r}", pointer=ptr) from None


class _Query:
    """A validated aggregate query."""

    def __init__(self, attrs: dict[str, Any], tz_default: str = "UTC") -> None:
        measurements = attrs.get("measurements")
        if (
            not isinstance(measurements, list)
            or not measurements
            or any(m not in MEASUREMENTS for m in measurements)
        ):
            raise InvalidError(
                f"measurements must be a non-empty list of {', '.join(MEASUREMENTS)}",
                pointer=f"{_PTR}/measurements",
            )
        self.measurements: list[str] = list(dict.fromkeys(measurements))
        interval = attrs.get("interval") or "day"
        if interval not in _INTERVALS:
            raise InvalidError(
                f"interval must be one of {', '.join(_INTERVALS)}", pointer=f"{_PTR}/interval"
            )
        self.interval: str = interval
        name = attrs.get("timezone") or tz_default
        tz = zone(name) if isinstance(name, str) else None
        if tz is None:
            raise InvalidError(f"unknown timezone {name!r}", pointer=f"{_PTR}/timezone")
        self.tz: ZoneInfo = tz
        by = attrs.get("by") or []
        if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
            raise InvalidError("by must be a list of dimension names", pointer=f"{_PTR}/by")
        self.by: list[str] = by
        self.start, self.end, self.where = self._filters(attrs.get("filter"))
        page_size = attrs.get("page_size") or _PAGE_SIZE
        if not isinstance(page_size, int) or not 1 <= page_size <= _PAGE_SIZE:
            raise InvalidError(
                f"page_size must be between 1 and {_PAGE_SIZE}", pointer=f"{_PTR}/page_size"
            )
        self.page_size: int = page_size
        self.offset = self._cursor(attrs.get("page_cursor"))
        sort = attrs.get("sort")
        if sort is not None and (not isinstance(sort, str) or sort.lstrip("-") not in by):
            raise InvalidError("sort must name one of the by dimensions", pointer=f"{_PTR}/sort")
        self.sort: str | None = sort

    def _filters(self, value: Any) -> tuple[float, float, list[tuple[str, set[str]]]]:
        ptr = f"{_PTR}/filter"
        if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
            raise InvalidError("filter must be a list of strings", pointer=ptr)
        start: float | None = None
        end: float | None = None
        where: list[tuple[str, set[str]]] = []
        for text in value:
            m = _FILTER.match(text)
            if m is None:
                raise InvalidError(f"cannot parse the filter {text[:80]!r}", pointer=ptr)
            op, field, raw = m.groups()
            if field == "datetime":
                when = self._when(raw, ptr)
                if op in _LOWER:
                    start = when if _LOWER[op] else when + 1e-6
                elif op in _UPPER:
                    end = when + 1e-6 if _UPPER[op] else when
                else:
                    raise InvalidError(f"datetime does not take {op}", pointer=ptr)
            elif op == "equals":
                where.append((field, {str(_value(raw, ptr))}))
            elif op == "any":
                values = _value(raw, ptr)
                if not isinstance(values, list):
                    raise InvalidError(f"any({field},…) takes a list", pointer=ptr)
                where.append((field, {str(v) for v in values}))
            else:
                raise InvalidError(
                    f"{op} is not supported on {field} (equals and any are)", pointer=ptr
                )
        if start is None or end is None:
            raise InvalidError(
                "filter must give the time range: greater-or-equal(datetime,…) and "
                "less-than(datetime,…)",
                pointer=ptr,
            )
        if end <= start:
            raise InvalidError("the datetime range is empty", pointer=ptr)
        return start, end, where

    def _when(self, raw: str, ptr: str) -> float:
        text = raw.strip().strip("'\"")
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidError(f"{text[:40]!r} is not an ISO 8601 datetime", pointer=ptr) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.tz)
        return when.timestamp()

    @staticmethod
    def _cursor(value: Any) -> int:
        if value is None:
            return 0
        try:
            return int(base64.urlsafe_b64decode(str(value).encode()).decode())
        except ValueError:
            raise InvalidError("invalid page_cursor", pointer=f"{_PTR}/page_cursor") from None


class MetricAggregatesBackend(TagBackend):
    operations = frozenset({"query_metric_aggregates"})

    def _props(self, i: int) -> dict[str, Any]:
        ev = self.store.events
        if i < ev.generated:
            return event_properties(self.store.seed, i, ev.metric[i], ev.aux[i], ev.value[i])[0]
        return dict(ev.extra.get(i, ({}, None))[0])

    def query_metric_aggregates(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "metric-aggregate"))
        metric_id = attrs.get("metric_id")
        metric = existing(self.store.metric_by_id, "metric", str(metric_id))
        q = _Query(attrs)
        edges = series_edges(_INTERVALS[q.interval], q.start, q.end, q.tz)
        buckets = len(edges) - 1
        ev = self.store.events
        ordered = self.store.events_by_metric.get(metric.index, ())
        ts = ev.ts.__getitem__
        lo = bisect_left(ordered, q.start, key=ts)
        hi = bisect_left(ordered, q.end, key=ts)
        counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * buckets)
        sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0] * buckets)
        people: dict[tuple[str, ...], list[set[int]]] = defaultdict(
            lambda: [set() for _ in range(buckets)]
        )
        need_props = bool(q.by or q.where)
        # sum_value sums ``$value``; generated events of one metric all carry it or none do
        # (Added to Cart keeps its price in ``Price``), and then their value column holds it
        generated_value: bool | None = None
        for k in range(lo, hi):
            i = ordered[k]
            props = self._props(i) if need_props else {}
            if any(str(props.get(f, "")) not in values for f, values in q.where):
                continue
            b = bisect_right(edges, ev.ts[i]) - 1
            if not 0 <= b < buckets:
                continue
            dims = tuple(str(props.get(d, "")) for d in q.by)
            counts[dims][b] += 1
            if i >= ev.generated:
                raw = (props or self._props(i)).get("$value")
                value = float(raw) if isinstance(raw, int | float) and raw == raw else 0.0
            else:
                if generated_value is None:
                    generated_value = "$value" in (props or self._props(i))
                value = ev.value[i] if generated_value else 0.0
            sums[dims][b] += value
            people[dims][b].add(ev.profile[i])
        rows = sorted(counts) if q.by else [()]
        if q.sort is not None:
            at = q.by.index(q.sort.lstrip("-"))
            rows.sort(key=lambda r: r[at], reverse=q.sort.startswith("-"))
        page = rows[q.offset : q.offset + q.page_size]
        data = []
        for dims in page:
            values: dict[str, Any] = {}
            for m in q.measurements:
                if m == "count":
                    values[m] = list(counts[dims]) if dims in counts else [0] * buckets
                elif m == "sum_value":
                    values[m] = [round(v, 2) for v in sums.get(dims, [0.0] * buckets)]
                else:
                    values[m] = [len(s) for s in people.get(dims, [set()] * buckets)]
            data.append({"dimensions": list(dims), "measurements": values})
        dates = [datetime.fromtimestamp(e, q.tz).isoformat() for e in edges[:-1]]
        key = json.dumps([metric.id, attrs, iso(q.start)], sort_keys=True, default=str)
        ephemeral = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        meta: dict[str, Any] = {}
        if q.offset + q.page_size < len(rows):
            cursor = base64.urlsafe_b64encode(str(q.offset + q.page_size).encode()).decode()
            meta["next_page_cursor"] = cursor
        return Outcome(
            data=Resource("metric-aggregate", ephemeral, {"dates": dates, "data": data}),
            meta=meta,
        )
