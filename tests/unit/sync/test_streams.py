"""Stream declarations: cursors exist in the catalogue, extractors read what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kbridge import catalog
from kbridge.api import decode_document
from kbridge.sync.streams import STREAMS, as_record, get_stream, select_streams

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
def test_each_stream_names_a_catalogued_operation_and_its_cursor_filter(stream: object) -> None:
    from kbridge.sync.streams import Stream

    assert isinstance(stream, Stream)
    op = catalog.get(stream.operation_id)
    queries = stream.report is not None or stream.aggregates is not None
    assert op.method == ("POST" if queries else "GET")
    if stream.cursor is not None:
        field = next(f for f in op.filters if f.name == stream.cursor.filter_field)
        wanted = "greater-or-equal" if stream.cursor.inclusive else "greater-than"
        assert wanted in field.single
        if stream.cursor.sort:
            assert stream.cursor.sort in op.sort
    for partition in stream.partitions:
        if partition.filter:
            assert partition.filter.split("(")[1].split(",")[0] in {f.name for f in op.filters}


def test_campaigns_and_their_messages_take_the_channel_and_owner_from_the_context() -> None:
    body = {
        "data": [
            {
                "type": "campaign",
                "id": "C1",
                "attributes": {"name": "Spring", "updated_at": "2025-01-01T00:00:00+00:00"},
                "relationships": {
                    "campaign-messages": {"data": [{"type": "campaign-message", "id": "M1"}]}
                },
            }
        ],
        "included": [
            {"type": "campaign-message", "id": "M1", "attributes": {"label": "Spring email"}}
        ],
    }
    doc = decode_document(body)
    campaigns = get_stream("campaigns")
    row = campaigns.extract(doc.records[0], "email")
    assert row[:3] == ("C1", "email", "Spring")
    child = campaigns.children[0]
    (message,) = doc.resources[0].related(child.relationship)
    child_row = child.extract(as_record(message), "C1")
    assert child_row[:3] == ("M1", "C1", "Spring email")


def test_profiles_keep_custom_properties_and_consent() -> None:
    profiles = get_stream("profiles")
    attrs = {
        "email": "a@example.com",
        "properties": {"brand_new_property": [1, 2]},
        "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
    }
    row = dict(
        zip(
            profiles.table.column_names[1:],
            profiles.extract({"type": "profile", "id": "P", "attributes": attrs}, None),
            strict=True,
        )
    )
    assert row["properties"] == '{"brand_new_property":[1,2]}'
    assert row["email_consent"] == "SUBSCRIBED"
    assert row["sms_consent"] is None


def test_selection_by_name_keeps_declaration_order_and_rejects_unknown_names() -> None:
    assert [s.name for s in select_streams("events, profiles")] == ["profiles", "events"]
    with pytest.raises(KeyError, match="unknown stream 'nope'"):
        select_streams(["profiles", "nope"])


def test_series_reports_become_one_row_per_group_and_day() -> None:
    from datetime import UTC, datetime

    from kbridge.sync.strategies.reports import report_rows as _report_rows

    flows = get_stream("flow_series_daily")
    assert flows.report is not None
    attributes = {
        "date_times": ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"],
        "results": [
            {
                "groupings": {"flow_id": "F", "flow_message_id": "M", "send_channel": "email"},
                "statistics": {"recipients": [3, 4.0], "conversion_value": [0, 12.5]},
            }
        ],
    }
    rows = _report_rows("A", flows.report, attributes, datetime(2026, 1, 1, tzinfo=UTC))
    assert len(rows) == 2
    named = [dict(zip(flows.table.column_names, r, strict=True)) for r in rows]
    assert [r["day"] for r in named] == attributes["date_times"]
    assert [r["recipients"] for r in named] == [3, 4]
    assert [r["conversion_value"] for r in named] == [0.0, 12.5]
    assert named[1]["opens"] is None
    assert {r["flow_message_id"] for r in named} == {"M"}


_SPEC = Path(__file__).resolve().parents[3] / ".." / "shared" / "klaviyo-openapi" / "stable.json"


@pytest.mark.parametrize(
    ("stream", "schema", "additional"),
    [
        ("profiles", "ProfileResponseObjectResource", {"subscriptions", "predictive_analytics"}),
        ("events", "EventResponseObjectResource", set()),
    ],
)
def test_tables_without_raw_have_a_column_for_every_attribute_of_the_spec(
    stream: str, schema: str, additional: set[str]
) -> None:
    """``profiles`` and ``events`` keep no copy of the attributes: every attribute the
    revision documents (and the additional fields asked for) needs a column, else only
    ``other_attributes`` would hold it."""
    spec = json.loads(_SPEC.read_text())
    documented = set(
        spec["components"]["schemas"][schema]["properties"]["attributes"]["properties"]
    )
    s = get_stream(stream)
    assert "raw" not in s.table.column_names
    assert s.from_json is not None
    held = s.from_json["other_attributes"].without
    assert documented | additional == held
    assert all(name in s.table.column_names for name in held)


def test_daily_aggregate_rows_keep_the_metric_id_and_follow_its_name() -> None:
    from kbridge.sync.strategies.aggregates import aggregate_day_rows

    answer = {
        "dates": ["2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"],
        "data": [
            {"dimensions": [], "measurements": {"count": [3, 0], "sum_value": [9.5, 0.0],
                                                "unique": [2, 0]}}
        ],
    }  # fmt: skip
    before = aggregate_day_rows("A", "M1", "Received SMS", answer)
    after = aggregate_day_rows("A", "M1", "Received Text Message", answer)
    # the key (account, day, metric id) is the same: a renamed metric updates its rows
    assert [r[:3] for r in before] == [r[:3] for r in after]
    assert before[0][3:] == ("Received SMS", 3, 9.5, 2)
    assert after[1][3:] == ("Received Text Message", 0, 0.0, 0)
    assert str(before[0][1]).startswith("2026-11-01")
