from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kbridge.report import SECTIONS, build_report
from kbridge.warehouse import open_warehouse
from tests.unit.analytics.churn_shop import seed_churn_shop
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, ago

pytestmark = pytest.mark.unit

CHURN = tuple(s for s in SECTIONS if s.anchor == "churn")
NOW = datetime(2026, 6, 2, tzinfo=UTC)


def test_the_churn_section_shows_accuracy_calibration_and_the_riskiest() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        seed_churn_shop(Seed(wh), klaviyo=True)
        html = build_report(wh, ACCOUNT, generated_at=NOW, as_of=AS_OF, sections=CHURN)
    finally:
        wh.close()
    assert "<b>1.00</b><span>model accuracy (holdout AUC)</span>" in html
    assert "<b>0.00</b><span>Klaviyo&#x27;s churn score (same test, AUC)</span>" in html
    assert "<b>42</b><span>profiles scored</span>" in html
    assert "tested on 12 others" in html
    assert html.count("<polyline") == 2  # predicted and actual
    first_row = html.split("<tbody><tr>", 1)[1].split("</tr>", 1)[0]
    assert "<td>l" in first_row  # a leaver (l…@example.com) tops the list


def test_a_short_history_is_a_clear_unavailable_box() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        seed = Seed(wh)
        seed.profile("P1", ago(20))
        seed.event("P1", "Opened Email", ago(10))
        seed.commit()
        html = build_report(wh, ACCOUNT, generated_at=NOW, as_of=AS_OF, sections=CHURN)
    finally:
        wh.close()
    assert "<b>Not available.</b> no profile was active before the cutoff 2026-03-03" in html
