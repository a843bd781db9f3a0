"""Issue 8's failure modes, each provoked by the emulator and met by the client over loopback.

The client runs on a ManualClock (its pacing and backoff waits are virtual,
so nothing here waits on wall-clock time); the emulator's daily caps roll on
its SimClock, moved with ``/_emulator/clock``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.api import AsyncClient, QuotaExhaustedError
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def control(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.base_url}/_emulator/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def requests_of(server: EmulatorServer, operation_id: str) -> int:
    ops = control(server, "GET", "stats")["operations"]
    return int(ops.get(operation_id, {}).get("requests", 0))


@pytest.fixture(scope="module")
def capped() -> Iterator[EmulatorServer]:
    # Limits 100× the spec's so pacing is not what is tested, but a daily cap of 2 flow reports
    config = EmulatorConfig(seed=3, profiles=20, events=100, rate_limit_factor=100.0,
                            daily_caps={"query_flow_values": 2})  # fmt: skip
    with EmulatorServer(config) as server:
        yield server


def flow_values_body(server: EmulatorServer) -> dict[str, Any]:
    metrics = httpx.get(f"{server.base_url}/api/metrics", headers=headers(server)).json()["data"]
    placed = next(m["id"] for m in metrics if m["attributes"]["name"] == "Placed Order")
    return {"data": {"type": "flow-values-report", "attributes": {
        "statistics": ["recipients"], "timeframe": {"key": "last_30_days"},
        "conversion_metric_id": placed}}}  # fmt: skip


def headers(server: EmulatorServer) -> dict[str, str]:
    return {"authorization": f"Klaviyo-API-Key {server.api_key}", "revision": "2026-07-15"}


async def test_a_spent_daily_cap_raises_quota_exhausted_once_and_is_not_looped_on(
    capped: EmulatorServer,
) -> None:
    body = flow_values_body(capped)
    clock = ManualClock()
    async with AsyncClient(capped.api_key, base_url=capped.base_url, clock=clock) as api:
        for _ in range(2):
            await api.request("query_flow_values", json=body)
        with pytest.raises(QuotaExhaustedError) as caught:
            await api.request("query_flow_values", json=body)
        assert requests_of(capped, "query_flow_values") == 3
        # the emulator's simulated day ends at its midnight; the client counts from its own now
        now = control(capped, "GET", "clock")["now"]
        assert "quota exhausted until" in str(caught.value)
        assert caught.value.resets_at > clock.now()
        with pytest.raises(QuotaExhaustedError):  # remembered: not even sent
            await api.request("query_flow_values", json=body)
        assert requests_of(capped, "query_flow_values") == 3
        assert all(wait < 60 for wait in clock.slept)  # never slept towards the reset
        # the next simulated day: the emulator admits again, and so does the client
        control(capped, "POST", "clock", {"advance_seconds": 86400})
        clock.set_now(caught.value.resets_at)
        await api.request("query_flow_values", json=body)
    assert control(capped, "GET", "clock")["now"] > now
