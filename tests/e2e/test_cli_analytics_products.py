"""``kbridge analytics products``: the report's "Top products" on the command line."""

from __future__ import annotations

import pytest

from kbridge.core import loads
from kbridge.warehouse import open_warehouse
from tests.e2e.test_cli import run
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed
from tests.unit.analytics.test_products import seed_shop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("products") / "shop.duckdb"
    wh = open_warehouse(f"duckdb:///{path}")
    seed_shop(Seed(wh))
    wh.close()
    return f"duckdb:///{path}"


def test_products_lists_the_top_overall_and_per_segment(shop_url: str) -> None:
    args = ("--from", shop_url, "--as-of", AS_OF.isoformat(), "--top", "2", "-o", "json")
    result = run("analytics", "products", *args)
    assert result.returncode == 0, result.stderr
    doc = loads(result.stdout)
    summary = doc["summary"]
    assert summary["account"] == ACCOUNT
    assert (summary["lines"], summary["unmatched_lines"], summary["revenue"]) == (7, 1, 305.0)
    overall, by_segment = doc["tables"]
    assert [r["name"] for r in overall["rows"]] == ["Jacket", "Trail Shoe"]
    assert [(r["segment"], r["name"]) for r in by_segment["rows"]] == [
        ("Loyal", "Jacket"),
        ("Loyal", "Trail Shoe"),
        ("Lost", "Old Hat"),
        ("Lost", "Sock"),
        ("No order", "Jacket"),
    ]


def test_table_output_and_bad_input(shop_url: str) -> None:
    table = run("analytics", "products", "--from", shop_url, "-o", "table")
    assert table.returncode == 0, table.stderr
    assert "Old Hat" in table.stdout
    assert "unmatched_lines: 1" in table.stdout
    bad = run("analytics", "products", "--from", shop_url, "--top", "0")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
