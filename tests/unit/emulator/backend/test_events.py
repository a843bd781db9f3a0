from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query, Sort
from tests.unit.emulator.backend.conftest import Caller, event_body

pytestmark = pytest.mark.unit


def _walk(call: Caller, q: Query) -> list[Resource]:
    out: list[Resource] = []
    cursor = None
    while True:
        page = call(
            "get_events",
            Query(conditions=q.conditions, sort=q.sort, page_size=q.page_size, cursor=cursor),
        ).data
        assert isinstance(page, Page)
        out += page.items
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_metric_filter_walks_exactly_the_metrics_events(
    call: Caller, backend: EmulatorBackend
) -> None:
    store = backend.store
    metric = store.metric_by_name["Viewed Product"]
    got = _walk(
        call, Query(conditions=(Condition("equals", "metric_id", metric.id),), page_size=97)
    )
    ev = store.events
    expected = sorted(
        (i for i in range(len(ev)) if ev.metric[i] == metric.index), key=lambda i: (ev.ts[i], i)
    )
    assert [r.id for r in got] == [store.event_id(i) for i in expected]
    assert all(r.relationships["metric"] == ("metric", metric.id) for r in got)


def test_profile_filter_datetime_range_and_descending_sort(
    call: Caller, backend: EmulatorBackend
) -> None:
    store = backend.store
    ev = store.events
    busiest = max(store.events_by_profile, key=lambda p: len(store.events_by_profile[p]))
    pid = store.profiles[busiest].id
    times = sorted(ev.ts[i] for i in store.events_by_profile[busiest])
    lo, hi = times[len(times) // 4], times[3 * len(times) // 4]
    conds = (
        Condition("equals", "profile_id", pid),
        Condition("greater-or-equal", "datetime", datetime.fromtimestamp(lo, UTC)),
        Condition("less-than", "datetime", datetime.fromtimestamp(hi, UTC)),
    )
    got = _walk(call, Query(conditions=conds, sort=Sort("datetime", True), page_size=3))
    stamps = [r.attributes["timestamp"] for r in got]
    assert stamps == sorted(stamps, reverse=True)
    assert len(got) == sum(1 for t in times if lo <= t < hi)
    assert all(r.relationships["profile"] == ("profile", pid) for r in got)


def test_include_metric_and_profile(call: Caller) -> None:
    out = call("get_events", Query(page_size=5, include=("metric", "profile")))
    assert isinstance(out.data, Page)
    types = {r.type for r in out.included}
    assert types == {"metric", "profile"}
    first = out.data.items[0]
    assert call("get_event", id=first.id).data == first
    with pytest.raises(NotFoundError):
        call("get_event", id=first.id[:-1] + ("0" if first.id[-1] != "0" else "1"))


def test_create_event_creates_profile_and_metric_and_dedups(
    ecall: Caller, empty: EmulatorBackend
) -> None:
    body = event_body(
        "Signed Up",
        {"email": "new@example.com"},
        unique_id="u1",
        value=5,
        time="2026-10-01T00:00:00Z",
        properties={"plan": "pro"},
    )
    assert ecall("create_event", body=body).status == 202
    assert ecall("create_event", body=body).status == 202  # the repeat is accepted and dropped
    store = empty.store
    metric = store.metric_by_name["Signed Up"]
    page = ecall(
        "get_events", Query(conditions=(Condition("equals", "metric_id", metric.id),))
    ).data
    assert isinstance(page, Page)
    assert len(page.items) == 1
    attrs = page.items[0].attributes
    assert attrs["datetime"] == "2026-10-01T00:00:00+00:00"
    assert attrs["event_properties"]["plan"] == "pro"
    profile = store.find_identifier("email", "new@example.com")
    assert profile is not None
    assert page.items[0].relationships["profile"] == ("profile", profile.id)


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"time": "1999-01-01T00:00:00Z"}, "/data/attributes/time"),
        ({"value": "ten"}, "/data/attributes/value"),
        ({"properties": None}, "/data/attributes/properties"),
    ],
)
def test_create_event_validation(ecall: Caller, change: dict[str, object], pointer: str) -> None:
    body = event_body("X", {"email": "v@example.com"})
    body["data"]["attributes"].update(change)
    with pytest.raises(InvalidError) as err:
        ecall("create_event", body=body)
    assert err.value.pointer == pointer


def test_cursor_from_another_operation_is_refused(call: Caller) -> None:
    page = call("get_profiles", Query(page_size=5)).data
    assert isinstance(page, Page)
    with pytest.raises(InvalidError) as err:
        call("get_events", Query(cursor=page.next_cursor))
    assert err.value.parameter == "page[cursor]"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(min_value=1, max_value=40),
    inserts=st.lists(st.tuples(st.integers(0, 6), st.integers(-(10**7), 10**7)), max_size=8),
    descending=st.booleans(),
)
def test_paging_is_stable_while_events_arrive(
    ecall: Caller,
    empty: EmulatorBackend,
    size: int,
    inserts: list[tuple[int, int]],
    descending: bool,
) -> None:
    """Events inserted mid-walk never cause a skip or a repeat of those that existed."""
    base = 1_780_000_000
    existing = {_send(ecall, empty, f"seed{k}", base + (k * 7919) % 500) for k in range(60)} - {
        None
    }
    q = Query(sort=Sort("datetime", descending), page_size=size)
    seen: list[str] = []
    cursor = None
    pending = list(inserts)
    step = 0
    while True:
        page = ecall("get_events", Query(sort=q.sort, page_size=size, cursor=cursor)).data
        assert isinstance(page, Page)
        seen += [r.id for r in page.items]
        while pending and pending[0][0] == step:
            _, offset = pending.pop(0)
            _send(ecall, empty, f"late{len(seen)}-{offset}", base + offset)
        step += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


def _send(ecall: Caller, empty: EmulatorBackend, uid: str, ts: int) -> str | None:
    when = datetime.fromtimestamp(ts, UTC).isoformat()
    ecall(
        "create_event",
        body=event_body("Tick", {"email": "t@example.com"}, unique_id=uid, time=when),
    )
    i = empty.store.unique_ids.get((empty.store.metric_by_name["Tick"].index, 0, uid))
    return None if i is None else empty.store.event_id(i)


def test_an_event_updates_its_existing_profile(ecall: Caller, empty: EmulatorBackend) -> None:
    ecall("create_event", body=event_body("Seen", {"email": "u@example.com"}))
    profile = {"email": "u@example.com", "first_name": "Una", "properties": {"plan": "pro"}}
    ecall("create_event", body=event_body("Seen", profile))
    p = empty.store.find_identifier("email", "u@example.com")
    assert p is not None
    assert (p.first_name, p.properties) == ("Una", {"plan": "pro"})
    assert len(empty.store.profiles) == 1


@pytest.mark.parametrize("descending", [False, True])
def test_walking_back_with_prev_cursors_retraces_the_pages(call: Caller, descending: bool) -> None:
    sort = Sort("datetime", descending)
    pages: list[list[str]] = []
    page = call("get_events", Query(sort=sort, page_size=250)).data
    assert isinstance(page, Page)
    while True:
        pages.append([r.id for r in page.items])
        if page.next_cursor is None:
            break
        page = call("get_events", Query(sort=sort, page_size=250, cursor=page.next_cursor)).data
        assert isinstance(page, Page)
    back = [[r.id for r in page.items]]
    while page.prev_cursor is not None:
        page = call("get_events", Query(sort=sort, page_size=250, cursor=page.prev_cursor)).data
        assert isinstance(page, Page)
        back.append([r.id for r in page.items])
    assert len(pages) > 3
    assert back[::-1] == pages
