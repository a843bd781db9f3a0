"""The audience sections of the report: lifecycle, churn, consent and RFM."""

from __future__ import annotations

from kbridge.analytics import AnalyticsError, Frame, churn, lifecycle
from kbridge.analytics._sql import table_exists
from kbridge.analytics.consent import consent
from kbridge.analytics.rfm import rfm
from kbridge.report._section import Context, Unavailable, _synced
from kbridge.report.html import cards, money, number, percent, table
from kbridge.report.svg import PALETTE, bar_chart, line_chart


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
