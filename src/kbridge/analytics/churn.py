"""Churn prediction: each profile's probability of showing no activity in the next ``horizon``.

The model learns from the account's own history with a time split, so no future
leaks into it:

1. **Cutoff** ``T = as_of - horizon`` (default 90 days).
2. **Features at T** from events *before* ``T`` only (and consent given before
   ``T``): recency, tenure, frequency (30 and 90 days, lifetime rate), the trend
   of the last 90 days against the 90 before, orders, revenue, days since the
   last order, email open rate and emails received in the last 90 days,
   unsubscribes and consent. Counts are ``log1p``-scaled.
3. **Label**: 1 when a profile active before ``T`` shows no activity in
   ``[T, as_of)``. Only profiles active before ``T`` are labelled: one that never
   engaged has nothing to churn from.
4. A **logistic regression** (Newton/IRLS, L2 on standardised features) is fitted
   on a seeded, stratified 70 % of the labelled profiles; the other 30 % give the
   holdout AUC (rank / Mann-Whitney) and a calibration table (deciles of the
   prediction: mean predicted against observed churn).
5. The model is refitted on every labelled profile and applied to the features
   **at** ``as_of``: each profile's churn probability now.

Klaviyo's own ``predictive_analytics.churn_probability`` (synced with
``kbridge sync --predictive-analytics``) is scored on the same holdout. It is
Klaviyo's *current* estimate, computed after ``T``, so the comparison favours it.

Activity has the meaning of :mod:`kbridge.analytics.lifecycle` (opens, clicks,
site activity, browsing, carts, checkouts, orders; not receiving a message).

The model is pure Python: 14 features and tens of thousands of profiles need a
few column sums per Newton step (``sum(map(mul, …))`` runs in C), not numpy.
"""

# Identifiers in SQL text are kbridge's own; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kbridge.analytics._logistic import LogisticModel, auc, fit_logistic
from kbridge.analytics._sql import DAY, epoch, from_epoch, in_list, iso, json_text, require_tables
from kbridge.analytics._sql import resolve_as_of as _resolve_as_of
from kbridge.analytics.errors import AnalyticsError
from kbridge.analytics.frame import Frame
from kbridge.analytics.lifecycle import ENGAGEMENT_METRICS, PURCHASE_METRIC
from kbridge.core.clock import utc
from kbridge.warehouse import Warehouse

__all__ = [
    "FEATURES",
    "Churn",
    "ChurnTruthScore",
    "LogisticModel",
    "auc",
    "churn",
    "churn_vs_truth",
    "fit_logistic",
    "score_against_truth",
]

#: the model's inputs, in coefficient order (see the module docstring)
FEATURES = (
    "log_days_since_activity",
    "log_tenure_days",
    "log_activity_30d",
    "log_activity_90d",
    "activity_trend_90d",
    "log_activity_per_30d",
    "log_orders",
    "log_revenue",
    "log_days_since_order",
    "open_rate_90d",
    "log_emails_received_90d",
    "unsubscribed",
    "email_subscribed",
    "sms_subscribed",
)

_OPENED = "Opened Email"
_RECEIVED = "Received Email"
_UNSUBSCRIBED = "Unsubscribed"
_TRAIN_SHARE = 0.7


# --- features (SQL) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """One profile's features at a moment, with what the tables show about it."""

    profile_id: str
    email: str | None
    x: tuple[float, ...]
    active_before: bool
    days_since_activity: float | None
    activity_90d: int
    orders: int
    klaviyo: float | None


def _metric_ids(warehouse: Warehouse, account_id: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for mid, name in warehouse.query(
        "SELECT id, name FROM metrics WHERE account_id = ? ORDER BY id", [account_id]
    ):
        out.setdefault(str(name), []).append(str(mid))
    return out


def _ids(by_name: Mapping[str, list[str]], names: Sequence[str]) -> list[str]:
    """Metric ids of ``names``; a never-matching id when the account has none of them
    (``IN ()`` is not SQL)."""
    return [i for n in names for i in by_name.get(n, [])] or [""]


def _feature_sql(
    warehouse: Warehouse, act: int, order: int, opened: int, received: int, unsub: int, every: int
) -> str:
    """Per profile created before ``t``: the aggregates behind the features.

    Placeholders (in order): activity ids, order ids, opened ids, received ids,
    unsubscribed ids, account, t, all ids again; t-30d, t-90d, t-90d, t-180d,
    t-90d, t-90d; account, t.
    """
    consent_ts = json_text(warehouse, "p.subscriptions", "email", "marketing", "consent_timestamp")
    sms_ts = json_text(warehouse, "p.subscriptions", "sms", "marketing", "consent_timestamp")
    klaviyo = json_text(warehouse, "p.predictive_analytics", "churn_probability")

    def ids(n: int) -> str:
        return in_list(["?"] * n)

    return f"""
WITH ev AS (
  SELECT e.profile_id, e.datetime AS at,
    CASE WHEN e.metric_id IN {ids(act)} THEN 1 ELSE 0 END AS act,
    CASE WHEN e.metric_id IN {ids(order)} THEN 1 ELSE 0 END AS ord,
    CASE WHEN e.metric_id IN {ids(opened)} THEN 1 ELSE 0 END AS opened,
    CASE WHEN e.metric_id IN {ids(received)} THEN 1 ELSE 0 END AS recv,
    CASE WHEN e.metric_id IN {ids(unsub)} THEN 1 ELSE 0 END AS unsub
  FROM events e
  WHERE e.account_id = ? AND e.datetime < CAST(? AS TIMESTAMPTZ)
    AND e.metric_id IN {ids(every)}
), agg AS (
  SELECT e.profile_id,
    MAX(CASE WHEN e.act = 1 THEN e.at END) AS last_active,
    SUM(CASE WHEN e.act = 1 AND e.at >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS n30,
    SUM(CASE WHEN e.act = 1 AND e.at >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS n90,
    SUM(CASE WHEN e.act = 1 AND e.at < CAST(? AS TIMESTAMPTZ)
             AND e.at >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS nprev,
    SUM(e.act) AS nall,
    SUM(e.ord) AS orders,
    MAX(CASE WHEN e.ord = 1 THEN e.at END) AS last_order,
    SUM(CASE WHEN e.opened = 1 AND e.at >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS opens,
    SUM(CASE WHEN e.recv = 1 AND e.at >= CAST(? AS TIMESTAMPTZ) THEN 1 ELSE 0 END) AS recv,
    MAX(e.unsub) AS unsub
  FROM ev e
  GROUP BY e.profile_id
)
SELECT p.id, p.email, {epoch("p.created")}, {epoch("a.last_active")},
  COALESCE(a.n30, 0), COALESCE(a.n90, 0), COALESCE(a.nprev, 0), COALESCE(a.nall, 0),
  COALESCE(a.orders, 0), {epoch("a.last_order")},
  COALESCE(a.opens, 0), COALESCE(a.recv, 0), COALESCE(a.unsub, 0),
  p.email_consent, {consent_ts}, p.sms_consent, {sms_ts}, {klaviyo}
FROM profiles p
LEFT JOIN agg a ON a.profile_id = p.id
WHERE p.account_id = ? AND (p.created IS NULL OR p.created < CAST(? AS TIMESTAMPTZ))
ORDER BY p.id
"""


def _ts(text: Any) -> float | None:
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(str(text).replace("Z", "+00:00"))).timestamp()
    except ValueError:
        return None


def _num(text: Any) -> float | None:
    try:
        return None if text is None else float(text)
    except (TypeError, ValueError):
        return None


def _features_at(
    warehouse: Warehouse, account_id: str, t: float, metrics: Mapping[str, list[str]]
) -> list[_Row]:
    """Every profile created before ``t`` with its features from what happened before ``t``."""
    act = _ids(metrics, (*ENGAGEMENT_METRICS, PURCHASE_METRIC))
    order = _ids(metrics, (PURCHASE_METRIC,))
    opened = _ids(metrics, (_OPENED,))
    received = _ids(metrics, (_RECEIVED,))
    unsub = _ids(metrics, (_UNSUBSCRIBED,))
    every = [*act, *received, *unsub]  # orders and opens are activity already
    sql = _feature_sql(
        warehouse, len(act), len(order), len(opened), len(received), len(unsub), len(every)
    )

    def ago(days: float) -> str:
        return iso(t - days * DAY)

    params: list[object] = [
        *act,
        *order,
        *opened,
        *received,
        *unsub,
        account_id,
        iso(t),
        *every,
        ago(30),
        ago(90),
        ago(90),
        ago(180),
        ago(90),
        ago(90),
        account_id,
        iso(t),
    ]
    revenues = _revenue(warehouse, account_id, t, order)
    out = []
    for r in warehouse.query(sql, params):
        created = t if r[2] is None else float(r[2])
        tenure = max(0.0, (t - created) / DAY)
        last = None if r[3] is None else float(r[3])
        since = (t - last) / DAY if last is not None else None
        n30, n90, nprev, nall, orders = (int(v) for v in r[4:9])
        revenue = revenues.get(str(r[0]), 0.0)
        last_order = None if r[9] is None else float(r[9])
        opens, recv, unsub_events = int(r[10]), int(r[11]), int(r[12])
        email_ts, sms_ts = _ts(r[14]), _ts(r[16])
        # Consent is the profile's current state; it counts only when given before t
        # (a later consent is not known at t, so it must not inform the features).
        subscribed = r[13] == "SUBSCRIBED" and email_ts is not None and email_ts < t
        unsubscribed = unsub_events > 0 or (
            r[13] == "UNSUBSCRIBED" and email_ts is not None and email_ts < t
        )
        sms = r[15] == "SUBSCRIBED" and sms_ts is not None and sms_ts < t
        x = (
            # no activity yet: the last sign of life is the profile's creation
            math.log1p(since if since is not None else tenure),
            math.log1p(tenure),
            math.log1p(n30),
            math.log1p(n90),
            math.log1p(n90) - math.log1p(nprev),
            math.log1p(nall * 30.0 / max(tenure, 30.0)),
            math.log1p(orders),
            math.log1p(revenue),
            math.log1p((t - last_order) / DAY if last_order is not None else tenure),
            (opens + 1.0) / (recv + 2.0),  # smoothed: no emails reads as "unknown", 0.5
            math.log1p(recv),
            float(unsubscribed),
            float(subscribed),
            float(sms),
        )
        out.append(
            _Row(
                profile_id=str(r[0]),
                email=None if r[1] is None else str(r[1]),
                x=x,
                active_before=last is not None,
                days_since_activity=None if since is None else round(since, 2),
                activity_90d=n90,
                orders=orders,
                klaviyo=_num(r[17]),
            )
        )
    return out


def _revenue(warehouse: Warehouse, account_id: str, t: float, order: list[str]) -> dict[str, float]:
    """Order value per profile before ``t``: ``$value``, else ``value``. Read in Python
    so one malformed value counts as 0 instead of failing the cast for everyone."""
    props = "event_properties"
    rows = warehouse.query(
        f"SELECT profile_id, {json_text(warehouse, props, '$value')},"
        f" {json_text(warehouse, props, 'value')} FROM events"
        " WHERE account_id = ? AND datetime < CAST(? AS TIMESTAMPTZ)"
        f" AND metric_id IN {in_list(order)}",
        [account_id, iso(t), *order],
    )
    out: dict[str, float] = {}
    for pid, dollar_value, value in rows:
        amount = _num(dollar_value if dollar_value is not None else value) or 0.0
        if math.isfinite(amount) and amount > 0:
            out[str(pid)] = out.get(str(pid), 0.0) + amount
    return out


def _active_between(
    warehouse: Warehouse, account_id: str, start: float, end: float, act: list[str]
) -> set[str]:
    rows = warehouse.query(
        "SELECT DISTINCT profile_id FROM events WHERE account_id = ?"
        " AND datetime >= CAST(? AS TIMESTAMPTZ) AND datetime < CAST(? AS TIMESTAMPTZ)"
        f" AND metric_id IN {in_list(act)}",
        [account_id, iso(start), iso(end), *act],
    )
    return {str(r[0]) for r in rows}


# --- training split and calibration (the model is in _logistic) ----------------------


def _split(ids: Sequence[str], labels: Sequence[int], seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and holdout rows: a seeded shuffle per class (stratified), so
    both classes reach the holdout and the split does not depend on row order."""
    rng = random.Random(seed)
    train: list[int] = []
    hold: list[int] = []
    for cls in (0, 1):
        members = sorted((i for i, v in enumerate(labels) if v == cls), key=lambda i: ids[i])
        rng.shuffle(members)
        cut = round(len(members) * _TRAIN_SHARE)
        train += members[:cut]
        hold += members[cut:]
    return sorted(train), sorted(hold)


def _calibration(
    pred: Sequence[float], labels: Sequence[int], bins: int = 10
) -> list[tuple[Any, ...]]:
    order = sorted(range(len(pred)), key=lambda i: pred[i])
    bins = min(bins, len(order))
    out = []
    for b in range(bins):
        part = order[b * len(order) // bins : (b + 1) * len(order) // bins]
        if not part:
            continue
        mean_p = sum(pred[i] for i in part) / len(part)
        observed = sum(labels[i] for i in part) / len(part)
        out.append((b + 1, len(part), round(mean_p, 4), round(observed, 4)))
    return out


# --- the analysis ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Churn:
    """The churn analysis.

    ``profiles``: profile_id, email, churn_probability, days_since_activity,
    activity_90d, orders, klaviyo_churn_probability — most at risk first.
    ``model``: feature, coefficient (per standard deviation), mean, std; the
    intercept first. ``calibration``: decile, profiles, predicted, observed on
    the holdout. ``holdout_auc``/``klaviyo_auc`` are ``None`` when undefined.
    """

    as_of: datetime
    cutoff: datetime
    horizon_days: float
    trained: int
    holdout: int
    churn_rate: float
    holdout_auc: float | None
    brier: float | None
    klaviyo_auc: float | None
    klaviyo_holdout: int
    model_auc_on_klaviyo_rows: float | None
    profiles: Frame
    model: Frame
    calibration: Frame

    def summary(self) -> dict[str, Any]:
        """The headline figures (the CLI prints them above the tables)."""
        return {
            "as_of": self.as_of.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "horizon_days": self.horizon_days,
            "trained_on": self.trained,
            "holdout": self.holdout,
            "churn_rate": round(self.churn_rate, 4),
            "holdout_auc": _r(self.holdout_auc),
            "brier": _r(self.brier),
            "klaviyo_auc": _r(self.klaviyo_auc),
            "klaviyo_holdout": self.klaviyo_holdout,
            "model_auc_on_klaviyo_rows": _r(self.model_auc_on_klaviyo_rows),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "model": self.model.to_dict(),
            "calibration": self.calibration.to_dict(),
            "profiles": self.profiles.to_dict(),
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def churn(
    warehouse: Warehouse,
    account_id: str,
    *,
    as_of: datetime | None = None,
    horizon_days: float = 90,
    l2: float = 1.0,
    seed: int = 0,
) -> Churn:
    """Train the churn model on the account's history and score every profile at ``as_of``.

    Raises :class:`AnalyticsError` when the history before the cutoff cannot train a
    model (no profile active before it, or all of them churned / none did).
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    require_tables(warehouse, "profiles", "events", "metrics")
    t = _resolve_as_of(warehouse, account_id, as_of)
    cutoff = t - horizon_days * DAY
    metrics = _metric_ids(warehouse, account_id)
    act = _ids(metrics, (*ENGAGEMENT_METRICS, PURCHASE_METRIC))

    history = [r for r in _features_at(warehouse, account_id, cutoff, metrics) if r.active_before]
    if not history:
        raise AnalyticsError(
            f"no profile was active before the cutoff {iso(cutoff)[:10]} "
            f"({horizon_days:g} days before {iso(t)[:10]}): the history is too short "
            "to train a churn model (sync more events, or shorten --horizon)"
        )
    came_back = _active_between(warehouse, account_id, cutoff, t, act)
    labels = [0 if r.profile_id in came_back else 1 for r in history]
    churned = sum(labels)
    if churned in (0, len(labels)):
        state = "churned" if churned else "stayed active"
        raise AnalyticsError(
            f"all {len(labels)} profiles active before the cutoff {state} in the "
            f"{horizon_days:g} days after it: nothing to learn churn from"
        )
    ids = [r.profile_id for r in history]
    train, hold = _split(ids, labels, seed)
    split_model = fit_logistic([history[i].x for i in train], [labels[i] for i in train], l2=l2)
    hold_pred = [split_model.predict(history[i].x) for i in hold]
    hold_y = [labels[i] for i in hold]
    holdout_auc = auc(hold_pred, hold_y)
    brier = (
        sum((p - y) ** 2 for p, y in zip(hold_pred, hold_y, strict=True)) / len(hold)
        if hold
        else None
    )
    with_k: list[tuple[int, float]] = []
    for k, i in enumerate(hold):
        theirs = history[i].klaviyo
        if theirs is not None:
            with_k.append((k, theirs))
    klaviyo_auc = auc([v for _, v in with_k], [hold_y[k] for k, _ in with_k])
    ours_on_k = auc([hold_pred[k] for k, _ in with_k], [hold_y[k] for k, _ in with_k])

    final = fit_logistic([r.x for r in history], labels, l2=l2)
    now = _features_at(warehouse, account_id, t, metrics)
    scored = sorted(
        (
            (
                r.profile_id,
                r.email,
                round(final.predict(r.x), 4),
                r.days_since_activity,
                r.activity_90d,
                r.orders,
                r.klaviyo,
            )
            for r in now
        ),
        key=lambda row: (-row[2], row[0]),
    )
    profiles = Frame.of(
        (
            "profile_id",
            "email",
            "churn_probability",
            "days_since_activity",
            "activity_90d",
            "orders",
            "klaviyo_churn_probability",
        ),
        scored,
        title="Churn probability per profile (most at risk first)",
        notes={"as_of": iso(t), "horizon_days": horizon_days},
    )
    model = Frame.of(
        ("feature", "coefficient", "mean", "std"),
        [("intercept", round(final.weights[0], 4), None, None)]
        + [
            (name, round(w, 4), round(mu, 4), round(sd, 4))
            for name, w, mu, sd in zip(
                FEATURES, final.weights[1:], final.means, final.stds, strict=True
            )
        ],
        title="Churn model (logistic regression, coefficients per standard deviation)",
        notes={"l2": l2, "iterations": final.iterations, "profiles": len(history)},
    )
    calibration = Frame.of(
        ("decile", "profiles", "predicted", "observed"),
        _calibration(hold_pred, hold_y),
        title="Calibration on the holdout (deciles of predicted churn)",
        notes={"holdout_auc": _r(holdout_auc), "brier": _r(brier)},
    )
    return Churn(
        as_of=from_epoch(t),
        cutoff=from_epoch(cutoff),
        horizon_days=horizon_days,
        trained=len(train),
        holdout=len(hold),
        churn_rate=churned / len(labels),
        holdout_auc=holdout_auc,
        brier=brier,
        klaviyo_auc=klaviyo_auc,
        klaviyo_holdout=len(with_k),
        model_auc_on_klaviyo_rows=ours_on_k,
        profiles=profiles,
        model=model,
        calibration=calibration,
    )


# --- scoring against a known truth ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChurnTruthScore:
    """How well churn probabilities rank the profiles that truly churned.

    ``auc``: ours against the truth's ``churned`` flag over ``profiles`` scored
    profiles (``churned`` of them churned); ``klaviyo_auc``: Klaviyo's
    ``churn_probability`` on the ``klaviyo_profiles`` that carry one. The ceiling is 1.0.
    """

    profiles: int
    churned: int
    auc: float | None
    klaviyo_profiles: int
    klaviyo_auc: float | None


def score_against_truth(result: Churn, truth: Mapping[str, Any]) -> ChurnTruthScore:
    """Score ``result`` against a truth document: ``{"profiles": {id: {"churned": bool}}}``
    (the shape of the emulator's ``/_emulator/truth``). Profiles absent from it are skipped."""
    known: Mapping[str, Any] = truth.get("profiles") or {}
    ours: list[float] = []
    ours_y: list[int] = []
    theirs: list[float] = []
    theirs_y: list[int] = []
    for rec in result.profiles.records():
        fact = known.get(rec["profile_id"])
        if not isinstance(fact, Mapping) or "churned" not in fact:
            continue
        y = int(bool(fact["churned"]))
        ours.append(float(rec["churn_probability"]))
        ours_y.append(y)
        if rec["klaviyo_churn_probability"] is not None:
            theirs.append(float(rec["klaviyo_churn_probability"]))
            theirs_y.append(y)
    return ChurnTruthScore(
        profiles=len(ours),
        churned=sum(ours_y),
        auc=auc(ours, ours_y),
        klaviyo_profiles=len(theirs),
        klaviyo_auc=auc(theirs, theirs_y),
    )


def churn_vs_truth(
    warehouse: Warehouse,
    account_id: str,
    truth: Mapping[str, Any],
    *,
    as_of: datetime | None = None,
    horizon_days: float = 90,
) -> ChurnTruthScore:
    """Train and score the churn model on ``warehouse``, then score it against ``truth``
    (e.g. the emulator's ``/_emulator/truth``) — the demo's "churn AUC vs ground truth"."""
    result = churn(warehouse, account_id, as_of=as_of, horizon_days=horizon_days)
    return score_against_truth(result, truth)
