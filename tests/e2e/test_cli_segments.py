"""``kbridge analytics consent`` and ``rfm`` through the real console script."""

from __future__ import annotations

import pytest

from kbridge.core import loads
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.seed import ACCOUNT, Seed
from tests.unit.analytics.test_consent import seed_consent
from tests.unit.analytics.test_rfm import seed_rfm

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("segments") / "wh.duckdb"
    wh = open_warehouse(str(path))
    try:
        seed = Seed(wh)
        seed_consent(seed)
        seed_rfm(seed)
    finally:
        wh.close()
    return f"duckdb:///{path}"


def test_consent_json(warehouse_url: str) -> None:
    result = run("analytics", "consent", "--from", warehouse_url, "--as-of", "2026-06-01",
                 "--months", "3", "--output", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    assert doc["summary"]["email_reachable"] == 3
    titles = [t["title"] for t in doc["tables"]]
    assert titles == [
        "Marketing consent by channel",
        "Suppression reasons",
        "How profiles reached their consent state",
        "Consent at each month end",
    ]
    rows = doc["tables"][0]["rows"]
    email = {r["state"]: r["profiles"] for r in rows if r["channel"] == "email"}
    assert email == {"SUBSCRIBED": 4, "UNSUBSCRIBED": 1, "NEVER_SUBSCRIBED": 12}


def test_rfm_table_and_json(warehouse_url: str) -> None:
    table = run("analytics", "rfm", "--from", warehouse_url, "--as-of", "2026-06-01",
                "--output", "table")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "RFM segments" in table.stdout
    assert "Can't lose them" in table.stdout
    as_json = run(
        "analytics", "rfm", "--from", warehouse_url, "--as-of", "2026-06-01", "-o", "json"
    )
    assert as_json.returncode == 0, as_json.stderr
    doc = loads(as_json.stdout)
    assert doc["summary"] == {"account": ACCOUNT, "as_of": "2026-06-01T00:00:00+00:00",
                              "customers": 10}  # fmt: skip
    sizes = {r["segment"]: r["profiles"] for r in doc["tables"][0]["rows"]}
    assert sizes["Champions"] == 2
    assert sizes["Lost"] == 2


def test_push_problems_are_one_line(warehouse_url: str) -> None:
    result = run("analytics", "rfm", "--from", warehouse_url, "--list-name", "X")
    assert result.returncode == 1
    assert result.stderr.startswith("error: --list-name needs --push SEGMENT")
    nowhere = ("--api-key", "pk_" + "x" * 34, "--base-url", "http://127.0.0.1:9")
    empty = run("analytics", "rfm", "--from", warehouse_url, "--as-of", "2026-06-01",
                "--push", "Hibernating", *nowhere)  # fmt: skip
    assert empty.returncode == 1
    assert empty.stderr.startswith("error: segment 'Hibernating' has no profiles as of 2026-06-01")
    unreachable = run("analytics", "rfm", "--from", warehouse_url, "--push", "champions", *nowhere)
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: 'analytics rfm --push' failed: ")
    assert "x" * 34 not in unreachable.stderr
    for r in (result, empty, unreachable):
        assert "Traceback" not in r.stderr
