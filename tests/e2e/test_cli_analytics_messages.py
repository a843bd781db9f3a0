"""``kbridge analytics performance|attribution``: what the report shows, on the command line."""

from __future__ import annotations

import pytest

from kbridge.core import loads
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.campaign_shop import build

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    wh = open_warehouse(f"duckdb:///{path}")
    build("A").write(wh)
    wh.close()
    return f"duckdb:///{path}"


def test_performance_lists_every_message_with_names_and_last_touch_revenue(
    shop_url: str,
) -> None:
    result = run("analytics", "performance", "--from", shop_url, "--account", "A", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    assert doc["summary"]["account"] == "A"
    assert doc["summary"]["revenue"] == 190.0
    (messages,) = doc["tables"]
    rows = {r["message_id"]: r for r in messages["rows"]}
    assert list(rows) == ["M1", "M2", "FM1"]
    assert (rows["M1"]["name"], rows["M1"]["revenue"], rows["M1"]["conversions"]) == (
        "Spring sale",
        140.0,
        2,
    )
    assert rows["FM1"]["source"] == "flow"


def test_performance_reconciles_with_klaviyos_reports_on_request(shop_url: str) -> None:
    result = run(
        "analytics",
        "performance",
        "--from",
        shop_url,
        "--account",
        "A",
        "--reconcile",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    tables = loads(result.stdout)["tables"]
    assert len(tables) == 2
    assert tables[1]["rows"]  # one row per message and statistic


def test_attribution_credits_last_touch_and_names_the_unattributed(shop_url: str) -> None:
    result = run("analytics", "attribution", "--from", shop_url, "--account", "A", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    summary = doc["summary"]
    assert (summary["conversions"], summary["attributed_conversions"]) == (5, 4)
    assert summary["unattributed_revenue"] == 50.0
    rows = {r["id"]: r for r in doc["tables"][0]["rows"]}
    assert rows["C1"]["revenue"] == 140.0
    assert rows["F1"]["source"] == "flow"


def test_table_output_and_bad_input(shop_url: str) -> None:
    table = run("analytics", "attribution", "--from", shop_url, "--account", "A", "-o", "table")
    assert table.returncode == 0, table.stderr
    assert "Spring sale" in table.stdout
    bad = run(
        "analytics", "performance", "--from", shop_url, "--account", "A", "--since", "last week"
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "error: --since: 'last week' is not an ISO date-time like 2026-06-01T00:00:00Z"
    )
