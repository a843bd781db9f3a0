"""Ids are what people copy: a table never cuts one off, however many columns it has."""

from __future__ import annotations

import io

import pytest

from kbridge.analytics import Frame
from kbridge.api.jsonapi import Resource
from kbridge.cli.analytics import show
from kbridge.cli.output import emit

pytestmark = pytest.mark.unit


def _resource(n: int) -> Resource:
    return Resource(
        type="profile",
        id=f"01HZZQ8W6V7J3K4M5N6P7Q8R{n:02d}",
        attributes={
            "email": f"someone.with.a.long.address.{n}@example.com",
            "first_name": "Firstname",
            "last_name": "Lastname-Doubled",
            "organization": "An Organisation With A Long Name",
            "title": "Title",
            "locale": "en-US",
        },
    )


@pytest.mark.parametrize("width", [60, 80, 120])
def test_resource_tables_keep_ids_whole(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    rows = [_resource(n) for n in range(3)]
    emit(rows, "table", stream=out)
    for r in rows:
        assert r.id is not None
        assert r.id in out.getvalue(), out.getvalue()


@pytest.mark.parametrize("width", [60, 100])
def test_analytics_tables_keep_ids_whole(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    frame = Frame.of(
        ("source", "parent_id", "name", "message_id", "revenue"),
        [("campaign", "01HCAMPAIGN000000000000001", "Spring sale " * 4,
          "01HMESSAGE0000000000000001", 1.5)],
    )  # fmt: skip
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout", buf)
    show([frame], "table")
    assert "01HCAMPAIGN000000000000001" in buf.getvalue(), buf.getvalue()
    assert "01HMESSAGE0000000000000001" in buf.getvalue()


@pytest.mark.parametrize("width", [80, 100])
def test_the_demo_summary_names_every_stream_whole(width: int) -> None:
    # stream names are what people type into --streams: an 80-column log must show them whole
    from rich.console import Console

    from kbridge.cli.demo import summary_table
    from kbridge.sync import STREAMS, StreamResult, SyncResult

    result = SyncResult("ACCOUNT")
    for stream in STREAMS:
        result.streams[stream.name] = StreamResult(stream.name, records=123_456, pages=1_234)
    out = io.StringIO()
    Console(file=out, width=width).print(summary_table(result))
    for stream in STREAMS:
        assert stream.name in out.getvalue(), out.getvalue()
