from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kbridge.analytics import consent
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, subscriptions

pytestmark = pytest.mark.unit


def d(month: int, day: int, hour: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def seed_consent(seed: Seed) -> Warehouse:
    """Six profiles by 2026-06-01 (AS_OF) whose consent histories are spelled out below."""
    # subscribed by form since January; SMS since March 5
    seed.profile(
        "C_SUB",
        d(1, 10),
        subscriptions=subscriptions(
            "SUBSCRIBED", email_ts=d(1, 12), method="FORM", sms="SUBSCRIBED", sms_ts=d(3, 5)
        ),
    )
    seed.event("C_SUB", "Subscribed to List", d(1, 12))  # the same change as the profile's
    # subscribed Feb 10 (an event), unsubscribed Apr 20; SMS subscribed Mar 20, out May 15
    seed.profile(
        "C_UNSUB",
        d(12, 1, year=2025),
        subscriptions=subscriptions(
            "UNSUBSCRIBED",
            email_ts=d(4, 20),
            method="EMAIL_UNSUBSCRIBE",
            sms="UNSUBSCRIBED",
            sms_ts=d(5, 15),
        ),
    )
    seed.event("C_UNSUB", "Subscribed to List", d(2, 10))
    seed.event("C_UNSUB", "Unsubscribed", d(4, 20))
    seed.event("C_UNSUB", "Subscribed to SMS Marketing", d(3, 20))
    # never subscribed: the profile is the last word over a stray event
    seed.profile("C_NEVER", d(2, 15), subscriptions=subscriptions("NEVER_SUBSCRIBED"))
    seed.event("C_NEVER", "Subscribed to List", d(3, 1))
    # subscribed since 2025, hard-bounced May 10
    seed.profile(
        "C_SUPP",
        d(11, 1, year=2025),
        subscriptions=subscriptions(
            "SUBSCRIBED",
            email_ts=d(11, 2, year=2025),
            method="FORM",
            suppression=("HARD_BOUNCE", d(5, 10)),
        ),
    )
    # created and subscribed May 20
    seed.profile(
        "C_LATE",
        d(5, 20),
        subscriptions=subscriptions("SUBSCRIBED", email_ts=d(5, 20, 12), method="API"),
    )
    # subscribed Dec 1 and unsubscribed Mar 10 (events), subscribed again May 5 (no method)
    seed.profile(
        "C_RESUB", d(10, 1, year=2025), subscriptions=subscriptions("SUBSCRIBED", email_ts=d(5, 5))
    )
    seed.event("C_RESUB", "Subscribed to List", d(12, 1, year=2025))
    seed.event("C_RESUB", "Unsubscribed", d(3, 10))
    # created after AS_OF: not counted
    seed.profile("C_FUTURE", d(6, 10), subscriptions=subscriptions("SUBSCRIBED", email_ts=d(6, 10)))
    return seed.commit()  # fmt: skip


def by_channel(rows: list[dict[str, object]], channel: str) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "channel"} for r in rows if r["channel"] == channel]


def month_rows(
    rows: list[dict[str, object]], channel: str, cols: tuple[str, ...]
) -> dict[object, tuple[object, ...]]:
    return {r["month"]: tuple(r[c] for c in cols) for r in by_channel(rows, channel)}


def test_current_states_suppressions_and_methods(warehouse: Warehouse) -> None:
    seed_consent(Seed(warehouse))
    result = consent(warehouse, ACCOUNT, as_of=AS_OF, months=3)
    assert by_channel(result.current.records(), "email") == [
        {"state": "SUBSCRIBED", "profiles": 4, "share": 0.6667, "suppressed": 1},
        {"state": "UNSUBSCRIBED", "profiles": 1, "share": 0.1667, "suppressed": 0},
        {"state": "NEVER_SUBSCRIBED", "profiles": 1, "share": 0.1667, "suppressed": 0},
    ]
    sms = {r["state"]: r["profiles"] for r in by_channel(result.current.records(), "sms")}
    assert sms == {"SUBSCRIBED": 1, "UNSUBSCRIBED": 1, "NEVER_SUBSCRIBED": 4}
    assert result.current.notes["profiles"] == 6
    assert result.current.notes["email_reachable"] == 3  # subscribed and not suppressed
    assert result.current.notes["sms_reachable"] == 1
    assert result.suppressions.rows == (("email", "HARD_BOUNCE", 1, 1.0),)
    assert result.methods.rows == (
        ("email", "SUBSCRIBED", "FORM", 2),
        ("email", "SUBSCRIBED", "API", 1),
        ("email", "SUBSCRIBED", "unknown", 1),
        ("email", "UNSUBSCRIBED", "EMAIL_UNSUBSCRIBE", 1),
        ("sms", "SUBSCRIBED", "unknown", 1),
        ("sms", "UNSUBSCRIBED", "unknown", 1),
    )


def test_month_ends_rebuild_the_history_from_events_and_timestamps(warehouse: Warehouse) -> None:
    seed_consent(Seed(warehouse))
    result = consent(warehouse, ACCOUNT, as_of=AS_OF, months=3)
    # AS_OF is June 1st 00:00, so the last month is May (ending at AS_OF)
    cols = ("profiles", "subscribed", "unsubscribed", "never_subscribed", "suppressed",
            "reachable", "subscribes", "unsubscribes")  # fmt: skip
    email = month_rows(result.monthly.records(), "email", cols)
    assert email == {
        # C_RESUB's unsubscribe (Mar 10); C_NEVER's stray event changes nothing
        "2026-03": (5, 3, 1, 1, 0, 3, 0, 1),
        # C_UNSUB leaves on Apr 20
        "2026-04": (5, 2, 2, 1, 0, 2, 0, 1),
        # C_LATE joins, C_RESUB comes back, C_SUPP bounces
        "2026-05": (6, 4, 1, 1, 1, 3, 2, 0),
    }
    sms = month_rows(result.monthly.records(), "sms", cols)
    assert sms == {
        "2026-03": (5, 2, 0, 3, 0, 2, 2, 0),
        "2026-04": (5, 2, 0, 3, 0, 2, 0, 0),
        "2026-05": (6, 1, 1, 4, 0, 1, 0, 1),
    }
    # the last month end is the current breakdown
    last = result.monthly.records()[-2]
    assert last["month"] == "2026-05"
    assert last["subscribed"] == result.current.rows[0][2]


def test_a_past_as_of_sees_the_state_then(warehouse: Warehouse) -> None:
    seed_consent(Seed(warehouse))
    march = consent(warehouse, ACCOUNT, as_of=d(3, 1), months=1)
    email = {r["state"]: r["profiles"] for r in by_channel(march.current.records(), "email")}
    # C_RESUB's two events before its own change both count: subscribed on Dec 1
    assert email == {"SUBSCRIBED": 4, "UNSUBSCRIBED": 0, "NEVER_SUBSCRIBED": 1}
    result = consent(warehouse, ACCOUNT, as_of=d(4, 1), months=1)
    email = {r["state"]: r["profiles"] for r in by_channel(result.current.records(), "email")}
    assert email == {"SUBSCRIBED": 3, "UNSUBSCRIBED": 1, "NEVER_SUBSCRIBED": 1}
    # C_UNSUB was subscribed then, but Klaviyo's method describes its latest change only
    assert ("email", "SUBSCRIBED", "unknown", 1) in result.methods.rows
    assert result.suppressions.rows == ()
    assert [r[0] for r in result.monthly.rows] == ["2026-03", "2026-03"]


def test_default_as_of_includes_consent_changes_after_the_last_event(
    warehouse: Warehouse,
) -> None:
    seed_consent(Seed(warehouse))
    result = consent(warehouse, ACCOUNT)
    # the latest event is Apr 20, but C_FUTURE's subscription on Jun 10 is the latest change
    assert result.as_of == d(6, 10) + timedelta(seconds=1)
    assert result.current.notes["profiles"] == 7
