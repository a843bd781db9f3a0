"""The churn model reads PostgreSQL exactly as it reads DuckDB (JSON keys, epochs, consent)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kbridge.analytics import churn
from kbridge.warehouse import open_warehouse
from tests.unit.analytics.churn_shop import seed_churn_shop
from tests.unit.analytics.seed import AS_OF, Seed

pytestmark = pytest.mark.integration


def test_postgres_gives_the_duckdb_answers(postgres_url: str, tmp_path: Path) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    pg = open_warehouse(postgres_url)
    duck = open_warehouse(f"duckdb:///{tmp_path}/churn.duckdb")
    try:
        for wh in (pg, duck):
            seed_churn_shop(Seed(wh, account), klaviyo=True)
        a, b = churn(pg, account, as_of=AS_OF), churn(duck, account, as_of=AS_OF)
        assert a == b
        assert a.holdout_auc == 1.0
        assert a.klaviyo_holdout == 12
        # subscribed regulars: the consent timestamp inside the JSON was read in both
        means = dict(zip(a.model.column("feature"), a.model.column("mean"), strict=True))
        assert means["email_subscribed"] == 20 / 40
    finally:
        pg.close()
        duck.close()
