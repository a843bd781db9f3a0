"""The HTML report in a real headless Chromium: it renders, charts are there, no console errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbridge.core import loads
from kbridge.report import SECTIONS, build_report, write_report
from kbridge.testing.chromium import png_size, render
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.campaign_shop import build
from tests.unit.analytics.seed import Seed, subscriptions

pytestmark = pytest.mark.e2e

GENERATED = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def add_profiles(wh: Warehouse, account: str) -> None:
    """The shop's three customers as profiles with consent, for the consent section."""
    seed = Seed(wh, account)
    for pid, state in (("p1", "SUBSCRIBED"), ("p2", "UNSUBSCRIBED"), ("p3", "NEVER_SUBSCRIBED")):
        at = datetime(2024, 2, 1, tzinfo=UTC)
        seed.profile(pid, at, subscriptions=subscriptions(state, email_ts=at))
    # the order lines of two orders, and the catalogue item one of them names (products)
    seed.row("catalog_items", id="I1", external_id="1001", title="Trail Shoe")
    for pid, day, product, value in (("p1", 1, "1001", 60.0), ("p1", 1, "2002", 40.0)):
        props = {"ProductID": product, "ProductName": f"Product {product}"}
        seed.event(pid, "Ordered Product", datetime(2024, 3, 1 + day, tzinfo=UTC), value,
                   properties=props)  # fmt: skip
    seed.commit()


def test_the_report_renders_with_charts_and_no_console_errors(tmp_path: Path) -> None:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    try:
        build("A").write(wh)
        add_profiles(wh, "A")  # consent and lifecycle sections need profiles
        html = build_report(wh, "A", generated_at=GENERATED)
    finally:
        wh.close()
    report = write_report(tmp_path / "report.html", html)
    shot = tmp_path / "report.png"
    page = render(report.as_uri(), screenshot=shot)
    assert page.console == ()
    dom = page.dom
    assert "Campaign performance" in dom
    assert "Which messages drove orders" in dom
    assert dom.count("<svg") >= 4  # revenue, click rate, attribution, lifecycle stages
    assert "Where your customers are in their lifecycle" in dom
    assert "<rect" in dom
    assert "Spring sale" in dom
    # a week of events is too short a history to train the churn model on
    assert dom.count("Not available") == 1
    assert "Not available.</b> no profile was active before the cutoff" in dom
    assert "Checked against Klaviyo" in dom
    assert "Who may be emailed and texted" in dom
    assert "Customer segments (RFM)" in dom
    assert "Top products" in dom
    assert "1 of 2 order lines (40.00 USD) match no catalogue item" in dom
    assert png_size(shot) == (1280, 2400)
    blank = tmp_path / "blank.png"
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><title>blank</title>")
    render((tmp_path / "blank.html").as_uri(), screenshot=blank)
    # a page of charts and tables compresses far worse than an empty one
    assert shot.stat().st_size > 5 * blank.stat().st_size


def test_an_empty_warehouse_renders_not_available_sections(tmp_path: Path) -> None:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'empty.duckdb'}")
    try:
        html = build_report(wh, "A", generated_at=GENERATED)
    finally:
        wh.close()
    report = write_report(tmp_path / "empty.html", html)
    page = render(report.as_uri())
    assert page.console == ()
    assert page.dom.count("Not available.") == len(SECTIONS)
    assert "<svg" not in page.dom


def test_console_errors_are_reported(tmp_path: Path) -> None:
    """The check above can fail: a page that logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><title>x</title><script>console.error('boom')</script>")
    page = render(bad.as_uri())
    assert any("boom" in line for line in page.console)


#: run in the page after load: every way a section's content leaves its card, as lines
_LAYOUT_PROBE = (Path(__file__).parent / "layout_probe.js").read_text(encoding="utf-8")


def layout_problems(html: str, tmp_path: Path, width: int) -> list[str]:
    """What overflows its card (or overlaps in a chart) at a window ``width`` px wide."""
    probed = tmp_path / f"probed-{width}.html"
    probed.write_text(html.replace("</body>", f"<script>{_LAYOUT_PROBE}</script></body>"))
    page = render(probed.as_uri(), window=(width, 2400))
    assert page.console == ()
    found = page.dom.split('<pre id="layout-problems">', 1)[1].split("</pre>", 1)[0]
    problems: list[str] = loads(found.replace("&quot;", '"').replace("&amp;", "&"))
    return problems


def long_shop(wh: Warehouse, tmp_path: Path) -> str:
    """The shop with a year of consent history and long campaign names: the widest tables."""
    build("A").write(wh)
    seed = Seed(wh, "A")
    for i in range(12):
        at = datetime(2023, 1 + i, 3, tzinfo=UTC)
        seed.profile(f"q{i}", at, subscriptions=subscriptions("SUBSCRIBED", email_ts=at))
    seed.commit()
    wh.query(
        "update campaigns set name = ? where id = 'C1'",
        ["Spring sale: 20 % off every jacket, coat and pair of boots (VIP customers first)"],
    )
    return build_report(wh, "A", generated_at=GENERATED)


@pytest.mark.parametrize("width", [1024, 1280])
def test_nothing_leaves_its_card_and_no_chart_labels_overlap(tmp_path: Path, width: int) -> None:
    wh = open_warehouse(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    try:
        add_profiles(wh, "A")
        html = long_shop(wh, tmp_path)
    finally:
        wh.close()
    assert layout_problems(html, tmp_path, width) == []


def test_the_probe_sees_a_table_wider_than_its_card(tmp_path: Path) -> None:
    """The check above can fail: a table wider than its card is reported."""
    wide = "<tr>" + "<td>unbreakable_cell_text_that_is_long</td>" * 12 + "</tr>"
    html = (
        "<!DOCTYPE html><html><body><section id='s' style='width:400px'>"
        f"<table style='white-space:nowrap'>{wide}</table></section></body></html>"
    )
    problems = layout_problems(html, tmp_path, 1024)
    assert any(p.startswith("s: content is") for p in problems), problems
