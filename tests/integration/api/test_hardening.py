"""Issue 8's failure modes, each provoked by the emulator and met by the client over loopback.

The client runs on a ManualClock (its pacing and backoff waits are virtual,
so nothing here waits on wall-clock time); the emulator's daily caps roll on
its SimClock, moved with ``/_emulator/clock``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge.api import (
    AsyncClient,
    ChallengeError,
    ClientConfig,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def control(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.base_url}/_emulator/{path}", json=body)
    assert response.is_success, response.text
    return response.json()


def requests_of(server: EmulatorServer, operation_id: str) -> int:
    ops = control(server, "GET", "stats")["operations"]
    return int(ops.get(operation_id, {}).get("requests", 0))


@pytest.fixture(scope="module")
def capped() -> Iterator[EmulatorServer]:
    # Limits 100× the spec's so pacing is not what is tested, but a daily cap of 2 flow reports
    config = EmulatorConfig(seed=3, profiles=20, events=100, rate_limit_factor=100.0,
                            daily_caps={"query_flow_values": 2, "create_list": 2})  # fmt: skip
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


async def test_a_write_with_a_daily_cap_stops_at_it_without_a_retry_loop(
    capped: EmulatorServer,
) -> None:
    # lists: 150 a day at Klaviyo (here 2); the third is refused until the simulated midnight
    clock = ManualClock()
    async with AsyncClient(capped.api_key, base_url=capped.base_url, clock=clock) as api:
        for n in range(2):
            await api.lists.create_list(name=f"capped {n}")
        with pytest.raises(QuotaExhaustedError, match="quota exhausted until"):
            await api.lists.create_list(name="capped 2")
        with pytest.raises(QuotaExhaustedError):  # remembered: not sent again
            await api.lists.create_list(name="capped 3")
    assert requests_of(capped, "create_list") == 3
    assert all(wait < 60 for wait in clock.slept)


# -- CDN challenges, stalls and the write-safety table (docs/design/request-pipeline.md) ------


@pytest.fixture(scope="module")
def faulty() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(seed=13, profiles=20, events=50,
                                       rate_limit_factor=None)) as server:  # fmt: skip
        yield server


class Faults:
    """``faults("stall=1@30s")`` sets a spec; ``faults.counts()`` says what happened since."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.base: dict[str, int] = {}

    def __call__(self, spec: str) -> None:
        control(self.server, "POST", "faults", {"spec": spec})
        self.base = fault_counts(self.server)

    def counts(self) -> dict[str, int]:
        now = fault_counts(self.server)
        return {k: v - self.base.get(k, 0) for k, v in now.items()}


@pytest.fixture
def faults(faulty: EmulatorServer) -> Iterator[Faults]:
    yield Faults(faulty)
    control(faulty, "POST", "faults", {"spec": "off"})


def fault_counts(server: EmulatorServer) -> dict[str, int]:
    """Requests seen on /api/* while a spec was on, and the faults injected, so far."""
    snapshot: dict[str, Any] = control(server, "GET", "stats")["faults"]
    return {"requests": snapshot["requests"], **snapshot["injected"]}


def client(server: EmulatorServer, *, attempts: int = 3, **settings: Any) -> AsyncClient:
    config = ClientConfig(retry=RetryPolicy(max_attempts=attempts), **settings)
    return AsyncClient(server.api_key, base_url=server.base_url, clock=ManualClock(), config=config)


def event_body(metric: str, n: int) -> dict[str, Any]:
    return {"data": {"type": "event", "attributes": {
        "properties": {"n": n}, "metric": {"data": {"type": "metric", "attributes": {
            "name": metric}}},
        "profile": {"data": {"type": "profile", "attributes": {
            "email": f"field-{n}@example.com"}}}}}}  # fmt: skip


async def events_of(api: AsyncClient, metric: str) -> list[Any]:
    metric_id = None
    async for m in api.paginate("get_metrics"):
        if m.attributes.get("name") == metric:
            metric_id = m.id
    assert metric_id is not None, f"no metric {metric}"
    return [e async for e in api.paginate(
        "get_events", params={"filter": f'equals(metric_id,"{metric_id}")'})]  # fmt: skip


# -- transient faults a retry rides out: CDN challenges, bursts of injected 429s ------------
# (``challenge403=RATE``, ``http429=RATE@Ns*BURST``)


@pytest.mark.parametrize(
    ("spec", "fault", "attempts", "reads", "least", "wait"),
    [
        # each challenge costs one retry, after a backoff
        pytest.param("challenge403=0.5", "challenge403", 8, 6, 1, 0, id="challenge"),
        # at least one whole burst; two bursts can abut (a fresh hit right after one ends):
        # 6 in a row, so 7 attempts; each 429 is waited out for its Retry-After (3 s)
        pytest.param("http429=0.2@3s*3", "http429", 7, 12, 3, 3, id="429-bursts"),
    ],
)
async def test_a_transient_fault_on_a_read_is_retried_and_waited_out(
    faulty: EmulatorServer,
    faults: Faults,
    spec: str,
    fault: str,
    attempts: int,
    reads: int,
    least: int,
    wait: float,
) -> None:
    faults(spec)
    async with client(faulty, attempts=attempts) as api:
        ids = [(await api.get_document("get_accounts")).first for _ in range(reads)]
        clock = api._clock
    counts = faults.counts()
    assert all(a is not None and a.id for a in ids)
    assert counts[fault] >= least
    assert counts["requests"] == reads + counts[fault]  # each fault cost one retry
    assert isinstance(clock, ManualClock)
    # a wait before the next attempt for every fault, at least ``wait`` seconds long
    assert sum(1 for slept in clock.slept if slept >= wait) >= counts[fault]


@pytest.mark.parametrize(
    ("spec", "fault", "attempts", "metric", "writes", "least"),
    [
        pytest.param(
            "challenge403=0.5", "challenge403", 8, "Field Challenge", 6, 1, id="challenge"
        ),
        pytest.param("http429=0.3@1s*2", "http429", 6, "Field Throttle", 5, 2, id="429-burst"),
    ],
)
async def test_a_write_through_a_transient_fault_is_retried_and_recorded_once(
    faulty: EmulatorServer,
    faults: Faults,
    spec: str,
    fault: str,
    attempts: int,
    metric: str,
    writes: int,
    least: int,
) -> None:
    faults(spec)
    async with client(faulty, attempts=attempts) as api:
        for n in range(writes):
            await api.request("create_event", json=event_body(metric, n))
        injected = faults.counts()[fault]
        faults("off")
        found = await events_of(api, metric)
    assert injected >= least
    assert sorted(e.attributes["event_properties"]["n"] for e in found) == list(range(writes))


async def test_a_persistent_challenge_is_reported_as_such_not_as_missing_scopes(
    faulty: EmulatorServer, faults: Faults
) -> None:
    faults("challenge403=1")
    async with client(faulty, attempts=3) as api:
        with pytest.raises(ChallengeError) as caught:
            await api.request("get_profiles")
    assert not isinstance(caught.value, PermissionDeniedError)
    assert caught.value.attempts == 3
    assert faults.counts()["requests"] == 3
    message = str(caught.value)
    assert "bot-check" in message
    assert "after 3 attempts" in message
    assert "not a permissions problem" in message


async def test_a_jsonapi_scope_403_is_not_a_challenge_and_is_not_retried(
    faulty: EmulatorServer,
) -> None:
    key = control(faulty, "POST", "keys", {"scopes": ["profiles:read"]})["key"]
    before = requests_of(faulty, "get_metrics")
    async with AsyncClient(key, base_url=faulty.base_url, clock=ManualClock()) as api:
        with pytest.raises(PermissionDeniedError) as caught:
            await api.request("get_metrics")
    assert not isinstance(caught.value, ChallengeError)
    assert "metrics:read" in str(caught.value)
    assert requests_of(faulty, "get_metrics") == before + 1


async def test_a_stalled_get_times_out_and_is_retried_then_reported(
    faulty: EmulatorServer, faults: Faults
) -> None:
    faults("stall=1@30s")
    short = httpx.Timeout(5.0, read=0.3)
    async with client(faulty, attempts=2, timeout=short) as api:
        with pytest.raises(TransportError) as caught:
            await api.request("get_profiles")
    assert caught.value.reached_server
    assert faults.counts()["stall"] == 2  # retried once, never hung


async def test_a_stall_on_a_slow_drip_is_cut_by_the_total_timeout(
    faulty: EmulatorServer, faults: Faults
) -> None:
    faults("stall=1@30s")
    patient = httpx.Timeout(30.0)  # httpx alone would wait 30 s for the first byte
    async with client(faulty, attempts=1, timeout=patient, total_timeout=0.3) as api:
        with pytest.raises(TransportError, match=r"total timeout of 0\.3s"):
            await api.request("get_profiles")
    assert faults.counts()["stall"] == 1


async def test_a_stall_in_the_middle_of_a_run_is_retried_and_the_run_completes(
    faulty: EmulatorServer, faults: Faults
) -> None:
    async with client(faulty, attempts=8, timeout=httpx.Timeout(5.0, read=0.5)) as api:
        expected = {p.id async for p in api.paginate("get_profiles")}
        faults("stall=0.3@30s")
        profiles = [p.id async for p in api.paginate("get_profiles", params={"page[size]": 5})]
    assert faults.counts()["stall"] >= 1
    assert len(profiles) == len(expected)
    assert set(profiles) == expected


def test_a_held_request_does_not_keep_the_emulator_from_stopping() -> None:
    server = EmulatorServer(EmulatorConfig(seed=1, profiles=1, events=0, faults="stall=1@3600s"))
    server.start()
    name = f"kbridge-emulator:{server.port}"
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            response = httpx.get(f"{server.base_url}/api/accounts", headers=headers(server),
                                 timeout=httpx.Timeout(120.0))  # fmt: skip
            outcome.append(response.status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=call)
    waiter.start()
    while fault_counts(server)["stall"] < 1:  # the request is being held
        threading.Event().wait(0.01)
    server.stop()
    waiter.join()
    assert not any(t.name == name for t in threading.enumerate())
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError)


# One class per row of the write-safety table.


@pytest.mark.parametrize(
    ("operation", "path_params", "body", "sends"),
    [
        ("get_profiles", None, None, 3),  # GET: retried on 5xx
        ("update_profile", {"id": "01FIELD"}, {"data": {"type": "profile", "id": "01FIELD",
                                                        "attributes": {}}}, 3),  # PATCH
        ("delete_tag", {"id": "field-tag"}, None, 3),  # DELETE
        ("create_event", None, event_body("Field 5xx", 0), 1),  # POST: may have run
    ],
)  # fmt: skip
async def test_5xx_is_retried_for_idempotent_methods_only(
    faulty: EmulatorServer,
    faults: Faults,
    operation: str,
    path_params: dict[str, str] | None,
    body: Any,
    sends: int,
) -> None:
    faults("http500=1")
    async with client(faulty, attempts=3) as api:
        with pytest.raises(ServerError):
            await api.request(operation, path_params=path_params, json=body)
    assert faults.counts()["requests"] == sends


async def test_a_post_marked_idempotent_is_retried_on_5xx(
    faulty: EmulatorServer, faults: Faults
) -> None:
    faults("http500=1")
    async with client(faulty, attempts=3) as api:
        with pytest.raises(ServerError):
            await api.request("create_event", json=event_body("Field 5xx", 1), idempotent=True)
    assert faults.counts()["requests"] == 3


async def test_a_post_is_not_retried_after_a_read_timeout_or_a_reset(
    faulty: EmulatorServer, faults: Faults
) -> None:
    for spec in ("stall=1@30s", "reset=1"):
        faults(spec)
        async with client(faulty, attempts=3, timeout=httpx.Timeout(5.0, read=0.3)) as api:
            with pytest.raises(TransportError) as caught:
                await api.request("create_event", json=event_body("Field maybe", 2))
        assert caught.value.reached_server
        assert faults.counts()["requests"] == 1, spec


async def test_a_post_that_provably_never_left_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ClientConfig(base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_attempts=3))
    api = AsyncClient("pk_" + "a" * 34, config=config, clock=ManualClock())
    with caplog.at_level(logging.INFO, logger="kbridge.api"):
        async with api:
            with pytest.raises(TransportError) as caught:
                await api.request("create_event", json=event_body("Field unsent", 3))
    assert not caught.value.reached_server
    attempts = [r for r in caplog.records if getattr(r, "operation_id", None) == "create_event"]
    assert [r.__dict__["attempt"] for r in attempts] == [1, 2, 3]


@pytest.fixture(scope="module")
def strict() -> Iterator[EmulatorServer]:
    # create_event at 10 % of Klaviyo's limit (35/s): a burst of 40 posts meets real 429s
    with EmulatorServer(EmulatorConfig(seed=17, profiles=5, events=0,
                                       rate_limit_factor=0.1)) as server:  # fmt: skip
        yield server


async def test_a_post_is_retried_on_429_and_recorded_once(strict: EmulatorServer) -> None:
    # Retry-After is honoured on a real clock here: the emulator's windows are real time.
    # A burst of 40 can straddle the edge of a fixed 1-second window (20 and 20 under 35)
    # and draw no 429, now and then: a few bursts make one all but certain
    sent = 0
    config = ClientConfig(base_url=strict.base_url, retry=RetryPolicy(max_attempts=10))
    async with AsyncClient(strict.api_key, config=config) as api:
        for _ in range(5):
            await asyncio.gather(
                *(
                    api.request("create_event", json=event_body("Field 429", sent + n))
                    for n in range(40)
                )
            )
            sent += 40
            stats = control(strict, "GET", "stats")["operations"]["create_event"]["statuses"]
            if stats.get("429", 0):
                break
    statuses = control(strict, "GET", "stats")["operations"]["create_event"]["statuses"]
    assert statuses.get("429", 0) >= 1
    assert statuses["202"] == sent  # every event accepted exactly once


# -- injected 429s (``http429=RATE@Ns*BURST``) ----------------------------------------------------


async def test_a_429_that_outlasts_the_retries_is_one_rate_limited_error(
    faulty: EmulatorServer, faults: Faults
) -> None:
    faults("http429=1@2s")
    async with client(faulty, attempts=3) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.get_document("get_accounts")
    assert caught.value.retry_after == 2
    assert faults.counts()["requests"] == 3
