"""The report's sections: one per analysis, each with a short explanation for marketers.

A section turns an analysis's Frames into cards, charts and tables. When the
warehouse cannot answer (the streams an analysis reads were not synced, or
hold nothing for the account) it raises :class:`Unavailable` with what to do,
and the page shows a clear "Not available" box instead of an empty chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kbridge.analytics import (
    AnalyticsError,
    Frame,
    attribution,
    campaign_performance,
    churn,
    lifecycle,
)
from kbridge.analytics._sql import require_tables, table_exists
from kbridge.analytics.consent import consent
from kbridge.analytics.errors import MissingTableError
from kbridge.analytics.rfm import rfm
from kbridge.report.html import cards, money, number, percent, table, unavailable
from kbridge.report.svg import PALETTE, bar_chart, line_chart
from kbridge.warehouse import Warehouse

__all__ = ["SECTIONS", "Context", "Section", "Unavailable"]


class Unavailable(Exception):
    """The analysis has nothing to show for this warehouse; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class Context:
    warehouse: Warehouse
    account_id: str
    as_of: datetime | None
    currency: str


@dataclass(frozen=True, slots=True)
class Section:
    anchor: str
    title: str
    intro: str
    render: Callable[[Context], str]

    def html(self, ctx: Context) -> str:
        try:
            return self.render(ctx)
        except Unavailable as exc:
            return unavailable(str(exc))


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
    out.append(
        table(
            perf.messages,
            [
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


def _synced(ctx: Context, *tables: str) -> None:
    """Raise :class:`Unavailable` unless the warehouse has ``tables``."""
    try:
        require_tables(ctx.warehouse, *tables)
    except MissingTableError as exc:
        raise Unavailable(str(exc)) from None


def _consent(ctx: Context) -> str:
    _synced(ctx, "profiles", "events", "metrics")
    try:
        result = consent(ctx.warehouse, ctx.account_id, as_of=ctx.as_of, months=12)
    except AnalyticsError as exc:
        raise Unavailable(str(exc)) from None
    n = result.current.notes
    if not n["profiles"]:
        raise Unavailable("no profiles in the warehouse for this account (sync the profiles).")
    count = {(r["channel"], r["state"]): r["profiles"] for r in result.current.records()}
    out = [
        cards(
            {
                "profiles": number(n["profiles"]),
                "email subscribers": number(count.get(("email", "SUBSCRIBED"), 0)),
                "reachable by email": number(n["email_reachable"]),
                "email unsubscribed": number(count.get(("email", "UNSUBSCRIBED"), 0)),
                "SMS subscribers": number(count.get(("sms", "SUBSCRIBED"), 0)),
            }
        ),
        table(
            result.current,
            [
                ("channel", "channel"),
                ("state", "consent"),
                ("profiles", "profiles"),
                ("share", "share"),
                ("suppressed", "of them suppressed"),
            ],
            formats={"share": percent},
        ),
    ]
    email = [r for r in result.monthly.records() if r["channel"] == "email"]
    out.append("<h3>Email consent at each month end</h3>")
    out.append(
        line_chart(
            [str(r["month"]) for r in email],
            [
                (label, [float(r[column]) for r in email])
                for column, label in (
                    ("subscribed", "subscribed"),
                    ("unsubscribed", "unsubscribed"),
                    ("never_subscribed", "never subscribed"),
                    ("suppressed", "suppressed"),
                )
            ],
            title="Email consent at each month end",
        )
    )
    reasons = result.suppressions.records()
    if reasons:
        out.append("<h3>Why profiles are suppressed</h3>")
        out.append(
            bar_chart(
                [f"{r['reason'].replace('_', ' ').lower()} ({r['channel']})" for r in reasons],
                [r["profiles"] for r in reasons],
                title="Suppressed profiles by reason",
                color=PALETTE[3],
            )
        )
    out.append("<h3>How profiles got their current consent</h3>")
    out.append(
        table(
            result.methods,
            [
                ("channel", "channel"),
                ("state", "consent"),
                ("method", "method"),
                ("profiles", "profiles"),
            ],
        )
    )
    return "".join(out)


def _rfm(ctx: Context) -> str:
    _synced(ctx, "profiles", "events", "metrics")
    try:
        result = rfm(ctx.warehouse, ctx.account_id, as_of=ctx.as_of)
    except AnalyticsError as exc:
        raise Unavailable(str(exc)) from None
    n = result.segments.notes
    if not n["customers"]:
        raise Unavailable(
            f"no {n['metric']} events in the warehouse for this account (sync the events stream)."
        )
    rows = [r for r in result.segments.records() if r["profiles"]]
    out = [
        cards(
            {
                "customers": number(n["customers"]),
                f"their revenue ({ctx.currency})": money(n["revenue"]),
                "segments in use": number(len(rows)),
            }
        ),
        "<h3>Customers per segment</h3>",
        bar_chart(
            [r["segment"] for r in rows],
            [r["profiles"] for r in rows],
            title="Customers per RFM segment",
        ),
        "<h3>Revenue per segment</h3>",
        bar_chart(
            [r["segment"] for r in rows],
            [r["revenue"] for r in rows],
            title="Revenue per RFM segment",
            fmt=lambda v: f"{v:,.0f}",
            color=PALETTE[1],
        ),
        table(
            result.segments,
            [
                ("segment", "segment"),
                ("profiles", "customers"),
                ("share", "share of customers"),
                ("revenue", "revenue"),
                ("revenue_share", "share of revenue"),
                ("average_value", "average value"),
                ("average_orders", "average orders"),
                ("average_recency_days", "days since last order (average)"),
            ],
            formats={
                "share": percent,
                "revenue_share": percent,
                "revenue": money,
                "average_value": money,
            },
        ),
        '<p class="note">Push a segment to a Klaviyo list with '
        '<code>kbridge analytics rfm --push "At risk"</code>.</p>',
    ]
    return "".join(out)


def _auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _churn(ctx: Context) -> str:
    if not all(table_exists(ctx.warehouse, t) for t in ("events", "metrics", "profiles")):
        raise Unavailable("churn needs the profiles, metrics and events streams synced.")
    try:
        result = churn(ctx.warehouse, ctx.account_id, as_of=ctx.as_of)
    except AnalyticsError as exc:
        raise Unavailable(f"{exc}.") from None
    rows = result.profiles.records()
    # a profile with no activity ever has nothing to churn from: its (high) probability says
    # only that it never started, so it is counted apart and kept out of the list
    engaged = [r for r in rows if r["days_since_activity"] is not None]
    never = len(rows) - len(engaged)
    likely = sum(1 for r in engaged if r["churn_probability"] >= 0.5)
    figures = {
        "profiles scored": number(len(rows)),
        "engaged profiles likely to churn (≥ 50 %)": number(likely),
        "never engaged (not listed)": number(never),
        "model accuracy (holdout AUC)": _auc(result.holdout_auc),
        f"churned in the {result.horizon_days:g} days tested": percent(result.churn_rate),
    }
    if result.klaviyo_auc is not None:
        figures["Klaviyo's churn score (same test, AUC)"] = _auc(result.klaviyo_auc)
    deciles = result.calibration
    columns = [
        ("email", "email"),
        ("churn_probability", "churn probability"),
        ("days_since_activity", "days since last activity"),
        ("activity_90d", "actions in 90 days"),
        ("orders", "orders"),
    ]
    has_klaviyo = any(r["klaviyo_churn_probability"] is not None for r in engaged)
    if has_klaviyo:
        columns.append(("klaviyo_churn_probability", "Klaviyo's churn score"))
    listed = Frame.of(
        result.profiles.columns,
        [tuple(r[c] for c in result.profiles.columns) for r in engaged],
    )
    out = [
        cards(figures),
        f'<p class="note">Trained on {result.trained:,} profiles with what they did before '
        f"{result.cutoff:%Y-%m-%d}, tested on {result.holdout:,} others: did they stay inactive "
        f"until {result.as_of:%Y-%m-%d}? An AUC of 1.0 ranks every churner above every "
        "customer who stayed; 0.5 is a coin toss. This AUC is the holdout's: it is measured on "
        "those profiles set aside before training, which the model never saw. A figure over "
        "every profile, including the ones it learned from (such as the AUC "
        "<code>kbridge demo</code> prints against the emulator's hidden churners), is "
        "in-sample and reads higher.</p>",
        "<h3>Predicted against actual churn (test profiles, in tenths by prediction)</h3>",
        line_chart(
            [str(d) for d in deciles.column("decile")],
            [("predicted", deciles.column("predicted")), ("actual", deciles.column("observed"))],
            title="Predicted and actual churn by decile of the prediction",
            fmt=lambda v: f"{v * 100:.0f} %",
        ),
        "<h3>Engaged profiles most likely to churn</h3>",
    ]
    if never:
        out.append(
            f'<p class="note">{never:,} profiles that never opened, clicked, visited or ordered '
            "are left out: they have no engagement to lose (see the lifecycle stage "
            "“never engaged”).</p>"
        )
    if engaged:
        out.append(
            table(
                listed,
                columns,
                formats={"churn_probability": percent, "klaviyo_churn_probability": percent},
            )
        )
    if not has_klaviyo:
        out.append(
            '<p class="note">Klaviyo\'s own churn score is not shown: no profile has one in the '
            "warehouse. It is synced with <code>kbridge sync --predictive-analytics</code>, and "
            "Klaviyo computes it only once an account has enough order history.</p>"
        )
    return "".join(out)


#: what each stage means, in a marketer's words (rules: kbridge.analytics.lifecycle)
_STAGE_MEANING = {
    "new": "joined in the last 30 days",
    "engaged": "active in the last 30 days, often or with a purchase",
    "active": "active in the last 30 days",
    "at_risk": "last active 30–90 days ago",
    "lapsed": "last active 90–180 days ago",
    "churned": "last active more than 180 days ago",
    "never_engaged": "no opens, clicks, visits or orders since joining",
}


def _lifecycle(ctx: Context) -> str:
    if not table_exists(ctx.warehouse, "profiles") or not table_exists(ctx.warehouse, "events"):
        raise Unavailable("profiles and events were not synced (sync those streams).")
    try:
        result = lifecycle(ctx.warehouse, ctx.account_id, as_of=ctx.as_of, months=6)
    except AnalyticsError as exc:
        raise Unavailable(str(exc)) from None
    records = result.stages.records()
    total = sum(r["profiles"] for r in records)
    if not total:
        raise Unavailable("no profiles existed at that date for this account.")
    by_stage = {r["stage"]: r for r in records}
    healthy = sum(by_stage[s]["profiles"] for s in ("new", "engaged", "active"))
    out = [
        cards(
            {
                "profiles": number(total),
                "engaged or active (incl. new)": percent(healthy / total),
                "at risk": number(by_stage["at_risk"]["profiles"]),
                "churned": number(by_stage["churned"]["profiles"]),
            }
        ),
        "<h3>Profiles per stage</h3>",
        bar_chart(
            [r["stage"].replace("_", " ") for r in records],
            [float(r["profiles"]) for r in records],
            title="Profiles per lifecycle stage",
            fmt=lambda v: f"{v:,.0f}",
            color=PALETTE[3 % len(PALETTE)],
        ),
        table(
            Frame.of(
                ("stage", "meaning", "profiles", "share"),
                [
                    (
                        r["stage"].replace("_", " "),
                        _STAGE_MEANING.get(r["stage"], ""),
                        r["profiles"],
                        r["share"],
                    )
                    for r in records
                ],
            ),
            [
                ("stage", "stage"),
                ("meaning", "meaning"),
                ("profiles", "profiles"),
                ("share", "share"),
            ],
            formats={"share": percent},
        ),
        "<h3>Month by month</h3>",
        table(
            result.monthly,
            [("at", "at"), *((s, s.replace("_", " ")) for s in result.monthly.columns[1:])],
        ),
    ]
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
)
