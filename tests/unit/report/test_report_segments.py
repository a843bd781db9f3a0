"""The consent and RFM sections of the report, on hand-built warehouses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kbridge.report import SECTIONS, build_report
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import build
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed
from tests.unit.analytics.test_consent import seed_consent
from tests.unit.analytics.test_rfm import seed_rfm

pytestmark = pytest.mark.unit

GENERATED = datetime(2026, 6, 2, tzinfo=UTC)
MINE = tuple(s for s in SECTIONS if s.anchor in ("consent", "rfm"))


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


def test_both_sections_show_their_figures_and_charts(warehouse: Warehouse) -> None:
    seed = Seed(warehouse)
    seed_consent(seed)
    seed_rfm(seed)
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, as_of=AS_OF, sections=MINE)
    assert [s.anchor for s in MINE] == ["consent", "rfm"]
    consent = section(html, "consent")
    assert "<b>3</b><span>reachable by email</span>" in consent
    assert "<b>4</b><span>email subscribers</span>" in consent
    assert consent.count("<polyline") == 4  # subscribed, unsubscribed, never, suppressed
    assert "hard bounce (email)" in consent
    assert "EMAIL_UNSUBSCRIBE" in consent
    rfm = section(html, "rfm")
    assert "<b>10</b><span>customers</span>" in rfm
    assert "<b>3,225.00</b><span>their revenue (USD)</span>" in rfm
    assert rfm.count("<svg") == 2
    assert "Can&#x27;t lose them" in rfm
    assert "Hibernating" in rfm  # in the table, though empty
    assert "Not available" not in html


def test_without_data_the_sections_say_what_to_sync(warehouse: Warehouse) -> None:
    html = build_report(warehouse, ACCOUNT, generated_at=GENERATED, sections=MINE)
    assert html.count("Not available.") == 2
    assert "the warehouse has no `profiles`, `events` or `metrics` table" in html
    assert "run `kbridge sync --streams events,metrics,profiles --to" in html
    assert "<svg" not in html


def test_events_without_profiles_still_give_rfm(warehouse: Warehouse) -> None:
    build("A").write(warehouse)
    html = build_report(warehouse, "A", generated_at=GENERATED, sections=MINE)
    assert "Not available." in section(html, "consent")
    assert "Not available." not in section(html, "rfm")
    assert "<b>3</b><span>customers</span>" in section(html, "rfm")
