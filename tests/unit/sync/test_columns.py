"""Tables declared once: the DDL, the Python extractor and the in-database paths all
come from one list of fields, so a column inserted anywhere lands in all three."""

from __future__ import annotations

from typing import Any

import pytest

from kbridge.sync.columns import CONTEXT, ID, OTHERS, RAW, RUN, Field, at, attr, custom, rel, spec
from kbridge.sync.streams import STREAMS, Stream, get_stream
from kbridge.sync.tables import EVENTS, PROFILES
from kbridge.warehouse import FromJson
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit

EVENT: dict[str, Any] = {
    "type": "event",
    "id": "E1",
    "attributes": {
        "datetime": "2026-01-02T03:04:05+00:00",
        "timestamp": 1767323045.7,
        "uuid": "u-1",
        "event_properties": {"value": 5},
        "brand_new": [1],
    },
    "relationships": {
        "metric": {"data": {"type": "metric", "id": "M1"}},
        "profile": {"data": {"type": "profile", "id": 42}},
    },
}


def named(table_spec: Any, record: dict[str, Any], context: str | None = None) -> dict[str, Any]:
    names = [n for n in table_spec.column_names[1:] if n != "_kbridge_run"]
    return dict(zip(names, table_spec.extract(record, context), strict=True))


def test_the_events_extractor_reads_every_column_from_its_declared_place() -> None:
    assert named(EVENTS, EVENT) == {
        "id": "E1",
        "metric_id": "M1",
        "profile_id": "42",  # ids as text, whatever the JSON type
        "datetime": "2026-01-02T03:04:05+00:00",
        "timestamp": 1767323045,  # truncated, as the in-database reader does
        "uuid": "u-1",
        "event_properties": '{"value":5}',
        "other_attributes": '{"brand_new":[1]}',
    }


def test_a_column_inserted_in_the_middle_lands_in_the_ddl_the_extractor_and_the_paths() -> None:
    wider = EVENTS.inserted(
        2, Field("metric_type", source=at("relationships", "metric", "data", "type"))
    )
    assert wider.column_names[:5] == ("account_id", "id", "metric_id", "metric_type", "profile_id")
    row = named(wider, EVENT)
    assert row == {**named(EVENTS, EVENT), "metric_type": "metric"}
    assert wider.extract(EVENT, None)[2] == "metric"
    assert wider.from_json is not None
    assert list(wider.from_json) == list(wider.column_names[1:])
    assert wider.from_json["metric_type"] == FromJson(("relationships", "metric", "data", "type"))
    # an attribute column of its own leaves other_attributes
    both = wider.inserted(5, Field("brand_new", "json", attr("brand_new")))
    assert named(both, EVENT)["brand_new"] == "[1]"
    assert named(both, EVENT)["other_attributes"] == "{}"
    assert both.from_json is not None
    assert "brand_new" in both.from_json["other_attributes"].without


def test_keys_and_nullability_come_from_the_fields() -> None:
    t = spec(
        "pairs",
        [
            Field("parent_id", source=CONTEXT, key=True),
            Field("child_id", source=ID, key=True),
            Field("note", source=attr("note"), nullable=False),
            Field("raw", "json", RAW),
            Field("_kbridge_run", source=RUN),
        ],
    )
    assert t.table.primary_key == ("account_id", "parent_id", "child_id")
    assert [c.nullable for c in t.table.columns] == [False, False, False, False, True, True]
    assert t.extract({"id": 7, "attributes": {"note": "n"}}, "P") == ("P", "7", "n", '{"note":"n"}')
    assert t.from_json is None  # the context is not in the record: Python reads this table
    wh = DuckDBWarehouse(":memory:")
    try:
        wh.migrate([t.table])
        found = wh.query(
            "SELECT column_name, is_nullable FROM information_schema.columns"
            " WHERE table_name = 'pairs' ORDER BY ordinal_position"
        )
    finally:
        wh.close()
    assert found == [
        ("account_id", "NO"),
        ("parent_id", "NO"),
        ("child_id", "NO"),
        ("note", "NO"),
        ("raw", "YES"),
        ("_kbridge_run", "YES"),
    ]


def test_odd_shapes_give_nulls_not_errors() -> None:
    t = spec(
        "odd",
        [
            Field("id", source=ID, key=True),
            Field("deep", source=attr("a", "b", "c", stringify=True)),
            Field("owner", source=rel("owner", or_context=True)),
            Field("many", source=rel("many")),
            Field("contact", "json", attr("contact", default="{}")),
            Field("rest", "json", OTHERS),
        ],
    )
    record = {
        "id": "1",
        "attributes": {"a": {"b": ["not an object"]}, "x": 1},
        "relationships": {"owner": None, "many": {"data": [{"id": 3}, {"id": 4}]}},
    }
    assert t.extract(record, "ctx") == (
        "1",
        None,
        "ctx",
        "3",
        "{}",
        '{"x":1}',  # "a" has a column of its own
    )
    assert t.extract({"id": "2", "attributes": None}, None) == ("2", None, None, None, "{}", "{}")


def test_a_column_python_alone_can_read_keeps_the_table_out_of_the_database() -> None:
    t = spec("c", [Field("id", source=ID, key=True), Field("n", "bigint", custom(lambda r, _: 1))])
    assert t.extract({"id": "x"}, None) == ("x", 1)
    assert t.from_json is None
    with pytest.raises(ValueError, match="no JSON path"):
        Stream("c", "get_tags", t, in_database=True)


def test_the_run_column_comes_last_or_not_at_all() -> None:
    with pytest.raises(ValueError, match="run column comes last"):
        spec("r", [Field("_kbridge_run", source=RUN), Field("id", source=ID, key=True)])


@pytest.mark.parametrize(
    "stream", [s for s in STREAMS if s.report is not None], ids=lambda s: s.name
)
def test_report_tables_are_not_read_from_resources(stream: Stream) -> None:
    with pytest.raises(TypeError):
        stream.extract({"id": "1"}, None)
    assert stream.from_json is None


def test_streams_read_in_the_database_are_the_wide_numerous_ones() -> None:
    assert [s.name for s in STREAMS if s.from_json is not None] == ["profiles", "events"]
    assert get_stream("profiles").spec is PROFILES
