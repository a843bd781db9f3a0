from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, event_body, profile_body

pytestmark = pytest.mark.unit


def _profile(ecall: Caller, **attrs: Any) -> str:
    out = ecall("create_profile", body=profile_body(**attrs)).data
    assert isinstance(out, Resource)
    return out.id


def _list(ecall: Caller, name: str = "Newsletter") -> str:
    body = {"data": {"type": "list", "attributes": {"name": name}}}
    out = ecall("create_list", body=body)
    assert out.status == 201
    assert isinstance(out.data, Resource)
    assert out.data.attributes["opt_in_process"] == "single_opt_in"
    return out.data.id


def _ids(out: Any) -> list[str]:
    assert isinstance(out.data, Page)
    return [r.id for r in out.data.items]


def test_list_crud(ecall: Caller) -> None:
    lid = _list(ecall)
    body = {"data": {"type": "list", "id": lid, "attributes": {"name": "Renamed"}}}
    assert ecall("update_list", body=body, id=lid).data.attributes["name"] == "Renamed"  # type: ignore[union-attr]
    assert lid in _ids(ecall("get_lists"))
    assert ecall("delete_list", id=lid).status == 204
    with pytest.raises(NotFoundError):
        ecall("get_list", id=lid)


def test_create_list_rejects_bad_opt_in(ecall: Caller) -> None:
    body = {"data": {"type": "list", "attributes": {"name": "x", "opt_in_process": "maybe"}}}
    with pytest.raises(InvalidError) as err:
        ecall("create_list", body=body)
    assert err.value.pointer == "/data/attributes/opt_in_process"


def test_membership_add_remove_and_joined_group_at(ecall: Caller, clock: SimClock) -> None:
    lid = _list(ecall)
    a, b = _profile(ecall, email="a@example.com"), _profile(ecall, email="b@example.com")
    link = {"data": [{"type": "profile", "id": a}]}
    assert ecall("add_profiles_to_list", body=link, id=lid).status == 204
    clock.advance(3600)
    ecall("add_profiles_to_list", body={"data": [{"type": "profile", "id": b}]}, id=lid)
    out = ecall("get_profiles_for_list", id=lid)
    assert _ids(out) == [a, b]
    assert isinstance(out.data, Page)
    joined = [r.attributes["joined_group_at"] for r in out.data.items]
    assert joined[0] < joined[1]
    q = Query(additional_fields={"list": ("profile_count",)})
    assert ecall("get_list", q, id=lid).data.attributes["profile_count"] == 2  # type: ignore[union-attr]
    ids_only = ecall("get_profile_ids_for_list", id=lid)
    assert ids_only.identifiers_only
    assert _ids(ids_only) == [a, b]
    ecall("remove_profiles_from_list", body=link, id=lid)
    assert _ids(ecall("get_profiles_for_list", id=lid)) == [b]
    # membership is not consent
    got = ecall("get_profile", Query(additional_fields={"profile": ("subscriptions",)}), id=b)
    assert isinstance(got.data, Resource)
    assert (
        got.data.attributes["subscriptions"]["email"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
    )


def test_get_profile_includes_lists(ecall: Caller) -> None:
    lid = _list(ecall)
    a = _profile(ecall, email="a@example.com")
    ecall("add_profiles_to_list", body={"data": [{"type": "profile", "id": a}]}, id=lid)
    out = ecall("get_profile", Query(include=("lists",)), id=a)
    assert isinstance(out.data, Resource)
    assert out.data.relationships["lists"] == [("list", lid)]
    assert [r.id for r in out.included] == [lid]


def _segment(ecall: Caller, *groups: list[dict[str, Any]]) -> str:
    definition = {"condition_groups": [{"conditions": g} for g in groups]}
    body = {"data": {"type": "segment", "attributes": {"name": "S", "definition": definition}}}
    out = ecall("create_segment", body=body)
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data.id


def test_profile_property_segment(ecall: Caller) -> None:
    gold = _profile(ecall, email="g@example.com", properties={"tier": "gold", "points": 700})
    _profile(ecall, email="s@example.com", properties={"tier": "silver", "points": 900})
    sid = _segment(
        ecall,
        [
            {
                "type": "profile-property",
                "property": "properties['tier']",
                "filter": {"type": "string", "operator": "equals", "value": "gold"},
            }
        ],
    )
    assert _ids(ecall("get_profiles_for_segment", id=sid)) == [gold]
    high = _segment(
        ecall,
        [
            {
                "type": "profile-property",
                "property": "properties['points']",
                "filter": {"type": "numeric", "operator": "greater-than", "value": 800},
            }
        ],
    )
    assert len(_ids(ecall("get_profiles_for_segment", id=high))) == 1
    assert _ids(ecall("get_profiles_for_segment", id=high)) != [gold]


def test_metric_count_segment_groups_are_anded(ecall: Caller, empty: EmulatorBackend) -> None:
    buyer = _profile(ecall, email="buyer@example.com")
    _profile(ecall, email="browser@example.com")
    for k in range(3):
        ecall(
            "create_event",
            body=event_body(
                "Placed Order", {"email": "buyer@example.com"}, value=10.0, unique_id=f"o{k}"
            ),
        )
    ecall("create_event", body=event_body("Viewed Product", {"email": "browser@example.com"}))
    metric_id = empty.store.metric_by_name["Placed Order"].id
    count = {
        "type": "profile-metric",
        "metric_id": metric_id,
        "measurement": "count",
        "measurement_filter": {"type": "numeric", "operator": "greater-than-or-equal", "value": 3},
        "timeframe_filter": {
            "type": "date",
            "operator": "in-the-last",
            "unit": "day",
            "quantity": 30,
        },
    }
    sid = _segment(ecall, [count])
    assert _ids(ecall("get_profiles_for_segment", id=sid)) == [buyer]
    # a second group that nobody satisfies empties the segment (groups are ANDed)
    nobody = {
        "type": "profile-property",
        "property": "first_name",
        "filter": {"type": "existence", "operator": "is-set"},
    }
    both = _segment(ecall, [count], [nobody])
    assert _ids(ecall("get_profiles_for_segment", id=both)) == []
    # ... while the same condition ORed within one group keeps the buyer
    either = _segment(ecall, [count, nobody])
    assert _ids(ecall("get_profiles_for_segment", id=either)) == [buyer]


def test_segment_membership_follows_new_events(ecall: Caller, empty: EmulatorBackend) -> None:
    _profile(ecall, email="late@example.com")
    ecall("create_event", body=event_body("Placed Order", {"email": "late@example.com"}))
    metric_id = empty.store.metric_by_name["Placed Order"].id
    sid = _segment(
        ecall,
        [
            {
                "type": "profile-metric",
                "metric_id": metric_id,
                "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": "equals", "value": 2},
                "timeframe_filter": {"type": "date", "operator": "alltime"},
            }
        ],
    )
    assert _ids(ecall("get_profiles_for_segment", id=sid)) == []
    ecall("create_event", body=event_body("Placed Order", {"email": "late@example.com"}))
    assert len(_ids(ecall("get_profiles_for_segment", id=sid))) == 1


def test_unsupported_condition_type_is_400_naming_it(ecall: Caller) -> None:
    definition = {"condition_groups": [{"conditions": [{"type": "profile-postal-code-distance"}]}]}
    body = {"data": {"type": "segment", "attributes": {"name": "x", "definition": definition}}}
    with pytest.raises(InvalidError) as err:
        ecall("create_segment", body=body)
    assert "profile-postal-code-distance" in err.value.detail
    assert err.value.pointer == "/data/attributes/definition/condition_groups/0/conditions/0/type"


def test_generated_segments_evaluate(call: Caller, backend: EmulatorBackend) -> None:
    segs = call("get_segments", Query(conditions=(Condition("equals", "is_starred", True),)))
    assert isinstance(segs.data, Page)
    assert len(segs.data.items) == 1
    subscribers = next(s for s in backend.store.segments.values() if s.name == "Email subscribers")
    ids = set(_ids(call("get_profile_ids_for_segment", Query(page_size=100), id=subscribers.id)))
    expected = {
        p.id
        for p in backend.store.profiles
        if p.email_consent == "SUBSCRIBED" and not p.email_suppression
    }
    assert ids <= expected
    assert len(ids) == min(100, len(expected))


def test_relative_timeframes_follow_the_simulated_clock(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    _profile(ecall, email="recent@example.com")
    ecall("create_event", body=event_body("Opened Email", {"email": "recent@example.com"}))
    metric_id = empty.store.metric_by_name["Opened Email"].id
    last_day = {
        "type": "profile-metric",
        "metric_id": metric_id,
        "measurement": "count",
        "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
        "timeframe_filter": {
            "type": "date",
            "operator": "in-the-last",
            "unit": "day",
            "quantity": 1,
        },
    }
    sid = _segment(ecall, [last_day])
    assert len(_ids(ecall("get_profiles_for_segment", id=sid))) == 1
    clock.advance(2 * 86400)
    assert _ids(ecall("get_profiles_for_segment", id=sid)) == []
