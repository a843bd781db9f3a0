"""The report's product section: top products by revenue, overall and per RFM segment."""

from __future__ import annotations

from html import escape

from kbridge.analytics import AnalyticsError, Frame
from kbridge.analytics.products import top_products
from kbridge.report._section import Context, Unavailable, _synced
from kbridge.report.html import cards, money, number, percent, table
from kbridge.report.svg import PALETTE, bar_chart

#: products shown overall and in each segment
TOP = 10


def _products(ctx: Context) -> str:
    _synced(ctx, "profiles", "events", "metrics")
    try:
        result = top_products(ctx.warehouse, ctx.account_id, as_of=ctx.as_of, top=TOP)
    except AnalyticsError as exc:
        raise Unavailable(str(exc)) from None
    n = result.overall.notes
    if not n["lines"]:
        raise Unavailable(
            f"no {n['line_metric']} events (order lines) in the warehouse for this account "
            "(sync the events stream; the store's integration sends one per product ordered)."
        )
    unmatched = n["unmatched_lines"]
    out = [
        cards(
            {
                "order lines": number(n["lines"]),
                f"their revenue ({ctx.currency})": money(n["revenue"]),
                "products ordered": number(n["products"]),
                "lines matched to the catalogue": percent(n["matched_lines"] / n["lines"]),
            }
        )
    ]
    if not n["catalogue_items"]:
        out.append(
            '<p class="note">The catalogue was not synced (stream catalog_items), so products '
            "are named by what the order lines carry.</p>"
        )
    elif unmatched:
        out.append(
            f'<p class="note">{number(unmatched)} of {number(n["lines"])} order lines '
            f"({money(n['unmatched_revenue'])} {ctx.currency}) match no catalogue item (a "
            "product since deleted, or an id in another form): they are listed under their "
            "own id and name, marked “not in catalogue”.</p>"
        )
    else:
        out.append('<p class="note">Every order line matched a catalogue item.</p>')
    records = result.overall.records()
    out.append(f"<h3>Top {TOP} products by revenue</h3>")
    out.append(
        bar_chart(
            [_name(r["name"], r["in_catalogue"]) for r in records],
            [r["revenue"] for r in records],
            title="Revenue by product",
            fmt=lambda v: f"{v:,.0f}",
            color=PALETTE[1],
        )
    )
    out.append(_table(result.overall, "revenue_share", "share of all revenue"))
    by_segment = result.by_segment
    if len(by_segment):
        out.append("<h3>Top products in each RFM segment</h3>")
        out.append(
            '<p class="note">Segments as in “Customer segments (RFM)”; “No order” holds lines '
            "of profiles with no order before the report's date.</p>"
        )
        seen: list[str] = []
        for segment in by_segment.column("segment"):
            if segment not in seen:
                seen.append(segment)
        at = by_segment.columns.index("segment")
        for segment in seen:
            rows = [r for r in by_segment.rows if r[at] == segment]
            total = by_segment.notes["segment_revenue"].get(segment, 0.0)
            out.append(f"<h4>{escape(segment)} · {money(total)} {ctx.currency}</h4>")
            out.append(
                _table(
                    Frame.of(by_segment.columns, rows),
                    "segment_revenue_share",
                    "share of the segment's revenue",
                )
            )
    return "".join(out)


def _name(name: str, in_catalogue: bool) -> str:
    return name if in_catalogue else f"{name} (not in catalogue)"


def _table(frame: Frame, share: str, heading: str) -> str:
    return table(
        frame,
        [
            ("rank", "#"),
            ("name", "product"),
            ("product_id", "product id"),
            ("in_catalogue", "in catalogue"),
            ("lines", "order lines"),
            ("quantity", "quantity"),
            ("customers", "customers"),
            ("revenue", "revenue"),
            (share, heading),
        ],
        formats={
            "revenue": money,
            share: percent,
            "in_catalogue": lambda v: "yes" if v else "no",
        },
        limit=TOP,
    )
