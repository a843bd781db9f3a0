"""The DuckDB path's jobs against the limits, whatever the values: a payload's size is
bounded from its columns' longest values (not written) unless the bound could bind."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbridge.push import JobLimits, read_source
from kbridge.push._sqlpath import drop, job_body, plan
from kbridge.push.tables import PUSH_TABLES, upgrade_log
from kbridge.warehouse import Warehouse, open_warehouse

pytestmark = pytest.mark.unit

ENVELOPE = 80
PLAN = "_kbridge_push_plan"


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    wh.migrate(PUSH_TABLES)
    upgrade_log(wh)
    yield wh
    wh.close()


def jobs_of(
    wh: Warehouse, rows: list[tuple[str, str | None, float | None]], limits: JobLimits
) -> tuple[list[list[dict[str, object]]], list[tuple[str, str, str]]]:
    wh.query("CREATE OR REPLACE TABLE src (email VARCHAR, note VARCHAR, score DOUBLE)")
    if rows:
        wh.query("INSERT INTO src SELECT * FROM (SELECT unnest(?, recursive := true))", [
            [{"email": e, "note": n, "score": s} for e, n, s in rows]
        ])  # fmt: skip
    source = read_source(wh, table="src")
    drop(wh)
    the_plan = plan(
        wh,
        account_id="A",
        destination="d",
        attrs=[],
        props=["note", "score"],
        id_column="email",
        limits=limits,
        envelope=ENVELOPE,
        full=True,
        types=dict(zip(source.columns, source.types, strict=True)),
    )
    bodies = []
    for job in the_plan.jobs:
        body = job_body(wh, the_plan, job)
        assert ENVELOPE + len(body) <= limits.max_bytes, "a job's body over the byte limit"
        assert len(orjson.loads(body)) == job.rows <= limits.max_rows
        bodies.append(orjson.loads(body))
    return bodies, the_plan.refused


text = st.text(
    alphabet=st.sampled_from(['"', "\\", "\x01", "\n", "é", "😀", "a", "b", " "]), max_size=60
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    notes=st.lists(st.one_of(st.none(), text), min_size=1, max_size=30),
    max_rows=st.integers(1, 12),
    max_bytes=st.integers(600, 3000),
    max_row_bytes=st.integers(150, 600),
)
def test_every_job_keeps_the_limits_and_every_row_is_sent_or_refused_once(
    warehouse: Warehouse, notes: list[str | None], max_rows: int, max_bytes: int,
    max_row_bytes: int,
) -> None:  # fmt: skip
    rows = [(f"p{k}@example.com", n, k / 7) for k, n in enumerate(notes)]
    limits = JobLimits(max_rows=max_rows, max_bytes=max_bytes, max_row_bytes=max_row_bytes)
    bodies, refused = jobs_of(warehouse, rows, limits)
    sent = [p["attributes"]["email"] for body in bodies for p in body]  # type: ignore[index]
    big = [
        e
        for e, n, s in rows
        if len(orjson.dumps({"type": "profile", "attributes": {
            "properties": {"note": n, "score": s}, "email": e}})) > max_row_bytes
    ]  # fmt: skip
    assert [i for i, _, _ in refused] == big
    assert sorted(sent + big) == sorted(e for e, _, _ in rows)


def test_rows_short_enough_are_not_written_to_be_measured(warehouse: Warehouse) -> None:
    # a bound that cannot bind: the plan holds no sizes (they were never written)
    rows = [(f"p{k}@example.com", "x" * 10, 0.5) for k in range(20)]
    limits = JobLimits(max_rows=5, max_bytes=10_000, max_row_bytes=500)
    bodies, refused = jobs_of(warehouse, rows, limits)
    assert ([len(b) for b in bodies], refused) == ([5, 5, 5, 5], [])
    # nothing to compare with: the plan holds each row's key and hash, nothing measured
    assert [c for c, *_ in warehouse.query(f"DESCRIBE {PLAN}")] == ["key", "hash"]
    # a row whose quotes could make it too long (6 bytes a character at most): measured
    rows[3] = ("p3@example.com", '"' * 100, 0.5)
    bodies, refused = jobs_of(warehouse, rows, limits)
    assert ([len(b) for b in bodies], refused) == ([5, 5, 5, 5], [])
    assert warehouse.query(f"SELECT max(size) FROM {PLAN}")[0][0] > 200  # noqa: S608


def test_an_identity_is_trimmed_only_where_a_value_needs_it(warehouse: Warehouse) -> None:
    limits = JobLimits(max_rows=10)
    # trim strips ASCII and Unicode spaces at either end: each such value is trimmed
    for untrimmed in (" p1@example.com", "p1@example.com ", "p1@example.com\u00a0"):
        rows = [("p0@example.com", None, 0.0), (untrimmed, None, 0.0)]
        bodies, _ = jobs_of(warehouse, rows, limits)
        sent = [p["attributes"]["email"] for p in bodies[0]]  # type: ignore[index]
        assert sent == ["p0@example.com", "p1@example.com"]
        keys = warehouse.query(f"SELECT key FROM {PLAN} ORDER BY rowid")  # noqa: S608
        assert keys == warehouse.query("SELECT hash('p0@example.com') UNION ALL "
                                       "SELECT hash('p1@example.com')")  # fmt: skip
    # none needs it: the same keys, read without trimming
    bodies, _ = jobs_of(warehouse, [("p0@example.com", None, 0.0)], limits)
    assert warehouse.query(f"SELECT key FROM {PLAN}") == warehouse.query(  # noqa: S608
        "SELECT hash('p0@example.com')"
    )
