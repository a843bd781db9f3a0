"""``push_profiles`` against the emulator over loopback, with a real DuckDB warehouse."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.push import JobLimits, PushInputError, push_profiles, read_source
from kbridge.testing.plugin import http_client_for
from kbridge.warehouse import Warehouse, open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

IMPORT = "profile-bulk-import-job"


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory(profiles=0, events=0)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(f"duckdb:///{tmp_path}/wh.duckdb")
    yield wh
    wh.close()


def client_for(server: EmulatorServer) -> AsyncClient:
    from kbridge.api import ClientConfig, LimiterConfig

    return AsyncClient(
        server.api_key,
        base_url=server.base_url,
        config=ClientConfig(limiter=LimiterConfig(limit_factor=None)),
    )


def import_jobs(server: EmulatorServer) -> list[Any]:
    jobs = server.state.backend.store.jobs.values()
    return sorted((j for j in jobs if j.kind == IMPORT), key=lambda j: j.seq)


def profile(server: EmulatorServer, email: str) -> dict[str, Any] | None:
    with http_client_for(server) as http:
        found = http.get("/api/profiles", params={"filter": f'equals(email,"{email}")'})
        found.raise_for_status()
        data = found.json()["data"]
    return data[0]["attributes"] if data else None


def rows(n: int, *, risk: Callable[[int], float] = lambda i: i / 100) -> list[dict[str, Any]]:
    return [
        {"email": f"p{i}@example.com", "first_name": f"P{i}", "churn_risk": risk(i)}
        for i in range(n)
    ]


#: how ``push`` hands its rows over: "rows" (Python mappings, encoded row by row) or "sql"
#: (a file read into the warehouse: DuckDB builds, hashes and packs the payloads)
VIA = ["rows"]


@pytest.fixture(autouse=True, params=["rows", "sql"])
def via(request: pytest.FixtureRequest) -> Iterator[str]:
    VIA[0] = request.param
    yield request.param
    VIA[0] = "rows"


async def push(server: EmulatorServer, wh: Warehouse, data: Any, **kw: Any) -> dict[str, int]:
    if VIA[0] == "sql" and isinstance(data, list):
        with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
            f.write(b"".join(orjson.dumps(r) + b"\n" for r in data))
        data = read_source(wh, file=f.name)
        os.unlink(f.name)
    async with client_for(server) as client:
        summary = await push_profiles(
            client, data, warehouse=wh, clock=ManualClock(), **{"id_column": "email", **kw}
        )
    return summary.as_dict()


async def test_jobs_are_split_by_count(server: EmulatorServer, warehouse: Warehouse) -> None:
    out = await push(server, warehouse, rows(10_001))
    assert (out["sent"], out["jobs"], out["errors"]) == (10_001, 2, 0)
    assert [j.total_count for j in import_jobs(server)] == [10_000, 1]
    assert profile(server, "p10000@example.com") is not None


async def test_jobs_are_split_by_encoded_size(server: EmulatorServer, warehouse: Warehouse) -> None:
    bulky = [{"email": f"b{i}@example.com", "note": "x" * 3000} for i in range(40)]
    limits = JobLimits(max_rows=10_000, max_bytes=20_000)
    out = await push(server, warehouse, bulky, limits=limits)
    totals = [j.total_count for j in import_jobs(server)]
    assert out["jobs"] == len(totals) > 1
    assert sum(totals) == 40
    # each row encodes to just over 3 KB: six fit under 20,000 bytes with the envelope, seven not
    assert totals[:-1] == [6] * (len(totals) - 1)


async def test_a_rerun_sends_only_the_changed_rows(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    first = await push(server, warehouse, rows(300))
    assert (first["sent"], first["unchanged"]) == (300, 0)
    changed = {7, 123, 250}  # 1 %
    second = await push(
        server, warehouse, rows(300, risk=lambda i: 9.0 if i in changed else i / 100)
    )
    assert (second["rows"], second["sent"], second["unchanged"]) == (300, 3, 297)
    assert [j.total_count for j in import_jobs(server)] == [300, 3]
    got = profile(server, "p123@example.com")
    assert got is not None
    assert got["properties"]["churn_risk"] == 9.0
    full = await push(server, warehouse, rows(300), full=True)
    assert full["sent"] == 300


async def test_dry_run_sends_nothing_and_records_nothing(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    out = await push(server, warehouse, rows(5), dry_run=True)
    assert (out["sent"], out["jobs"]) == (5, 1)
    assert import_jobs(server) == []
    again = await push(server, warehouse, rows(5))
    assert again["sent"] == 5


async def test_refused_rows_land_in_push_errors_and_the_good_rows_are_imported(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    data = [
        {"email": "good1@example.com", "phone_number": None, "plan": "gold"},
        {"email": "not-an-email", "phone_number": None, "plan": "x"},
        {"email": "badphone@example.com", "phone_number": "12", "plan": "x"},
        {"email": "huge@example.com", "phone_number": None, "plan": "y" * 150_000},
        {"email": "good2@example.com", "phone_number": "+15005550006", "plan": "silver"},
    ]
    out = await push(server, warehouse, data)
    assert (out["rows"], out["sent"], out["errors"]) == (5, 4, 3)
    errors = warehouse.query("SELECT identity, field, reason FROM push_errors ORDER BY identity")
    assert [(i, f) for i, f, _ in errors] == [
        ("badphone@example.com", "phone_number"),
        ("huge@example.com", "profile"),
        ("not-an-email", "email"),
    ]
    assert all(reason for _, _, reason in errors)
    good1, good2 = profile(server, "good1@example.com"), profile(server, "good2@example.com")
    assert good1 is not None
    assert good2 is not None
    assert good1["properties"]["plan"] == "gold"
    assert (good2["properties"]["plan"], good2["phone_number"]) == ("silver", "+15005550006")
    assert profile(server, "badphone@example.com") is None
    # refused rows are not remembered as sent: the next push tries them again
    again = await push(server, warehouse, data)
    assert (again["sent"], again["unchanged"], again["errors"]) == (2, 2, 3)


async def test_list_association(server: EmulatorServer, warehouse: Warehouse) -> None:
    with http_client_for(server) as http:
        made = http.post(
            "/api/lists",
            json={"data": {"type": "list", "attributes": {"name": "Churn risk"}}},
            headers={"content-type": "application/vnd.api+json"},
        )
        made.raise_for_status()
        list_id = made.json()["data"]["id"]
    await push(server, warehouse, rows(4), list_id=list_id)
    store = server.state.backend.store
    members = {store.profiles[s].email for s in store.lists[list_id].members}
    assert members == {f"p{i}@example.com" for i in range(4)}


async def test_a_push_interrupted_after_a_job_polls_it_instead_of_resending(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    class Interrupted(Exception):
        pass

    def stop_after_first(job_id: str | None, n: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await push(
            server, warehouse, rows(25), limits=JobLimits(max_rows=10), on_job=stop_after_first
        )
    pending = warehouse.query("SELECT status FROM push_jobs")
    assert pending == [("queued",)]
    out = await push(server, warehouse, rows(25), limits=JobLimits(max_rows=10))
    assert (out["sent"], out["unchanged"], out["jobs"]) == (15, 10, 2)
    assert sum(j.total_count for j in import_jobs(server)) == 25
    assert warehouse.query("SELECT DISTINCT status FROM push_jobs") == [("complete",)]


def test_the_source_is_checked_before_any_request(warehouse: Warehouse, tmp_path: Path) -> None:
    warehouse.query(
        "CREATE TABLE scores AS SELECT * FROM (VALUES ('a@example.com', 1), (NULL, 2)) t(email, s)"
    )
    src = read_source(warehouse, table="scores")
    with pytest.raises(PushInputError, match="no column 'risk'"):
        src.check("email", ["risk"])
    with pytest.raises(PushInputError, match="1 of 2 rows have no email"):
        src.check("email", ["s"])
    with pytest.raises(PushInputError, match="cannot read the query"):
        read_source(warehouse, query="SELECT nope FROM nowhere")
    csv = tmp_path / "rows.csv"
    csv.write_text("email,plan\nx@example.com,gold\n")
    got = read_source(warehouse, file=csv)
    assert (got.columns, list(got)) == (
        ("email", "plan"),
        [{"email": "x@example.com", "plan": "gold"}],
    )


async def test_an_identity_named_twice_across_jobs_ends_with_its_last_row(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    data = [
        {"email": "a@example.com", "churn_risk": 0.1},
        {"email": "b@example.com", "churn_risk": 0.2},
        {"email": "a@example.com", "churn_risk": 0.9},
        {"email": "c@example.com", "churn_risk": 0.3},
    ]
    out = await push(server, warehouse, data, limits=JobLimits(max_rows=2))
    assert (out["sent"], out["jobs"], out["errors"]) == (4, 2, 0)
    got = profile(server, "a@example.com")
    assert got is not None
    assert got["properties"]["churn_risk"] == 0.9
    state = [i for i, _ in state_rows(warehouse, [str(r["email"]) for r in data])]
    assert state == ["a@example.com", "b@example.com", "c@example.com"]


async def test_the_warehouse_keeps_its_settings_after_a_push(
    server: EmulatorServer, warehouse: Warehouse
) -> None:
    # the DuckDB path runs on one thread and a bounded cache while it pushes, then gives
    # the settings back
    warehouse.query("SET threads = 3")
    warehouse.query("SET memory_limit = '2GiB'")
    await push(server, warehouse, rows(5))
    settings = "SELECT current_setting('threads'), current_setting('memory_limit')"
    assert warehouse.query(settings) == [(3, "2.0 GiB")]


def state_rows(wh: Warehouse, identities: list[str]) -> list[tuple[str, int]]:
    """(identity, hash) of every row pushed, wherever the path keeps it. ``push_log``
    keeps an identity's hash (``key``): its lines are named from ``identities``, and a
    line of none of them as ``?``."""
    rows = wh.query("SELECT identity, hash FROM push_state")
    if wh.query("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'push_log'")[0][0]:
        rows += wh.query(
            "SELECT coalesce(v.e, '?'), l.hash FROM push_log l LEFT JOIN "
            "(SELECT DISTINCT unnest(CAST(? AS VARCHAR[])) AS e) v ON l.key = hash(v.e)",
            [identities],
        )
    return sorted((str(i), int(h)) for i, h in rows)
