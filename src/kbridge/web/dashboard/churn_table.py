"""The Analytics page's churn top-risk table, from :func:`kbridge.analytics.churn`.

A profile's reasons are the facts the table shows whose terms raise its score
most in the model (coefficient × the standardised feature): the model's own
weighing of what we can name in words, not a rule of thumb of ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbridge.analytics import AnalyticsError, churn
from kbridge.analytics.errors import MissingTableError
from kbridge.warehouse import WarehouseError, duckdb_path, open_warehouse
from kbridge.web.dashboard.warehouse_cache import VersionedCache

__all__ = ["ChurnTable", "top_risk"]

#: profiles shown, most at risk first
TOP = 20
#: the facts a row shows → the model feature each one is (``log1p`` of it)
_FACTS = {
    "days_since_activity": "log_days_since_activity",
    "activity_90d": "log_activity_90d",
    "orders": "log_orders",
}


@dataclass(frozen=True, slots=True)
class ChurnTable:
    """``rows`` when the analysis ran; else ``unavailable``, one line saying why."""

    rows: list[dict[str, Any]]
    unavailable: str | None = None
    as_of: str = ""
    profiles: int = 0


def _said(fact: str, value: float) -> str:
    n = round(value)
    if fact == "days_since_activity":
        return f"no activity for {n} day{'s' if n != 1 else ''}"
    if fact == "activity_90d":
        return "no activity in 90 days" if n == 0 else f"only {n} events in 90 days"
    return "no orders" if n == 0 else f"{n} order{'s' if n != 1 else ''}"


def _reasons(row: dict[str, Any], model: dict[str, tuple[float, float, float]]) -> list[str]:
    raised = []
    for fact, feature in _FACTS.items():
        value = row.get(fact)
        weights = model.get(feature)
        if value is None or weights is None or not weights[2]:
            continue
        coefficient, mean, std = weights
        term = coefficient * (math.log1p(float(value)) - mean) / std
        if term > 0:
            raised.append((term, _said(fact, float(value))))
    return [said for _, said in sorted(raised, reverse=True)]


_CACHE = VersionedCache()
_BUSY = "The warehouse cannot be read now (a sync may be writing to it)."


def top_risk(url: str, account_id: str, *, top: int = TOP) -> ChurnTable:
    """The ``top`` engaged profiles most likely to churn in ``url``'s warehouse (kept until
    the warehouse changes: the model is trained on every view otherwise)."""
    return _CACHE.get(
        url,
        ("churn", account_id, top),
        lambda: _top_risk(url, account_id, top),
        keep=lambda table: table.unavailable != _BUSY,
    )


def _top_risk(url: str, account_id: str, top: int) -> ChurnTable:
    if not url.startswith(("postgresql://", "postgres://")):
        path = duckdb_path(url)
        if path is None or not Path(path).is_file():
            return ChurnTable([], "Not synced yet: sync this connection to see its churn risk.")
    try:
        warehouse = open_warehouse(url)
    except WarehouseError:
        return ChurnTable([], _BUSY)
    try:
        result = churn(warehouse, account_id)
    except MissingTableError as exc:
        names = ", ".join(exc.tables)
        return ChurnTable([], f"Not synced yet: the warehouse has no {names} table.")
    except AnalyticsError as exc:
        return ChurnTable([], f"No churn model: {exc}")
    except WarehouseError:
        return ChurnTable([], _BUSY)
    finally:
        warehouse.close()
    model = {
        str(r["feature"]): (float(r["coefficient"]), float(r["mean"]), float(r["std"]))
        for r in result.model.records()
        if r["mean"] is not None
    }
    # a profile never active has nothing to churn from: the report keeps it out, and so here
    engaged = [r for r in result.profiles.records() if r["days_since_activity"] is not None]
    rows = [
        {
            "profile": r["email"] or r["profile_id"],
            "score": f"{100 * float(r['churn_probability']):.0f} %",
            "reasons": _reasons(r, model),
        }
        for r in engaged[:top]
    ]
    return ChurnTable(rows, as_of=result.as_of.strftime("%Y-%m-%d"), profiles=len(engaged))
