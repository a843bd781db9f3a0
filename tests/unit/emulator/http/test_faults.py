"""Fault injection: the spec grammar, deterministic decisions, each fault's answer in process."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from kbridge.cli.app import app as cli_app
from kbridge.emulator.http.faults import (
    FAULT_KINDS,
    FaultInjector,
    FaultSpec,
    FaultSpecError,
    parse_faults,
    spec_from_json,
)
from tests.unit.emulator.http.test_app_fakes import assert_error, client_for, make_app

pytestmark = pytest.mark.unit


# -- the spec grammar --------------------------------------------------------------------------


def test_parses_the_documented_example() -> None:
    spec = parse_faults(
        "http500=0.02,http503=0.01,timeout=0.01,reset=0.01,latency=20ms±10ms,truncate=0.005"
    )
    assert spec.http500 == 0.02
    assert spec.http503 == 0.01
    assert spec.timeout == 0.01
    assert spec.reset == 0.01
    assert spec.truncate == 0.005
    assert spec.latency_mean == pytest.approx(0.020)
    assert spec.latency_jitter == pytest.approx(0.010)
    assert spec.timeout_hold == 65.0
    assert spec.retry_after is None
    assert spec.active


def test_suffixes_set_holds_and_retry_after() -> None:
    spec = parse_faults(
        " timeout=0.5@2s , stall=1@250ms, http503=0.1@1.5s, challenge403=0.2, latency=0.1s+-5ms"
    )
    assert spec.timeout_hold == 2.0
    assert spec.stall_hold == 0.25
    assert spec.retry_after == 2  # rounded up: a client must not come back early
    assert spec.challenge403 == 0.2
    assert spec.latency_mean == pytest.approx(0.1)
    assert spec.latency_jitter == pytest.approx(0.005)


@pytest.mark.parametrize("text", [None, "", "off", "OFF", " none "])
def test_off_means_no_faults(text: str | None) -> None:
    assert parse_faults(text) == FaultSpec()
    assert not parse_faults(text).active
    assert parse_faults(text).describe() == "off"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("http502=0.1", "unknown fault 'http502'"),
        ("http500", "kind=value"),
        ("http500=", "kind=value"),
        ("http500=1.5", "between 0 and 1"),
        ("http500=-0.1", "http500"),
        ("http500=lots", "http500"),
        ("http500=0.1,http500=0.2", "more than once"),
        ("timeout=0.1@soon", "duration"),
        ("timeout=0.1@0s", "positive"),
        ("reset=0.1@2s", "only timeout, stall, http503 and http429"),
        ("latency=20", "MEAN±JITTER"),
        ("latency=fast", "latency"),
    ],
)
def test_parse_errors_name_the_offending_part(text: str, names: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(text)
    assert names in str(caught.value)


def test_describe_round_trips() -> None:
    text = "reset=0.01,stall=0.2@2s,timeout=0.1@500ms,http503=0.3@5s,http500=0.02,latency=20ms±10ms"
    spec = parse_faults(text)
    assert parse_faults(spec.describe()) == spec
    assert spec.describe() == text


def test_json_forms_parse_like_the_string() -> None:
    expected = parse_faults("http500=0.02,timeout=0.1@2s")
    assert spec_from_json("http500=0.02,timeout=0.1@2s") == expected
    assert spec_from_json({"spec": "http500=0.02,timeout=0.1@2s"}) == expected
    assert spec_from_json({"http500": 0.02, "timeout": "0.1@2s"}) == expected
    assert spec_from_json(None) == FaultSpec()
    with pytest.raises(FaultSpecError):
        spec_from_json([1, 2])
    with pytest.raises(FaultSpecError):
        spec_from_json({"http500": True})


# -- decisions ---------------------------------------------------------------------------------


def sequence(injector: FaultInjector, n: int) -> list[str | None]:
    return [injector.decide().kind for _ in range(n)]


def test_decisions_are_deterministic_under_the_seed_and_follow_the_rates() -> None:
    spec = parse_faults("http500=0.2,http503=0.1,reset=0.05")
    first = sequence(FaultInjector(spec, seed=7), 2000)
    assert first == sequence(FaultInjector(spec, seed=7), 2000)
    assert first != sequence(FaultInjector(spec, seed=8), 2000)
    counts = Counter(first)
    assert 300 < counts["http500"] < 500
    assert 100 < counts["http503"] < 260
    assert 50 < counts["reset"] < 150


def test_one_kinds_fate_does_not_depend_on_the_other_rates() -> None:
    alone = FaultInjector(parse_faults("http500=0.3"), seed=3)
    mixed = FaultInjector(parse_faults("http500=0.3,latency=5ms±5ms,truncate=0.0"), seed=3)
    hits_alone = [kind == "http500" for kind in sequence(alone, 500)]
    hits_mixed = [kind == "http500" for kind in sequence(mixed, 500)]
    assert 100 < sum(hits_alone) < 200  # the faults fire, at about their rate
    assert hits_alone == hits_mixed


def test_configure_restarts_the_rngs_and_counts_are_kept_per_kind() -> None:
    injector = FaultInjector(parse_faults("http503=0.5"), seed=1)
    first = sequence(injector, 50)
    injector.configure(parse_faults("http503=0.5"))
    assert sequence(injector, 50) == first
    snapshot = injector.snapshot()
    assert snapshot["requests"] == 100
    assert snapshot["injected"]["http503"] == 2 * first.count("http503")
    assert set(snapshot["injected"]) == {*FAULT_KINDS, "latency"}
    injector.clear()
    assert injector.snapshot()["requests"] == 0


def test_latency_draws_stay_within_mean_plus_or_minus_jitter() -> None:
    injector = FaultInjector(parse_faults("latency=20ms±10ms"), seed=5)
    delays = [injector.decide().delay for _ in range(500)]
    assert all(0.010 <= d <= 0.030 for d in delays)
    assert max(delays) - min(delays) > 0.015
    assert injector.snapshot()["injected"]["latency"] == 500


def test_only_api_paths_are_subject_to_faults() -> None:
    injector = FaultInjector(parse_faults("http500=1"), seed=1)
    assert injector.applies_to("/api/profiles")
    assert not injector.applies_to("/_emulator/stats")
    assert not injector.applies_to("/oauth/token")
    assert not injector.applies_to("/client/subscriptions")
    assert not FaultInjector(FaultSpec(), seed=1).applies_to("/api/profiles")


# -- answers, in process -----------------------------------------------------------------------


def faulted_app(spec: str) -> tuple[Any, Any]:
    app, backend, *_ = make_app(faults=spec)
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    app.state.emulator.faults._sleep = record_sleep
    return app, (backend, slept)


@pytest.mark.anyio
async def test_http500_answers_before_the_backend_is_touched() -> None:
    app, (backend, _) = faulted_app("http500=1")
    async with client_for(app) as c:
        r = await c.post(
            "/api/lists",
            json={"data": {"type": "list", "attributes": {"name": "x"}}},
            headers={"content-type": "application/vnd.api+json"},
        )
        plane = await c.get("/_emulator/stats")
    error = assert_error(r, 500, "error")
    assert "http500" in error["detail"]
    assert backend.calls == []
    assert plane.status_code == 200
    assert plane.json()["faults"]["injected"]["http500"] == 1


@pytest.mark.anyio
async def test_http503_carries_retry_after_when_asked() -> None:
    app, _ = faulted_app("http503=1@3s")
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    assert_error(r, 503, "service_unavailable")
    assert r.headers["retry-after"] == "3"


@pytest.mark.anyio
async def test_challenge403_is_an_html_page_marked_as_a_challenge() -> None:
    app, (backend, _) = faulted_app("challenge403=1")
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    assert r.status_code == 403
    assert r.headers["cf-mitigated"] == "challenge"
    assert r.headers["content-type"].startswith("text/html")
    assert "Just a moment" in r.text
    assert backend.calls == []


@pytest.mark.anyio
async def test_timeout_holds_then_answers_504_without_the_backend() -> None:
    app, (backend, _) = faulted_app("timeout=1@10ms")
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    assert_error(r, 504, "error")
    assert backend.calls == []


@pytest.mark.anyio
async def test_latency_sleeps_then_serves_normally() -> None:
    app, (backend, slept) = faulted_app("latency=40ms")
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    assert r.status_code == 200
    assert slept == [pytest.approx(0.040)]
    assert len(backend.calls) == 1


@pytest.mark.anyio
async def test_reset_and_truncate_without_a_socket_raise_inside_the_app() -> None:
    for spec, calls in (("reset=1", 0), ("truncate=1", 1)):
        app, (backend, _) = faulted_app(spec)
        async with client_for(app) as c:
            with pytest.raises(ConnectionResetError):
                await c.get("/api/accounts")
        assert len(backend.calls) == calls, spec


@pytest.mark.anyio
async def test_faults_can_be_read_and_set_at_runtime() -> None:
    app, _ = faulted_app("off")
    async with client_for(app) as c:
        before = await c.get("/_emulator/faults")
        as_text = await c.post("/_emulator/faults", json="http500=1")
        plain_text = await c.post("/_emulator/faults", content=b"http503=1")
        failing = await c.get("/api/accounts")
        as_json = await c.post("/_emulator/faults", json={"http503": 0.5, "timeout": "0.1@2s"})
        bad = await c.post("/_emulator/faults", json={"http502": 1})
        off = await c.post("/_emulator/faults", json=None)
        works = await c.get("/api/accounts")
    assert before.json()["spec"] == "off"
    assert as_text.status_code == 200
    assert as_text.json()["spec"] == "http500=1"
    assert plain_text.status_code == 415  # what a cross-site form could send
    assert failing.status_code == 500
    assert as_json.json()["spec"] == "timeout=0.1@2s,http503=0.5"
    assert as_json.json()["faults"]["timeout_hold"] == 2.0
    assert bad.status_code == 400
    assert "http502" in bad.json()["error"]
    assert off.json()["spec"] == "off"
    assert off.json()["counts"]["http500"] == 1
    assert works.status_code == 200


def test_an_invalid_config_spec_fails_app_creation() -> None:
    with pytest.raises(FaultSpecError):
        make_app(faults="http500=2")


def test_cli_refuses_a_bad_faults_spec_with_one_line() -> None:
    result = CliRunner().invoke(cli_app, ["emulator", "serve", "--faults", "http500=lots"])
    assert result.exit_code == 1
    assert "--faults" in result.output
    assert "http500" in result.output
    assert "Traceback" not in result.output


@pytest.mark.anyio
async def test_an_emulator_reset_replays_the_same_faults() -> None:
    app, _ = faulted_app("http500=0.5")
    async with client_for(app) as c:
        first = [(await c.get("/api/accounts")).status_code for _ in range(12)]
        assert (await c.post("/_emulator/reset")).status_code == 200
        again = [(await c.get("/api/accounts")).status_code for _ in range(12)]
    assert first == again
    assert set(first) == {200, 500}


_rates = st.sampled_from([0.0, 0.001, 0.02, 0.5, 1.0])
_millis = st.integers(min_value=1, max_value=5000)


@given(
    rates=st.fixed_dictionaries(dict.fromkeys(FAULT_KINDS, _rates)),
    mean=_millis,
    jitter=st.integers(min_value=0, max_value=100),
    hold=_millis,
)
def test_any_spec_describes_itself_in_a_string_that_parses_back(
    rates: dict[str, float], mean: int, jitter: int, hold: int
) -> None:
    spec = FaultSpec(
        **rates,
        # a hold only shows (and only matters) while its kind can fire
        timeout_hold=hold / 1000 if rates["timeout"] > 0 else FaultSpec().timeout_hold,
        latency_mean=mean / 1000,
        latency_jitter=jitter / 1000,
    )
    assert parse_faults(spec.describe()) == spec


# -- 429s and their bursts ---------------------------------------------------------------------


def test_http429_takes_a_retry_after_and_a_burst() -> None:
    spec = parse_faults("http429=0.05@2.5s*4")
    assert (spec.http429, spec.retry_after_429, spec.burst_429) == (0.05, 3, 4)
    assert parse_faults("http429=0.05") == FaultSpec(http429=0.05, retry_after_429=1, burst_429=1)
    assert parse_faults(spec.describe()) == spec
    assert spec_from_json({"http429": "0.05@2.5s*4"}) == spec
    with pytest.raises(FaultSpecError, match=r"only http429 takes a \*N burst"):
        parse_faults("http500=0.1*3")
    with pytest.raises(FaultSpecError, match="at least 1"):
        parse_faults("http429=0.1*0")


def test_each_429_hit_is_a_burst_of_consecutive_429s() -> None:
    injector = FaultInjector(parse_faults("http429=0.1*3"), seed=5)
    kinds = [injector.decide().kind for _ in range(2000)]
    runs: list[int] = []
    for k, kind in enumerate(kinds):
        if kind == "http429":
            if k > 0 and kinds[k - 1] == "http429":
                runs[-1] += 1
            else:
                runs.append(1)
    assert runs, "no burst in 2000 requests at 10 %"
    # a hit inside a burst does not lengthen it; bursts can only abut
    assert all(run % 3 == 0 for run in runs[:-1])
    assert 0.1 < kinds.count("http429") / len(kinds) < 0.4
    assert injector.snapshot()["injected"]["http429"] == kinds.count("http429")


@pytest.mark.anyio
async def test_http429_answers_like_the_rate_limiter_without_the_backend() -> None:
    app, (backend, _) = faulted_app("http429=1@2s*2")
    async with client_for(app) as c:
        r = await c.get("/api/accounts")
    error = assert_error(r, 429, "throttled")
    assert r.headers["retry-after"] == "2"
    assert error["title"] == "Request was throttled."
    assert error["detail"] == "Request was throttled. Expected available in 2 seconds."
    assert error["source"] == {"pointer": "/data/"}
    assert backend.calls == []
