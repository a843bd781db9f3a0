"""Hand-built warehouses for analytics tests: the sync's own tables, rows written here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kbridge.core import dumps_str
from kbridge.sync.streams import STREAMS
from kbridge.warehouse import Batch, Table, Warehouse

ACCOUNT = "ACC1"
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def ago(days: float, *, hours: float = 0.0) -> datetime:
    return AS_OF - timedelta(days=days, hours=hours)


def subscriptions(
    email: str | None = None,
    *,
    email_ts: datetime | None = None,
    method: str | None = None,
    suppression: tuple[str, datetime] | None = None,
    sms: str | None = None,
    sms_ts: datetime | None = None,
) -> dict[str, Any]:
    """A ``subscriptions`` attribute shaped like Klaviyo's."""
    return {
        "email": {
            "marketing": {
                "consent": email,
                "consent_timestamp": None if email_ts is None else email_ts.isoformat(),
                "method": method,
                "suppression": []
                if suppression is None
                else [{"reason": suppression[0], "timestamp": suppression[1].isoformat()}],
            }
        },
        "sms": {
            "marketing": {
                "consent": sms,
                "consent_timestamp": None if sms_ts is None else sms_ts.isoformat(),
            }
        },
    }


class Seed:
    """Writes profiles, metrics and events into ``warehouse`` with the sync's schema."""

    def __init__(self, warehouse: Warehouse, account_id: str = ACCOUNT) -> None:
        self.warehouse = warehouse
        self.account_id = account_id
        self.tables: dict[str, Table] = {t.name: t for s in STREAMS for t in s.tables}
        warehouse.migrate(list(self.tables.values()))
        self._metrics: dict[str, str] = {}
        self._events = 0
        self._batch = Batch(account_id)
        # the open run of rows for one table: consecutive rows share one upsert statement
        self._run: tuple[Table, list[tuple[Any, ...]], set[tuple[Any, ...]]] | None = None

    def _row(self, table: str, values: dict[str, Any]) -> tuple[Any, ...]:
        t = self.tables[table]
        unknown = set(values) - set(t.column_names)
        assert not unknown, unknown
        out = []
        for c in t.columns[1:]:
            v = values.get(c.name)
            if isinstance(v, datetime):
                v = v.isoformat()
            elif c.type == "json" and v is not None:
                v = dumps_str(v)
            out.append(v)
        return tuple(out)

    def _upsert(self, table: str, values: dict[str, Any]) -> None:
        t = self.tables[table]
        row = (self.account_id, *self._row(table, values))
        key = tuple(row[i] for i in t.key_positions())
        # a repeated key starts a new statement: one upsert must not name a row twice
        if self._run is not None and self._run[0] is t and key not in self._run[2]:
            self._run[1].append(row)
            self._run[2].add(key)
            return
        rows = [row]
        self._batch.upsert(t, rows)
        self._run = (t, rows, {key})

    def metric(self, name: str) -> str:
        if name not in self._metrics:
            mid = f"M{len(self._metrics) + 1}"
            self._metrics[name] = mid
            self._upsert("metrics", {"id": mid, "name": name})
        return self._metrics[name]

    def profile(self, pid: str, created: datetime, **attrs: Any) -> str:
        attrs.setdefault("email", f"{pid.lower()}@example.com")
        subs = attrs.get("subscriptions")
        if isinstance(subs, dict):
            attrs.setdefault("email_consent", subs["email"]["marketing"]["consent"])
            attrs.setdefault("sms_consent", subs["sms"]["marketing"]["consent"])
        self._upsert("profiles", {"id": pid, "created": created, "updated": created, **attrs})
        return pid

    def event(
        self,
        pid: str,
        metric: str,
        at: datetime,
        value: float | None = None,
        *,
        properties: dict[str, Any] | None = None,
    ) -> None:
        self._events += 1
        props = {} if value is None else {"$value": value}
        props.update(properties or {})
        self._upsert(
            "events",
            {
                "id": f"E{self._events}",
                "metric_id": self.metric(metric),
                "profile_id": pid,
                "datetime": at,
                "timestamp": int(at.timestamp()),
                "event_properties": props,
            },
        )

    def row(self, table: str, **values: Any) -> None:
        """One row of any synced table (e.g. ``catalog_items``), its columns by name."""
        self._upsert(table, values)

    def commit(self) -> Warehouse:
        self.warehouse.commit(self._batch)
        self._batch = Batch(self.account_id)
        self._run = None
        return self.warehouse
