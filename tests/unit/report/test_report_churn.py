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


def test_never_engaged_profiles_are_counted_apart_and_kept_out_of_the_list() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        seed = Seed(wh)
        for i in range(5):  # signed up, were emailed, never did anything
            seed.profile(f"Z{i}", ago(500 + i))
            seed.event(f"Z{i}", "Received Email", ago(50))
        seed_churn_shop(seed)
        html = build_report(wh, ACCOUNT, generated_at=NOW, as_of=AS_OF, sections=CHURN)
    finally:
        wh.close()
    assert "<b>6</b><span>never engaged (not listed)</span>" in html  # Z0–Z4 and NEVER
    listed = html.split("Engaged profiles most likely to churn", 1)[1]
    assert "z0@example.com" not in listed
    assert "never@example.com" not in listed
    assert "6 profiles that never opened, clicked, visited or ordered are left out" in listed


def test_an_empty_klaviyo_score_column_is_left_out_with_the_reason() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        seed_churn_shop(Seed(wh), klaviyo=False)
        html = build_report(wh, ACCOUNT, generated_at=NOW, as_of=AS_OF, sections=CHURN)
    finally:
        wh.close()
    assert "Klaviyo&#x27;s churn score</th>" not in html
    assert "Klaviyo's own churn score is not shown: no profile has one" in html
    assert "kbridge sync --predictive-analytics" in html


def test_the_auc_is_named_as_the_holdout_s_not_in_sample() -> None:
    wh = open_warehouse("duckdb:///:memory:")
    try:
        seed_churn_shop(Seed(wh))
        html = build_report(wh, ACCOUNT, generated_at=NOW, as_of=AS_OF, sections=CHURN)
    finally:
        wh.close()
    assert "This AUC is the holdout&#x27;s" in html or "This AUC is the holdout's" in html
    assert "is in-sample and reads higher" in html
