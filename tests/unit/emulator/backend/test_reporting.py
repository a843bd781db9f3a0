"""Values reports recount the emulator's own events: hand-built events, known answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.report_time import series_edges, timeframe_bounds
from tests.unit.emulator.backend.conftest import NOW, Caller, profile_body
from tests.unit.emulator.backend.test_campaigns import campaign_body, create

pytestmark = pytest.mark.unit

DAY = 86400.0
T0 = NOW.timestamp() - 10 * DAY
NY = ZoneInfo("America/New_York")


def put(b: EmulatorBackend, metric: str, seq: int, ts: float, value: float = 0.0,
        **props: Any) -> None:  # fmt: skip
    index = b.store.metric_by_name[metric].index
    b.store.add_event(ts, seq, index, value, props, None)


def report(call: Caller, empty: EmulatorBackend, stats: list[str], kind: str = "campaign",
           **attrs: Any) -> list[dict[str, Any]]:  # fmt: skip
    attrs.setdefault("timeframe", {"key": "last_30_days"})
    attrs.setdefault("conversion_metric_id", empty.store.metric_by_name["Placed Order"].id)
    body = {"data": {"type": f"{kind}-values-report", "attributes": {"statistics": stats, **attrs}}}
    out = call(f"query_{kind}_values", body=body)
    results: list[dict[str, Any]] = out.data.attributes["results"]
    return results


@pytest.fixture
def setup(empty: EmulatorBackend, ecall: Caller) -> dict[str, Any]:
    seqs = []
    for name in ("a", "b", "c"):
        p = ecall("create_profile", body=profile_body(email=f"{name}@example.com")).data
        seqs.append(empty.store.by_id[p.id])
    lst = ecall("create_list", body={"data": {"type": "list", "attributes": {"name": "L"}}}).data
    cid, mid = create(ecall, campaign_body([lst.id]))
    cid2, mid2 = create(ecall, campaign_body([lst.id], name="Second"))
    return {"seqs": seqs, "cid": cid, "mid": mid, "cid2": cid2, "mid2": mid2}


def test_statistics_agree_with_the_events(
    empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]
) -> None:
    a, b, c = setup["seqs"]
    mid = setup["mid"]
    for seq in (a, b, c):
        put(empty, "Received Email", seq, T0, **{"$message": mid})
    put(empty, "Opened Email", a, T0 + 60, **{"$message": mid})
    put(empty, "Opened Email", a, T0 + 120, **{"$message": mid})
    put(empty, "Opened Email", b, T0 + 60, **{"$message": mid})
    put(empty, "Clicked Email", a, T0 + 130, **{"$message": mid})
    put(empty, "Unsubscribed", c, T0 + 300, **{"$message": mid})
    put(empty, "Placed Order", a, T0 + DAY, 50.0)  # 1 day after a's click: attributed
    put(empty, "Placed Order", b, T0 + 6 * DAY, 30.0)  # 6 days after b's open: not
    put(empty, "Placed Order", c, T0 + DAY, 10.0)  # c never opened: not
    stats = ["recipients", "delivered", "opens", "opens_unique", "open_rate", "clicks",
             "clicks_unique", "click_to_open_rate", "unsubscribes", "unsubscribe_rate",
             "conversions", "conversion_value", "conversion_rate", "revenue_per_recipient",
             "average_order_value", "bounced", "delivery_rate"]  # fmt: skip
    results = report(ecall, empty, stats)
    assert results == [
        {
            "groupings": {
                "campaign_id": setup["cid"],
                "campaign_message_id": mid,
                "send_channel": "email",
            },
            "statistics": {
                "recipients": 3,
                "delivered": 3,
                "opens": 3,
                "opens_unique": 2,
                "open_rate": 0.6667,
                "clicks": 1,
                "clicks_unique": 1,
                "click_to_open_rate": 0.5,
                "unsubscribes": 1,
                "unsubscribe_rate": 0.3333,
                "conversions": 1,
                "conversion_value": 50.0,
                "conversion_rate": 0.3333,
                "revenue_per_recipient": 16.6667,
                "average_order_value": 50.0,
                "bounced": 0,
                "delivery_rate": 1.0,
            },
        }
    ]


def test_the_last_touch_wins(empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]) -> None:
    a = setup["seqs"][0]
    for mid in (setup["mid"], setup["mid2"]):
        put(empty, "Received Email", a, T0, **{"$message": mid})
    put(empty, "Opened Email", a, T0 + 60, **{"$message": setup["mid"]})
    put(empty, "Opened Email", a, T0 + 3600, **{"$message": setup["mid2"]})
    put(empty, "Placed Order", a, T0 + 7200, 20.0)
    results = report(ecall, empty, ["conversions", "conversion_value"],
                     group_by=["campaign_id", "campaign_message_id"])  # fmt: skip
    by_message = {r["groupings"]["campaign_message_id"]: r["statistics"] for r in results}
    assert by_message[setup["mid"]] == {"conversions": 0, "conversion_value": 0.0}
    assert by_message[setup["mid2"]] == {"conversions": 1, "conversion_value": 20.0}


def test_filter_and_timeframe_narrow_the_events(
    empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]
) -> None:
    a, b, _ = setup["seqs"]
    put(empty, "Received Email", a, T0, **{"$message": setup["mid"]})
    put(empty, "Received Email", b, T0, **{"$message": setup["mid2"]})
    put(empty, "Received Email", b, T0 - 60 * DAY, **{"$message": setup["mid2"]})
    only = f'equals(campaign_id,"{setup["cid2"]}")'
    results = report(ecall, empty, ["recipients"], filter=only)
    assert [r["statistics"]["recipients"] for r in results] == [1]
    wide = {"start": "2026-08-01T00:00:00", "end": "2026-11-01T00:00:00"}
    results = report(ecall, empty, ["recipients"], filter=only, timeframe=wide)
    assert [r["statistics"]["recipients"] for r in results] == [2]


def test_flow_reports_group_by_the_flow_property(
    empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]
) -> None:
    a, b, _ = setup["seqs"]
    put(empty, "Received Email", a, T0, **{"$message": "fm1", "$flow": "F1"})
    put(empty, "Received Email", b, T0, **{"$message": "fm1", "$flow": "F1"})
    put(empty, "Opened Email", b, T0 + 5, **{"$message": "fm1", "$flow": "F1"})
    put(empty, "Received Email", a, T0, **{"$message": setup["mid"]})
    flows = report(ecall, empty, ["recipients", "opens_unique"], kind="flow")
    assert flows == [{"groupings": {"flow_id": "F1", "flow_message_id": "fm1",
                                    "send_channel": "email"},
                      "statistics": {"recipients": 2, "opens_unique": 1}}]  # fmt: skip
    campaigns = report(ecall, empty, ["recipients"])
    assert [r["groupings"]["campaign_message_id"] for r in campaigns] == [setup["mid"]]
    named = report(
        ecall,
        empty,
        ["recipients"],
        kind="flow",
        group_by=["flow_id", "flow_message_id", "flow_name", "flow_message_name"],
    )
    assert named[0]["groupings"] == {"flow_id": "F1", "flow_message_id": "fm1",
                                     "flow_name": None, "flow_message_name": None}  # fmt: skip


def test_sms_deliveries_and_clicks_report_on_the_sms_channel(
    empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]
) -> None:
    a, b, _ = setup["seqs"]
    lst = ecall("create_list", body={"data": {"type": "list", "attributes": {"name": "S"}}}).data
    body = campaign_body([lst.id], name="Text")
    message = body["data"]["attributes"]["campaign-messages"]["data"][0]["attributes"]
    message["definition"] = {"channel": "sms", "content": {"body": "Sale"}}
    cid, mid = create(ecall, body)
    for seq in (a, b):
        put(empty, "Received SMS", seq, T0, **{"$message": mid})
    put(empty, "Clicked SMS", b, T0 + 60, **{"$message": mid})
    put(empty, "Placed Order", b, T0 + 3600, 12.5)
    only = f'equals(campaign_id,"{cid}")'
    results = report(ecall, empty, ["delivered", "clicks_unique", "conversion_value"], filter=only)
    assert results == [{"groupings": {"campaign_id": cid, "campaign_message_id": mid,
                                      "send_channel": "sms"},
                        "statistics": {"delivered": 2, "clicks_unique": 1,
                                       "conversion_value": 12.5}}]  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "pointer", "words"),
    [
        ({"statistics": ["opens", "text_message_spend"]}, "statistics", "text_message_spend"),
        ({"statistics": ["openz"]}, "statistics", "openz"),
        ({"conversion_metric_id": None}, "conversion_metric_id", "required"),
        ({"conversion_metric_id": "nope00"}, "conversion_metric_id", "nope00"),
        ({"group_by": ["campaign_id", "campaign_message_id", "tag_id"]}, "group_by", "tag_id"),
        ({"group_by": ["campaign_id"]}, "group_by", "campaign_message_id"),
        ({"timeframe": {"key": "last_2_days"}}, "timeframe/key", "last_30_days"),
        ({"timeframe": None}, "timeframe", "timeframe"),
        ({"filter": 'equals(flow_id,"x")'}, "filter", "flow_id"),
    ],
)
def test_invalid_requests_name_the_field(
    empty: EmulatorBackend, ecall: Caller, attrs: dict[str, Any], pointer: str, words: str
) -> None:
    metric_id = empty.store.metric_by_name["Placed Order"].id
    base: dict[str, Any] = {
        "statistics": ["opens"],
        "timeframe": {"key": "last_7_days"},
        "conversion_metric_id": metric_id,
    }
    base.update(attrs)
    base = {k: v for k, v in base.items() if v is not None}
    with pytest.raises(InvalidError) as err:
        ecall("query_campaign_values",
              body={"data": {"type": "campaign-values-report", "attributes": base}})  # fmt: skip
    assert err.value.pointer == f"/data/attributes/{pointer}"
    assert words in err.value.detail


def test_timeframes_follow_the_account_timezone() -> None:
    now = datetime(2026, 11, 4, 15, 0, tzinfo=UTC).timestamp()  # a Wednesday, 10:00 in New York

    def local(*args: int) -> float:
        return datetime(*args, tzinfo=NY).timestamp()

    assert timeframe_bounds({"key": "today"}, now, NY) == (local(2026, 11, 4), local(2026, 11, 5))
    assert timeframe_bounds({"key": "last_week"}, now, NY) == (local(2026, 10, 26),
                                                               local(2026, 11, 2))  # fmt: skip
    assert timeframe_bounds({"key": "last_month"}, now, NY) == (local(2026, 10, 1),
                                                                local(2026, 11, 1))  # fmt: skip
    assert timeframe_bounds({"key": "last_7_days"}, now, NY) == (local(2026, 10, 28),
                                                                 local(2026, 11, 4))  # fmt: skip
    custom = {"start": "2026-01-01T00:00:00+05:00", "end": "2026-02-01T00:00:00Z"}
    assert timeframe_bounds(custom, now, NY) == (local(2026, 1, 1), local(2026, 2, 1))


def series(call: Caller, empty: EmulatorBackend, stats: list[str], interval: str,
           **attrs: Any) -> dict[str, Any]:  # fmt: skip
    attrs.setdefault("timeframe", {"key": "last_30_days"})
    attrs.setdefault("conversion_metric_id", empty.store.metric_by_name["Placed Order"].id)
    attrs = {"statistics": stats, "interval": interval, **attrs}
    out = call("query_flow_series", body={"data": {"type": "flow-series-report",
                                                   "attributes": attrs}})  # fmt: skip
    assert out.data.type == "flow-series-report"
    document: dict[str, Any] = out.data.attributes
    return document


def test_flow_series_buckets_agree_with_the_values_report(
    empty: EmulatorBackend, ecall: Caller, setup: dict[str, Any]
) -> None:
    a, b, c = setup["seqs"]
    flow = {"$message": "fm1", "$flow": "F1"}
    day = datetime(2026, 10, 22, tzinfo=NY).timestamp()  # the account's timezone
    put(empty, "Received Email", a, day + 3600, **flow)
    put(empty, "Received Email", b, day + 7200, **flow)
    put(empty, "Opened Email", a, day + 4000, **flow)
    put(empty, "Opened Email", a, day + DAY + 10, **flow)  # the next day: a second open
    put(empty, "Received Email", c, day + 3 * DAY, **flow)
    put(empty, "Placed Order", a, day + DAY + 600, 40.0)  # 1 day after a's open: attributed
    frame = {"start": "2026-10-22T00:00:00", "end": "2026-10-27T00:00:00"}
    stats = ["delivered", "opens", "opens_unique", "open_rate", "conversion_value"]
    got = series(ecall, empty, stats, "daily", timeframe=frame)
    assert got["date_times"] == [f"2026-10-{d}T00:00:00-04:00" for d in range(22, 27)]
    (row,) = got["results"]
    assert row["groupings"] == {"flow_id": "F1", "flow_message_id": "fm1", "send_channel": "email"}
    assert row["statistics"] == {
        "delivered": [2, 0, 0, 1, 0],
        "opens": [1, 1, 0, 0, 0],
        "opens_unique": [1, 1, 0, 0, 0],
        "open_rate": [0.5, 0.0, 0.0, 0.0, 0.0],
        "conversion_value": [0.0, 40.0, 0.0, 0.0, 0.0],
    }
    (values,) = report(ecall, empty, ["delivered", "opens", "conversion_value"], kind="flow",
                       timeframe=frame)  # fmt: skip
    for name, total in values["statistics"].items():
        assert sum(row["statistics"][name]) == total
    weekly = series(ecall, empty, ["delivered"], "weekly", timeframe=frame)
    assert sum(weekly["results"][0]["statistics"]["delivered"]) == 3
    hourly = series(ecall, empty, ["delivered"], "hourly", timeframe=frame)
    assert len(hourly["date_times"]) == 5 * 24
    assert hourly["results"][0]["statistics"]["delivered"][1:3] == [1, 1]


def test_series_edges_follow_calendar_boundaries_in_the_account_timezone() -> None:
    def local(*args: int) -> float:
        return datetime(*args, tzinfo=NY).timestamp()

    # 2026-11-01 is 25 hours long in New York (daylight saving ends)
    days = series_edges("daily", local(2026, 10, 31, 15), local(2026, 11, 2), NY)
    assert days == [local(2026, 10, 31), local(2026, 11, 1), local(2026, 11, 2)]
    assert days[2] - days[1] == 25 * 3600
    weeks = series_edges("weekly", local(2026, 11, 4), local(2026, 11, 10), NY)
    assert weeks == [local(2026, 11, 2), local(2026, 11, 9), local(2026, 11, 16)]
    months = series_edges("monthly", local(2026, 11, 20), local(2027, 1, 2), NY)
    assert months == [local(2026, 11, 1), local(2026, 12, 1), local(2027, 1, 1), local(2027, 2, 1)]
    hours = series_edges("hourly", local(2026, 11, 4, 10, 30), local(2026, 11, 4, 12), NY)
    assert hours == [local(2026, 11, 4, 10), local(2026, 11, 4, 11), local(2026, 11, 4, 12)]


@pytest.mark.parametrize(
    ("interval", "timeframe", "words"),
    [
        (None, {"key": "last_7_days"}, "interval is required"),
        ("yearly", {"key": "last_7_days"}, "interval is required"),
        ("hourly", {"key": "last_30_days"}, "at most 7 days"),
        ("daily", {"key": "last_90_days"}, "at most 60 days"),
        ("monthly", {"key": "last_365_days"}, "at most 364 days"),
    ],
)
def test_series_intervals_are_bounded(
    empty: EmulatorBackend, ecall: Caller, interval: str | None, timeframe: Any, words: str
) -> None:
    with pytest.raises(InvalidError) as err:
        series(ecall, empty, ["opens"], interval, timeframe=timeframe)  # type: ignore[arg-type]
    assert err.value.pointer == "/data/attributes/interval"
    assert words in err.value.detail
