"""Tolerant models: responses with unknown attributes, nulls and new enum values.

The official SDKs' most reported bug class is a typed model that rejects what
Klaviyo added after it was generated. kbridge's resources are plain mappings
and its extractors read with ``.get``; these tests hold that line. Real
responses from the emulator are mutated (by hypothesis, and on the wire
during a whole sync), and unknown fields must survive in each table's ``raw``.
"""

from __future__ import annotations

import asyncio
import copy
import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbridge import catalog, sync
from kbridge.api import AsyncClient, decode_document
from kbridge.core import ManualClock, dumps, loads
from kbridge.emulator.server import EmulatorServer
from kbridge.sync.strategies.reports import report_rows as _report_rows
from kbridge.sync.streams import RUN_COLUMN, Stream, as_record, get_stream
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse.duckdb import DuckDBWarehouse

from .conftest import SERVED

pytestmark = pytest.mark.integration

LISTED = [n for n in SERVED if get_stream(n).report is None and get_stream(n).aggregates is None]
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_ENUM = re.compile(r"^[a-z][a-z_]*$|^[A-Z][A-Z_]*$")
#: the replication cursors: a record without one cannot be placed (not a model question)
CURSORS = {"updated", "updated_at", "datetime", "created"}


class Samples(dict[str, tuple[dict[str, Any], str | None]]):
    """Pages by stream name; a short repr, as hypothesis prints its arguments on failure."""

    def __repr__(self) -> str:
        return f"Samples({sorted(self)})"


@pytest.fixture(scope="module")
def samples(server: EmulatorServer) -> Samples:
    """One real page (raw JSON) per listed stream, with the context its extractor takes."""
    out = Samples()
    with http_client_for(server) as http:
        for name in LISTED:
            stream = get_stream(name)
            context = None
            path = catalog.get(stream.operation_id).path
            if stream.parent is not None:
                parent = stream.parent
                ppath = catalog.get(parent.operation_id).path
                body = http.get(ppath, params=dict(parent.params)).json()
                kind = parent.included_type
                pool = [r for r in body.get("included", []) if r["type"] == kind]
                if kind is None:
                    pool = body["data"]
                if not pool:
                    continue
                context = pool[0]["id"]
                page = http.get(path.replace("{id}", context), params=dict(stream.params)).json()
            else:
                page = http.get(path, params=dict(stream.params)).json()
            if isinstance(page.get("data"), dict):
                page["data"] = [page["data"]]
            if page.get("data"):
                out[name] = (page, context)
    assert len(out) >= len(LISTED) - 1, sorted(out)  # flow_messages may lack a parent
    return out


def _rows(stream: Stream, page: dict[str, Any], context: str | None) -> list[tuple[Any, ...]]:
    doc = decode_document(page)
    rows = [stream.extract(r, context) for r in doc.records]
    for child in stream.children:
        rows.extend(child.extract(as_record(c), r.id) for r in doc.resources
                    for c in r.related(child.relationship) if c.attributes)  # fmt: skip
    return rows


json_values = st.recursive(
    # JSON as Klaviyo sends it: integers within what a double holds exactly
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
extra_keys = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).map(lambda s: "x_" + s)


def _mutate(rng: random.Random, attrs: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Unknown keys added, some keys nulled, enum-looking values replaced, nested too."""
    out = dict(attrs)
    for key in sorted(out):
        value = out[key]
        choice = rng.choice(["keep", "null", "enum", "nest"])
        if choice == "null":
            out[key] = None
        elif choice == "enum" and isinstance(value, str) and _ENUM.match(value):
            out[key] = value + "_added_in_2027"
        elif choice == "nest" and isinstance(value, dict):
            out[key] = _mutate(rng, value, {"x_nested": rng.choice([None, 1, "new", []])})
    out.update(extras)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(LISTED)),
    seed=st.integers(0, 2**32),
    extras=st.dictionaries(extra_keys, json_values, min_size=1, max_size=3),
    new_relationship=st.booleans(),
)
def test_extractors_accept_unknown_attributes_nulls_and_new_enum_values(
    samples: Samples,
    name: str,
    seed: int,
    extras: dict[str, Any],
    new_relationship: bool,
) -> None:
    if name not in samples:  # the emulator had nothing to show for it (no parent)
        return
    stream = get_stream(name)
    rng = random.Random(seed)
    page, context = copy.deepcopy(samples[name][0]), samples[name][1]
    for resource in [*page["data"], *page.get("included", [])]:
        resource["attributes"] = _mutate(rng, resource.get("attributes") or {}, extras)
        if new_relationship:
            resource.setdefault("relationships", {})["x_new_relationship"] = {"data": None}
    rows = _rows(stream, page, context)
    width = len([c for c in stream.table.columns if c.name not in ("account_id", RUN_COLUMN)])
    main = rows[: len(page["data"])]
    assert all(len(row) == width for row in main)
    names = [c.name for c in stream.table.columns if c.name != "account_id"]
    if "raw" in names:
        for row, resource in zip(main, page["data"], strict=True):
            # unknown fields kept as given
            assert loads(row[names.index("raw")]) == resource["attributes"]
    if "other_attributes" in names:
        held = {
            p.path[1]
            for p in (stream.from_json or {}).values()
            if p.path[:1] == ("attributes",) and len(p.path) > 1
        }
        for row, resource in zip(main, page["data"], strict=True):
            others = {k: v for k, v in resource["attributes"].items() if k not in held}
            assert loads(row[names.index("other_attributes")]) == others


@settings(max_examples=60, deadline=None)
@given(
    item=st.fixed_dictionaries(
        {},
        optional={
            "groupings": st.none() | st.dictionaries(extra_keys, json_values, max_size=3),
            "statistics": st.none()
            | st.dictionaries(
                st.sampled_from(["opens", "clicks", "recipients", "x_new_stat"]),
                st.none() | st.floats(0, 1e6) | st.lists(st.none() | st.floats(0, 1e6), max_size=3),
                max_size=4,
            ),
        },
    ),
    extra=st.dictionaries(extra_keys, json_values, max_size=2),
)
def test_report_rows_accept_nulls_and_unknown_statistics(
    item: dict[str, Any], extra: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    for name in ("campaign_values_daily", "flow_series_daily"):
        report = get_stream(name).report
        assert report is not None
        attributes = {"results": [item], "date_times": ["2026-01-01T00:00:00+00:00"], **extra}
        rows = _report_rows("acct", report, attributes, datetime(2026, 1, 1, tzinfo=UTC))
        assert len(rows) == 1


# -- on the wire: a whole sync over responses Klaviyo might send tomorrow --------------------


def _future(attrs: Any) -> Any:
    """Deterministic: an unknown field, enum-looking values changed, non-cursor nulls kept."""
    if not isinstance(attrs, dict):
        return attrs
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, dict):
            out[key] = _future(value)
        elif isinstance(value, str) and _ENUM.match(value) and not _TIMESTAMP.match(value):
            out[key] = value + "_added_in_2027"
        else:
            out[key] = value
    out["x_kbridge_future"] = {"nested": [1, None, "new"], "flag": None}
    return out


class FutureKlaviyo(httpx.AsyncBaseTransport):
    """Loopback to the emulator, with every resource's attributes rewritten by ``_future``."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not request.url.path.startswith("/api/") or response.status_code != 200:
            return response
        body = loads(await response.aread())
        await response.aclose()
        data = body.get("data")
        for r in [*(data if isinstance(data, list) else [data]), *body.get("included", [])]:
            if isinstance(r, dict) and isinstance(r.get("attributes"), dict):
                r["attributes"] = _future(r["attributes"])
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")]  # fmt: skip
        return httpx.Response(200, headers=headers, content=dumps(body))

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def synced_future(server: EmulatorServer) -> Iterator[tuple[DuckDBWarehouse, sync.SyncResult]]:
    async def go(wh: DuckDBWarehouse) -> sync.SyncResult:
        async with AsyncClient(server.api_key, base_url=server.base_url, clock=ManualClock(),
                               transport=FutureKlaviyo()) as client:  # fmt: skip
            return await sync.run(client, wh, streams=LISTED)

    wh = DuckDBWarehouse(":memory:")
    try:
        yield wh, asyncio.run(go(wh))
    finally:
        wh.close()


def test_a_sync_over_future_responses_completes_and_keeps_unknown_fields(
    synced_future: tuple[DuckDBWarehouse, sync.SyncResult],
) -> None:
    """In ``raw``, or (profiles, events) in ``other_attributes``."""
    wh, result = synced_future
    assert result.ok, result.to_dict()
    checked, kept_aside = 0, set()
    for name in LISTED:
        for table in get_stream(name).tables:
            column = next((c for c in ("raw", "other_attributes") if c in table.column_names), None)
            if column is None:
                continue
            rows = wh.query(
                f"SELECT count(*), count(*) FILTER (WHERE json_extract({column}, "  # noqa: S608
                "'$.x_kbridge_future')"
                f' = \'{{"nested":[1,null,"new"],"flag":null}}\'::JSON) FROM "{table.name}"'
            )[0]
            assert rows[0] == rows[1], table.name
            checked += rows[0]
            if column == "other_attributes":
                kept_aside.add(table.name)
    assert checked > 100
    assert {"profiles", "events"} <= kept_aside
    # a new enum value lands as given rather than failing the row
    assert (
        wh.query("SELECT count(*) FROM lists WHERE opt_in_process LIKE '%_added_in_2027'")[0][0]
        == wh.query("SELECT count(*) FROM lists WHERE opt_in_process IS NOT NULL")[0][0]
    )
