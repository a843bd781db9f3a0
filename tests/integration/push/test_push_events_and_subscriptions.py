"""``push_events`` and ``push_subscriptions`` against the emulator over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.push import JobLimits, push_events, push_subscriptions
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Warehouse, open_warehouse
from tests.integration.push.test_push_profiles import client_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory(profiles=0, events=0)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(f"duckdb:///{tmp_path}/wh.duckdb")
    yield wh
    wh.close()


def events_of(server: EmulatorServer, metric: str) -> list[dict[str, Any]]:
    with http_client_for(server) as http:
        metrics = http.get("/api/metrics").json()["data"]
        ids = [m["id"] for m in metrics if m["attributes"]["name"] == metric]
        if not ids:
            return []
        out: list[dict[str, Any]] = []
        url: str | None = "/api/events"
        params: dict[str, str] | None = {"filter": f'equals(metric_id,"{ids[0]}")'}
        while url:
            page = http.get(url, params=params).json()
            out.extend(page["data"])
            url, params = page["links"].get("next"), None
        return out


def orders(n: int, bad: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "email": f"o{i}@example.com",
            "order_id": f"order-{i}",
            "at": "not a time" if i == bad else f"2026-01-{1 + i % 28:02d}T10:00:00+00:00",
            "total": 10.0 + i,
            "sku": f"SKU{i % 3}",
        }
        for i in range(n)
    ]


async def test_events_in_jobs_once_each_and_a_bad_row_set_aside(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    kw: dict[str, Any] = {
        "warehouse": warehouse,
        "metric": "Warehouse Order",
        "time_column": "at",
        "value_column": "total",
        "unique_id_column": "order_id",
        "clock": ManualClock(),
        "limits": JobLimits(max_rows=10),
    }
    async with client_for(server) as client:
        out = (await push_events(client, orders(25, bad=12), **kw)).as_dict()
        assert (out["rows"], out["sent"], out["errors"], out["jobs"]) == (25, 24, 1, 3)
        again = (await push_events(client, orders(25, bad=12), **kw)).as_dict()
        assert (again["sent"], again["unchanged"]) == (0, 24)
        # resent in full: Klaviyo's unique_id keeps each event once
        await push_events(client, orders(25, bad=12), full=True, **kw)
    got = events_of(server, "Warehouse Order")
    assert len(got) == 24
    assert warehouse.query("SELECT identity, field FROM push_errors") == [("order-12", "time")]
    props = next(
        e for e in got if e["attributes"]["event_properties"].get("$event_id") == "order-3"
    )
    assert props["attributes"]["event_properties"]["sku"] == "SKU0"


async def test_no_recorded_consent_is_never_subscribed(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    rows = [
        {"email": "yes@example.com", "consent": True},
        {"email": "word@example.com", "consent": "yes"},
        {"email": "none@example.com", "consent": None},
        {"email": "maybe@example.com", "consent": "maybe"},
        {"email": "no@example.com", "consent": "false"},
    ]
    async with client_for(server) as client:
        out = (
            await push_subscriptions(
                client, rows, warehouse=warehouse, consent_column="consent", clock=ManualClock()
            )
        ).as_dict()
    assert (out["rows"], out["sent"], out["skipped_no_consent"], out["jobs"]) == (5, 3, 2, 2)
    with http_client_for(server) as http:
        http.get("/api/accounts")  # runs the queued jobs
    store = server.state.backend.store

    def consent(email: str) -> str | None:
        p = store.find_identifier("email", email)
        return None if p is None else p.email_consent

    assert consent("yes@example.com") == consent("word@example.com") == "SUBSCRIBED"
    assert consent("none@example.com") is None
    assert consent("maybe@example.com") is None
    assert consent("no@example.com") in (None, "UNSUBSCRIBED")
