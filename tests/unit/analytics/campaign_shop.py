"""A hand-built warehouse with known campaign answers (shared by unit and PostgreSQL tests).

Day 0 is 2024-03-01 (UTC). Campaign C1 (email, message M1) goes to p1, p2, p3
and bounces for p4; SMS campaign C2 (message M2) reaches p2 and p3 on days
4-5; flow F1 (message FM1) emails p1 on day 2.

| order | profile | when         | value | last touches                       | attributed to |
|-------|---------|--------------|-------|------------------------------------|---------------|
| o1    | p1      | d1           | 100   | M1 click at d0+1h05                | M1 (click)    |
| o2    | p1      | d2+1h        | 20    | FM1 open at d2                     | FM1 (flow)    |
| o3    | p2      | d6+2h        | 50    | SMS click 25 h before, open 6 d    | nothing       |
| o4    | p2      | d5+2h        | 30    | M2 SMS click at d5+1h              | M2 (sms)      |
| o5    | p3      | d5+1h        | 40    | SMS click 25 h before; open 4d22h  | M1 (open)     |
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kbridge.sync.streams import STREAMS
from kbridge.warehouse import Batch, Warehouse

TABLES = {t.name: t for s in STREAMS for t in s.tables}
D0 = datetime(2024, 3, 1, tzinfo=UTC)
H = 3600
DAY = 86400

METRICS = {
    "Received Email": "mRE",
    "Bounced Email": "mBE",
    "Opened Email": "mOE",
    "Clicked Email": "mCE",
    "Unsubscribed": "mUN",
    "Received SMS": "mRS",
    "Clicked SMS": "mCS",
    "Placed Order": "mPO",
    "Viewed Product": "mVP",
}


def row(table: str, account: str, **values: Any) -> tuple[Any, ...]:
    columns = TABLES[table].column_names
    unknown = set(values) - set(columns)
    assert not unknown, unknown
    out: list[Any] = []
    for c in columns:
        v = account if c == "account_id" else values.get(c)
        if isinstance(v, dict | list):
            v = json.dumps(v)
        out.append(v)
    return tuple(out)


def iso(seconds: float) -> str:
    return (D0 + timedelta(seconds=seconds)).isoformat()


class Shop:
    def __init__(self, account: str) -> None:
        self.account = account
        self.events: list[tuple[Any, ...]] = []
        self.reports: list[tuple[Any, ...]] = []
        self.flow_reports: list[tuple[Any, ...]] = []

    def event(self, metric: str, profile: str, at: float, **props: Any) -> None:
        n = len(self.events)
        ts = int(D0.timestamp() + at)
        self.events.append(
            row(
                "events",
                self.account,
                id=f"ev{n:04d}",
                metric_id=METRICS[metric],
                profile_id=profile,
                datetime=iso(at),
                timestamp=ts,
                event_properties=props,
            )
        )

    def report(
        self, day: int, message: str, table: str = "campaign_values_daily", **st: Any
    ) -> None:
        stats = {
            k: st.get(k, 0)
            for k in (
                "recipients",
                "delivered",
                "opens",
                "opens_unique",
                "clicks",
                "clicks_unique",
                "conversions",
                "conversion_value",
                "unsubscribes",
                "bounced",
            )
        }
        if table == "campaign_values_daily":
            keys = {"campaign_id": "C1", "campaign_message_id": message}
        else:
            keys = {"flow_id": "F1", "flow_message_id": message}
        target = self.reports if table == "campaign_values_daily" else self.flow_reports
        target.append(
            row(
                table,
                self.account,
                day=iso(day * DAY),
                send_channel="email",
                **keys,
                **stats,
                statistics=stats,
            )
        )

    def write(self, warehouse: Warehouse) -> None:
        warehouse.migrate(list(TABLES.values()))
        a = self.account
        b = Batch(a)
        b.upsert(TABLES["metrics"], [row("metrics", a, id=i, name=n) for n, i in METRICS.items()])
        b.upsert(
            TABLES["campaigns"],
            [
                row("campaigns", a, id="C1", channel="email", name="Spring sale"),
                row("campaigns", a, id="C2", channel="sms", name="Flash SMS"),
            ],
        )
        b.upsert(
            TABLES["campaign_messages"],
            [
                row(
                    "campaign_messages",
                    a,
                    id="M1",
                    campaign_id="C1",
                    label="Spring email",
                    channel="email",
                ),
                row(
                    "campaign_messages",
                    a,
                    id="M2",
                    campaign_id="C2",
                    label="Flash text",
                    channel="sms",
                ),
            ],
        )
        b.upsert(TABLES["flows"], [row("flows", a, id="F1", name="Welcome")])
        b.upsert(TABLES["flow_actions"], [row("flow_actions", a, id="A1", flow_id="F1")])
        b.upsert(
            TABLES["flow_messages"],
            [
                row(
                    "flow_messages",
                    a,
                    id="FM1",
                    flow_action_id="A1",
                    name="Welcome 1",
                    channel="email",
                )
            ],
        )
        b.upsert(TABLES["events"], self.events)
        b.upsert(TABLES["campaign_values_daily"], self.reports)
        b.upsert(TABLES["flow_series_daily"], self.flow_reports)
        warehouse.commit(b)


def build(account: str) -> Shop:
    s = Shop(account)
    m1 = {"$message": "M1", "Campaign Name": "Spring sale"}
    m2 = {"$message": "M2"}
    fm1 = {"$message": "FM1", "$flow": "F1"}
    for p in ("p1", "p2", "p3"):
        s.event("Received Email", p, 0, **m1)
    s.event("Bounced Email", "p4", 0, **m1)
    s.event("Opened Email", "p1", 1 * H, **m1)
    s.event("Clicked Email", "p1", 1 * H + 300, **m1)
    s.event("Opened Email", "p1", 1 * H + 310, **m1)  # a second open: opens 4, unique 3
    s.event("Opened Email", "p2", 2 * H, **m1)
    s.event("Opened Email", "p3", 3 * H, **m1)
    s.event("Unsubscribed", "p3", 3 * H + 60, **m1)
    s.event("Placed Order", "p1", 1 * DAY, **{"$value": 100.0, "OrderId": "o1"})
    s.event("Received Email", "p1", 2 * DAY, **fm1)
    s.event("Opened Email", "p1", 2 * DAY, **fm1)
    s.event("Placed Order", "p1", 2 * DAY + H, **{"$value": 20.0})
    s.event("Received SMS", "p3", 4 * DAY, **m2)
    s.event("Clicked SMS", "p3", 4 * DAY, **m2)
    s.event("Received SMS", "p2", 5 * DAY, **m2)
    s.event("Clicked SMS", "p2", 5 * DAY + H, **m2)
    s.event("Placed Order", "p2", 5 * DAY + 2 * H, value=30.0)  # `value` when `$value` is absent
    s.event("Placed Order", "p3", 5 * DAY + H, **{"$value": 40.0, "$attributed_message": "M1"})
    s.event("Placed Order", "p2", 6 * DAY + 2 * H, **{"$value": 50.0, "$attributed_message": "M2"})
    s.event("Clicked SMS", "p4", 1 * H)  # no message: never a touch
    s.event("Viewed Product", "p4", 2 * H, **{"$message": "M1"})  # not a message metric
    # Klaviyo's own figures: day 0 agrees; day 1 says 2 conversions worth 150 (events: 1, 100)
    s.report(
        0,
        "M1",
        recipients=4,
        delivered=3,
        opens=4,
        opens_unique=3,
        clicks=1,
        clicks_unique=1,
        unsubscribes=1,
        bounced=1,
    )
    s.report(1, "M1", conversions=2, conversion_value=150.0)
    s.report(
        2,
        "FM1",
        "flow_series_daily",
        recipients=1,
        delivered=1,
        opens=1,
        opens_unique=1,
        conversions=1,
        conversion_value=20.0,
    )
    return s
