"""The campaign analyses read PostgreSQL exactly as they read DuckDB (JSON keys, epochs)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kbridge.analytics.attribution import attribution
from kbridge.analytics.campaigns import campaign_performance
from kbridge.warehouse import open_warehouse
from tests.unit.analytics.campaign_shop import build
from tests.unit.analytics.test_sources import ORDERS, aggregates

pytestmark = pytest.mark.integration


def test_postgres_gives_the_duckdb_answers(postgres_url: str, tmp_path: Path) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    pg = open_warehouse(postgres_url)
    duck = open_warehouse(f"duckdb:///{tmp_path}/shop.duckdb")
    try:
        for wh in (pg, duck):
            build(account).write(wh)
        for fn in (lambda wh, a: campaign_performance(wh, a).messages, attribution):
            a, b = fn(pg, account), fn(duck, account)
            assert a.rows == b.rows
            assert a.notes == b.notes
            assert len(a) == 3
        rec_pg = campaign_performance(pg, account).reconciliation
        rec_duck = campaign_performance(duck, account).reconciliation
        assert rec_pg.rows == rec_duck.rows
    finally:
        pg.close()
        duck.close()


def test_postgres_switches_to_the_reports_as_duckdb_does(postgres_url: str, tmp_path: Path) -> None:
    """Events short of Klaviyo's daily aggregates: the same report figures in both."""
    account = f"acct-{uuid.uuid4().hex[:8]}"
    pg = open_warehouse(postgres_url)
    duck = open_warehouse(f"duckdb:///{tmp_path}/shop.duckdb")
    try:
        for wh in (pg, duck):
            build(account).write(wh)
            aggregates(wh, {**ORDERS, 1: (2, 150.0)}, account)
        a, b = campaign_performance(pg, account), campaign_performance(duck, account)
        assert a.messages.rows == b.messages.rows
        assert a.messages.notes == b.messages.notes
        assert a.messages.notes["figures_from"] == {"events": 1, "report": 1, "report + events": 1}
        assert attribution(pg, account).notes == attribution(duck, account).notes
    finally:
        pg.close()
        duck.close()
