from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from kbridge.analytics import AnalyticsError, LifecycleRules, lifecycle
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, ago

pytestmark = pytest.mark.unit


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def seed_lifecycle(seed: Seed) -> Warehouse:
    """One profile per stage at AS_OF (2026-06-01), each one rule away from its neighbour."""
    old = ago(150)
    seed.profile("P_NEW", ago(10))
    seed.event("P_NEW", "Opened Email", ago(5))
    seed.profile("P_NEVER", old)
    seed.event("P_NEVER", "Received Email", ago(3))  # receiving is not engaging
    seed.profile("P_ENGAGED", old)
    for d in (2, 9, 20):
        seed.event("P_ENGAGED", "Opened Email", ago(d))
    seed.profile("P_BUYER", old)
    seed.event("P_BUYER", "Placed Order", ago(7), 120.0)
    seed.profile("P_ACTIVE", old)
    seed.event("P_ACTIVE", "Clicked Email", ago(12))
    seed.event("P_ACTIVE", "Active on Site", ago(40))
    seed.profile("P_RISK", old)
    seed.event("P_RISK", "Active on Site", ago(61))
    seed.profile("P_LAPSED", old)
    seed.event("P_LAPSED", "Viewed Product", ago(137))
    seed.profile("P_CHURNED", ago(500))
    seed.event("P_CHURNED", "Placed Order", ago(400), 50.0)
    seed.event("P_CHURNED", "Received Email", ago(1))
    return seed.commit()


def test_each_profile_gets_the_stage_its_activity_implies(warehouse: Warehouse) -> None:
    seed_lifecycle(Seed(warehouse))
    result = lifecycle(warehouse, ACCOUNT, as_of=AS_OF, months=2)
    stage = dict(
        zip(result.profiles.column("profile_id"), result.profiles.column("stage"), strict=True)
    )
    assert stage == {
        "P_NEW": "new",
        "P_NEVER": "never_engaged",
        "P_ENGAGED": "engaged",
        "P_BUYER": "engaged",
        "P_ACTIVE": "active",
        "P_RISK": "at_risk",
        "P_LAPSED": "lapsed",
        "P_CHURNED": "churned",
    }
    counts = dict(zip(result.stages.column("stage"), result.stages.column("profiles"), strict=True))
    assert counts == {
        "new": 1, "engaged": 2, "active": 1, "at_risk": 1, "lapsed": 1, "churned": 1,
        "never_engaged": 1,
    }  # fmt: skip
    assert sum(result.stages.column("share")) == pytest.approx(1.0)
    row = result.profiles.records()[result.profiles.column("profile_id").index("P_BUYER")]
    assert row["purchases"] == 1
    assert row["days_since_purchase"] == pytest.approx(7.0)
    assert row["days_since_created"] == pytest.approx(150.0)


def test_flows_compare_the_start_of_each_month(warehouse: Warehouse) -> None:
    seed_lifecycle(Seed(warehouse))
    result = lifecycle(warehouse, ACCOUNT, as_of=AS_OF, months=2)
    # snapshots: 2026-05-01 and AS_OF (2026-06-01); every move happened in May
    assert result.monthly.column("at") == ["2026-05-01", "2026-06-01"]
    moves = {(r[1], r[2]): r[3] for r in result.flows}
    assert set(result.flows.column("month")) == {"2026-05"}
    assert moves == {
        ("none", "new"): 1,  # P_NEW was created in May
        ("never_engaged", "never_engaged"): 1,  # P_NEVER
        ("never_engaged", "engaged"): 2,  # P_ENGAGED, P_BUYER: first activity in May
        ("active", "active"): 1,  # P_ACTIVE: site visit 40 days before June, a click in May
        ("active", "at_risk"): 1,  # P_RISK: active on 1 April, 30 days before 1 May
        ("lapsed", "lapsed"): 1,  # P_LAPSED
        ("churned", "churned"): 1,  # P_CHURNED
    }
    may = result.monthly.records()[0]
    assert (may["never_engaged"], may["new"]) == (3, 0)


def test_rules_are_configurable(warehouse: Warehouse) -> None:
    seed_lifecycle(Seed(warehouse))
    rules = LifecycleRules(engaged_min_events=4, lapsed_days=120)
    stage = dict(
        zip(*(lifecycle(warehouse, ACCOUNT, as_of=AS_OF, months=1, rules=rules).profiles.column(c)
              for c in ("profile_id", "stage")), strict=True)
    )  # fmt: skip
    assert stage["P_ENGAGED"] == "active"  # 3 events are no longer enough
    assert stage["P_BUYER"] == "engaged"  # a purchase still is
    assert stage["P_LAPSED"] == "churned"  # 137 days > 120
    with pytest.raises(ValueError, match="active_days"):
        LifecycleRules(active_days=100, at_risk_days=90)


def test_as_of_defaults_to_the_latest_event_and_other_accounts_stay_out(
    warehouse: Warehouse,
) -> None:
    seed_lifecycle(Seed(warehouse))
    other = Seed(warehouse, account_id="ACC2")
    other.profile("Q1", ago(400))
    other.event("Q1", "Opened Email", ago(-30))  # later than anything of ACC1
    other.commit()
    result = lifecycle(warehouse, ACCOUNT)
    # the latest ACC1 event is P_CHURNED's Received Email one day before AS_OF
    assert result.as_of == ago(1) + timedelta(seconds=1)
    assert "Q1" not in result.profiles.column("profile_id")
    with pytest.raises(AnalyticsError, match="no profiles or events for account 'NOPE'"):
        lifecycle(warehouse, "NOPE")


def test_the_tables_it_needs_are_checked_in_one_catalogue_query(warehouse: Warehouse) -> None:
    # each catalogue query costs as much as the check of one table (8–19 ms on a loaded
    # machine): the MCP tool's latency ceiling (#24) wants them asked for once
    seed_lifecycle(Seed(warehouse))
    warehouse.query("CALL enable_logging('QueryLog')")
    lifecycle(warehouse, ACCOUNT, as_of=AS_OF)
    logged = [
        str(m).lower()
        for (m,) in warehouse.query("select message from duckdb_logs where type = 'QueryLog'")
    ]
    warehouse.query("CALL disable_logging()")
    assert sum("information_schema" in m for m in logged) == 1
