"""The report's sections: one per analysis, each with a short explanation for marketers.

A section turns an analysis's Frames into cards, charts and tables. When the
warehouse cannot answer (the streams an analysis reads were not synced, or
hold nothing for the account) it raises :class:`Unavailable` with what to do,
and the page shows a clear "Not available" box instead of an empty chart.
"""

from __future__ import annotations

from typing import Any

from kbridge.analytics import Frame, attribution, campaign_performance
from kbridge.report._audience import _churn, _consent, _lifecycle, _rfm
from kbridge.report._products import _products
from kbridge.report._section import Context, Section, Unavailable
from kbridge.report.html import cards, money, number, percent, table
from kbridge.report.svg import PALETTE, bar_chart

__all__ = ["SECTIONS", "Context", "Section", "Unavailable"]


def _label(record: dict[str, Any]) -> str:
    name, message = str(record["name"]), str(record["message"])
    return name if message in (name, record["message_id"]) else f"{name} — {message}"


def _campaigns(ctx: Context) -> str:
    perf = campaign_performance(ctx.warehouse, ctx.account_id, as_of=ctx.as_of)
    records = perf.messages.records()
    if not records:
        raise Unavailable(
            "no campaign or flow message events in the warehouse for this account "
            "(sync the events, campaigns and flows streams)."
        )
    delivered = sum(r["delivered"] for r in records)

    def weighted(rate: str) -> float | None:
        num = sum((r[rate] or 0) * r["delivered"] for r in records)
        return num / delivered if delivered else None

    revenue = sum(r["revenue"] for r in records)
    out = [
        cards(
            {
                "messages": number(len(records)),
                "emails and texts delivered": number(delivered),
                "open rate (all sends)": percent(weighted("open_rate")),
                "click rate (all sends)": percent(weighted("click_rate")),
                f"attributed revenue ({ctx.currency})": money(revenue),
            }
        )
    ]
    top = [r for r in records if r["revenue"] > 0][:10]
    if top:
        out.append("<h3>Revenue by message (top 10)</h3>")
        out.append(
            bar_chart(
                [_label(r) for r in top],
                [r["revenue"] for r in top],
                title="Attributed revenue by campaign or flow message",
                fmt=lambda v: f"{v:,.0f}",
            )
        )
    largest = sorted(records, key=lambda r: -r["delivered"])[:10]
    out.append("<h3>Click rate of the 10 largest sends</h3>")
    out.append(
        bar_chart(
            [_label(r) for r in largest],
            [r["click_rate"] or 0.0 for r in largest],
            title="Click rate of the largest sends",
            fmt=lambda v: f"{v * 100:.1f} %",
            color=PALETTE[2],
        )
    )
    out.append("<h3>Every message</h3>")
    out.append(_sources_note(perf.messages.notes))
    out.append(
        table(
            perf.messages,
            [
                ("figures_from", "figures from"),
                ("name", "campaign / flow"),
                ("message", "message"),
                ("channel", "channel"),
                ("first_sent", "first sent"),
                ("recipients", "recipients"),
                ("open_rate", "open rate"),
                ("click_rate", "click rate"),
                ("conversions", "orders"),
                ("conversion_rate", "conversion rate"),
                ("revenue", "revenue"),
                ("revenue_per_recipient", "revenue / recipient"),
                ("unsubscribe_rate", "unsubscribe rate"),
            ],
            formats={
                "open_rate": percent,
                "click_rate": percent,
                "conversion_rate": percent,
                "unsubscribe_rate": percent,
                "revenue": money,
                "revenue_per_recipient": money,
            },
            limit=25,
        )
    )
    out.append("<h3>Checked against Klaviyo's own reports</h3>")
    totals: dict[str, dict[str, float]] = perf.reconciliation.notes.get("totals") or {}
    if not totals:
        out.append(
            '<p class="note">Klaviyo\'s daily reports were not synced (streams '
            "campaign_values_daily and flow_series_daily), so there is nothing to compare.</p>"
        )
    for source, sums in totals.items():
        days = perf.reconciliation.notes["days"].get(source, 0)
        rows = []
        for stat in ("recipients", "opens_unique", "clicks_unique", "conversions"):
            rows.append((stat, sums.get(f"{stat}.events", 0.0), sums.get(f"{stat}.report", 0.0)))
        rows.append(
            (
                "conversion_value",
                sums.get("conversion_value.events", 0.0),
                sums.get("conversion_value.report", 0.0),
            )
        )
        out.append(
            f'<p class="note">{source.capitalize()} messages over the {days} day(s) the stored '
            "report covers: our count from events beside Klaviyo's figure.</p>"
        )
        out.append(_comparison(rows))
    return "".join(out)


def _sources_note(notes: dict[str, Any]) -> str:
    """Where the message figures came from, and why (docs/analytics.md, "Sources")."""
    coverage = notes.get("events_coverage") or {}
    origins: dict[str, int] = notes.get("figures_from") or {}
    if not coverage.get("checked"):
        return (
            '<p class="note">Every figure is counted from the synced events. Klaviyo\'s daily '
            "aggregates (stream metric_aggregates_daily) were not synced, so whether the "
            "events are complete was not checked.</p>"
        )
    days = coverage["days_checked"]
    if not coverage["days_short"]:
        return (
            '<p class="note">Every figure is counted from the synced events, which hold every '
            f"event Klaviyo's daily aggregates count on the {number(days)} day(s) they cover.</p>"
        )
    missing = sum(coverage["events_missing"].values())
    reported = origins.get("report", 0) + origins.get("report + events", 0)
    return (
        f'<p class="note">The synced events miss {number(missing)} event(s) that Klaviyo\'s '
        f"daily aggregates count, on {number(coverage['days_short'])} of {number(days)} "
        f"day(s): the figures of {number(reported)} message(s) come from Klaviyo's own "
        "per-message reports on the days those cover (“report”, or “report + events” where "
        "events fill the other days); the rest are counted from events.</p>"
    )


def _comparison(rows: list[tuple[str, float, float]]) -> str:
    frame = Frame.of(
        ("statistic", "events", "report", "difference"),
        [
            (
                s.replace("_", " "),
                a,
                b,
                "0" if a == b else f"{a - b:+,.2f} ({(a - b) / b * 100:+.1f} %)" if b else "n/a",
            )
            for s, a, b in rows
        ],
    )
    return table(
        frame,
        [
            ("statistic", "statistic"),
            ("events", "from events"),
            ("report", "Klaviyo report"),
            ("difference", "difference"),
        ],
    )


def _attribution(ctx: Context) -> str:
    frame = attribution(ctx.warehouse, ctx.account_id, as_of=ctx.as_of)
    n = frame.notes
    if not n["conversions"]:
        raise Unavailable(
            f"no {n['conversion_metric']} events in the warehouse for this account "
            "(sync the events stream)."
        )
    share = n["attributed_revenue"] / n["revenue"] if n["revenue"] else 0.0
    figures = {
        "orders": number(n["conversions"]),
        "orders after a message": number(n["attributed_conversions"]),
        f"revenue ({ctx.currency})": money(n["revenue"]),
        "share of revenue from messages": percent(share),
    }
    if "klaviyo_agreement" in n:
        figures["same message as Klaviyo"] = percent(n["klaviyo_agreement"])
    out = [
        cards(figures),
        f'<p class="note">Windows: {n["windows"]}. Orders with no message touch inside its '
        "window are unattributed.</p>",
    ]
    records = frame.records()[:10]
    out.append("<h3>Revenue by campaign and flow</h3>")
    if records:
        # the unattributed revenue is usually most of it: as a bar it would set the scale
        # and leave every campaign a sliver, so it is stated beside the chart instead
        out.append(
            bar_chart(
                [f"{r['name']} ({r['source']})" for r in records],
                [r["revenue"] for r in records],
                title="Revenue attributed to each campaign and flow",
                fmt=lambda v: f"{v:,.0f}",
                color=PALETTE[1],
            )
        )
    missing = n.get("events_missing") or {}
    if missing.get("conversions"):
        out.append(
            f'<p class="note">Orders and revenue include {number(missing["conversions"])} '
            f"order(s) worth {money(missing['revenue'])} {ctx.currency} that Klaviyo's daily "
            "aggregates count but the synced events lack: with no events, nothing shows which "
            "message they followed, so they count as unattributed.</p>"
        )
    unattributed = n["unattributed_revenue"]
    out.append(
        f'<p class="note">Not charted: {money(unattributed)} {ctx.currency} of revenue '
        f"({percent(unattributed / n['revenue'] if n['revenue'] else 0.0)}) followed no "
        "message inside its window (unattributed).</p>"
    )
    if len(frame):
        out.append(
            table(
                frame,
                [
                    ("name", "campaign / flow"),
                    ("source", "type"),
                    ("channel", "channel"),
                    ("conversions", "orders"),
                    ("converters", "customers"),
                    ("revenue", "revenue"),
                    ("revenue_share", "share of all revenue"),
                ],
                formats={"revenue": money, "revenue_share": percent},
            )
        )
    return "".join(out)


SECTIONS: tuple[Section, ...] = (
    Section(
        "campaigns",
        "Campaign performance",
        "How each campaign and automated flow email or text did: how many people received it, "
        "the share who opened and clicked, the orders and revenue that followed it, and the "
        "share who unsubscribed. Rates are per delivered message.",
        _campaigns,
    ),
    Section(
        "attribution",
        "Which messages drove orders",
        "Each order is credited to the last email the customer opened or clicked in the 5 days "
        "before it, or the last text they clicked in the day before it (last-touch "
        "attribution). Orders with no such message count as unattributed.",
        _attribution,
    ),
    Section(
        "lifecycle",
        "Where your customers are in their lifecycle",
        "Each profile's stage from what it did: opening or clicking, visiting the site, "
        "browsing, adding to cart and ordering count as activity; receiving a message does not. "
        "Stages are counted at the report's date and at the start of each of the last months.",
        _lifecycle,
    ),
    Section(
        "churn",
        "Who is likely to churn",
        "Each customer's chance of doing nothing (no opens, clicks, visits or orders) in the "
        "next 90 days, learned from this account's own history: how recently and how often "
        "they engaged and bought, whether that is slowing down, and their email consent.",
        _churn,
    ),
    Section(
        "consent",
        "Who may be emailed and texted",
        "Each profile's marketing consent per channel: subscribed, unsubscribed or never "
        "subscribed, and whether Klaviyo suppresses its email (bounces, spam complaints, …). "
        "Only subscribed, unsuppressed profiles receive campaigns. The chart rebuilds the "
        "counts at each month end from consent dates and subscribe/unsubscribe events.",
        _consent,
    ),
    Section(
        "rfm",
        "Customer segments (RFM)",
        "Customers scored 1 to 5 on how recently they ordered (R), how often (F) and how "
        "much they spent (M), each against the other customers, then named: Champions buy "
        "often and recently; At risk and Can't lose them bought a lot but not lately; Lost "
        "bought little, long ago.",
        _rfm,
    ),
    Section(
        "products",
        "Top products",
        "The products that brought the most revenue, from each order's product lines named "
        "by the synced catalogue, for all customers and for each RFM segment: what Champions "
        "buy is what to show the Promising, and what At risk customers bought is what to "
        "win them back with.",
        _products,
    ),
)
