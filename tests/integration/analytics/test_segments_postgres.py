"""Consent and RFM read PostgreSQL exactly as they read DuckDB (JSON paths, epochs)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kbridge.analytics import consent, rfm
from kbridge.warehouse import open_warehouse
from tests.unit.analytics.seed import AS_OF, Seed
from tests.unit.analytics.test_consent import seed_consent
from tests.unit.analytics.test_rfm import seed_rfm

pytestmark = pytest.mark.integration


def test_postgres_gives_the_duckdb_answers(postgres_url: str, tmp_path: Path) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    pg = open_warehouse(postgres_url)
    duck = open_warehouse(f"duckdb:///{tmp_path}/segments.duckdb")
    try:
        for wh in (pg, duck):
            seed = Seed(wh, account)  # one seed: metric and event ids must not collide
            seed_consent(seed)
            seed_rfm(seed)
        a, b = (consent(wh, account, as_of=AS_OF, months=3) for wh in (pg, duck))
        assert a == b
        # 6 with consent histories, 10 customers and a browser
        assert a.current.notes["profiles"] == 17
        assert a.suppressions.rows == (("email", "HARD_BOUNCE", 1, 1.0),)
        assert a.monthly.rows[-2][:6] == ("2026-05", "email", 17, 4, 1, 12)
        assert consent(pg, account).as_of == consent(duck, account).as_of
        r_pg, r_duck = (rfm(wh, account, as_of=AS_OF) for wh in (pg, duck))
        assert r_pg == r_duck
        assert r_pg.members("Champions") == ["A", "D"]
        assert r_pg.segments.notes["revenue"] == 3225.0
    finally:
        pg.close()
        duck.close()
