"""One strategy per stream kind, chosen by what a stream declares, never by its name."""

from __future__ import annotations

import dataclasses

import pytest

from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.sync.context import Context, Writer
from kbridge.sync.options import SyncOptions
from kbridge.sync.strategies import (
    AccountPage,
    Children,
    Incremental,
    Reports,
    Windowed,
    strategy_for,
)
from kbridge.sync.strategies.base import query_params
from kbridge.sync.streams import STREAMS, get_stream
from kbridge.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("profiles", Incremental),
        ("lists", Incremental),
        ("accounts", AccountPage),
        ("events", Windowed),
        ("list_memberships", Children),
        ("campaign_values_daily", Reports),
        ("flow_series_daily", Reports),
    ],
)
def test_each_kind_of_stream_gets_its_strategy(name: str, kind: type) -> None:
    assert isinstance(strategy_for(get_stream(name)), kind)


def test_every_stream_has_exactly_the_strategy_its_declaration_names() -> None:
    for stream in STREAMS:
        chosen = strategy_for(stream)
        assert isinstance(chosen, Children) == (stream.parent is not None), stream.name
        assert isinstance(chosen, Windowed) == (stream.slice_days is not None), stream.name
        assert isinstance(chosen, Reports) == (stream.report is not None), stream.name


@pytest.mark.parametrize("name", ["list_memberships", "events", "campaign_values_daily"])
def test_a_renamed_stream_keeps_its_strategy(name: str) -> None:
    stream = get_stream(name)
    renamed = dataclasses.replace(stream, name="something_new")
    assert type(strategy_for(renamed)) is type(strategy_for(stream))


@pytest.mark.parametrize("predictive", [False, True])
def test_predictive_fields_are_asked_only_of_streams_that_declare_them(predictive: bool) -> None:
    wh = DuckDBWarehouse(":memory:")
    clock = ManualClock()
    client = AsyncClient("pk_" + "0" * 34, base_url="http://127.0.0.1:9", clock=clock)
    ctx = Context(
        client, Writer(wh), "acct", SyncOptions(wh, predictive_analytics=predictive), clock
    )

    profiles = query_params(ctx, get_stream("profiles"), "greater-than(updated,x)")
    events = query_params(ctx, get_stream("events"), None)

    fields = "subscriptions,predictive_analytics" if predictive else "subscriptions"
    assert profiles["additional-fields[profile]"] == fields
    assert profiles["filter"] == "greater-than(updated,x)"
    assert "additional-fields[profile]" not in events
    assert "filter" not in events
