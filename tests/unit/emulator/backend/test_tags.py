from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query, Sort
from tests.unit.emulator.backend.conftest import Caller

pytestmark = pytest.mark.unit


def _tag(ecall: Caller, name: str, group: str | None = None) -> str:
    data: dict[str, Any] = {"type": "tag", "attributes": {"name": name}}
    if group is not None:
        data["relationships"] = {"tag-group": {"data": {"type": "tag-group", "id": group}}}
    out = ecall("create_tag", body={"data": data})
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data.id


def _group(ecall: Caller, name: str, *, exclusive: bool = False) -> str:
    attrs = {"name": name, "exclusive": exclusive}
    out = ecall("create_tag_group", body={"data": {"type": "tag-group", "attributes": attrs}})
    assert isinstance(out.data, Resource)
    return out.data.id


def _list(ecall: Caller, name: str = "L") -> str:
    out = ecall("create_list", body={"data": {"type": "list", "attributes": {"name": name}}})
    assert isinstance(out.data, Resource)
    return out.data.id


def _link(ecall: Caller, op: str, tag: str, rtype: str, *ids: str) -> Any:
    return ecall(op, body={"data": [{"type": rtype, "id": i} for i in ids]}, id=tag)


def _ids(out: Any) -> list[str]:
    items = out.data.items if isinstance(out.data, Page) else out.data
    return [r.id for r in items]


def test_default_group_holds_new_tags_and_cannot_be_deleted(ecall: Caller) -> None:
    groups = ecall("get_tag_groups").data
    assert isinstance(groups, Page)
    (default,) = [g for g in groups.items if g.attributes["default"]]
    assert default.attributes == {"name": "Default", "exclusive": False, "default": True}
    tid = _tag(ecall, "VIP")
    assert ecall("get_tag", id=tid).data.relationships["tag-group"] == ("tag-group", default.id)  # type: ignore[union-attr]
    with pytest.raises(InvalidError):
        ecall("delete_tag_group", id=default.id)


def test_tag_crud(ecall: Caller) -> None:
    tid = _tag(ecall, "Old")
    body = {"data": {"type": "tag", "id": tid, "attributes": {"name": "New"}}}
    assert ecall("update_tag", body=body, id=tid).status == 204
    got = ecall("get_tag", Query(include=("tag-group",)), id=tid)
    assert isinstance(got.data, Resource)
    assert got.data.attributes == {"name": "New"}
    assert [r.type for r in got.included] == ["tag-group"]
    assert ecall("delete_tag", id=tid).status == 204
    with pytest.raises(NotFoundError):
        ecall("get_tag", id=tid)
    with pytest.raises(InvalidError) as err:
        _tag(ecall, "x", group="no-such-group")
    assert err.value.pointer == "/data/relationships/tag-group/data/id"
    with pytest.raises(InvalidError) as err:
        _tag(ecall, "   ")
    assert err.value.pointer == "/data/attributes/name"


def test_listing_filters_and_sorts_by_name(ecall: Caller) -> None:
    b, a = _tag(ecall, "beta-sale"), _tag(ecall, "alpha-sale")
    c = _tag(ecall, "other")
    assert _ids(ecall("get_tags", Query(sort=Sort("name")))) == [a, b, c]
    q = Query(conditions=(Condition("ends-with", "name", "-sale"),), sort=Sort("name", True))
    assert _ids(ecall("get_tags", q)) == [b, a]


def test_tag_lists_both_ways(ecall: Caller) -> None:
    lid, other = _list(ecall), _list(ecall, "Other")
    t1, t2 = _tag(ecall, "one"), _tag(ecall, "two")
    assert _link(ecall, "tag_lists", t1, "list", lid, other).status == 204
    _link(ecall, "tag_lists", t2, "list", lid)
    _link(ecall, "tag_lists", t2, "list", lid)  # idempotent
    assert _ids(ecall("get_list_ids_for_tag", id=t1)) == [lid, other]
    assert _ids(ecall("get_tags_for_list", id=lid)) == [t1, t2]
    ids_only = ecall("get_tag_ids_for_list", id=lid)
    assert ids_only.identifiers_only
    assert _ids(ids_only) == [t1, t2]
    _link(ecall, "remove_tag_from_lists", t1, "list", lid)
    assert _ids(ecall("get_tags_for_list", id=lid)) == [t2]
    # a deleted list disappears from its tags
    ecall("delete_list", id=other)
    assert _ids(ecall("get_list_ids_for_tag", id=t1)) == []
    with pytest.raises(NotFoundError):
        ecall("get_tags_for_list", id=other)
    with pytest.raises(InvalidError) as err:
        _link(ecall, "tag_lists", t1, "list", lid, "NOPE")
    assert err.value.pointer == "/data/1/id"


def test_exclusive_group_allows_one_tag_per_object(ecall: Caller) -> None:
    season = _group(ecall, "Season", exclusive=True)
    summer, winter = _tag(ecall, "Summer", season), _tag(ecall, "Winter", season)
    lid = _list(ecall)
    _link(ecall, "tag_lists", summer, "list", lid)
    with pytest.raises(InvalidError) as err:
        _link(ecall, "tag_lists", winter, "list", lid)
    assert "'Summer'" in err.value.detail
    free = _tag(ecall, "Anything")  # the Default group is not exclusive
    _link(ecall, "tag_lists", free, "list", lid)
    assert _ids(ecall("get_tags_for_list", id=lid)) == [summer, free]


def test_deleting_a_group_deletes_its_tags(ecall: Caller) -> None:
    gid = _group(ecall, "Temp")
    tid = _tag(ecall, "t", gid)
    assert _ids(ecall("get_tags_for_tag_group", id=gid)) == [tid]
    body = {"data": {"type": "tag-group", "id": gid, "attributes": {"name": "Renamed"}}}
    assert ecall("update_tag_group", body=body, id=gid).status == 204
    assert ecall("get_tag_group", id=gid).data.attributes["name"] == "Renamed"  # type: ignore[union-attr]
    ecall("delete_tag_group", id=gid)
    with pytest.raises(NotFoundError):
        ecall("get_tag", id=tid)


def test_flows_segments_and_campaigns_are_checked(ecall: Caller, empty: EmulatorBackend) -> None:
    tid = _tag(ecall, "t")
    for op, rtype in (("tag_flows", "flow"), ("tag_segments", "segment"),
                      ("tag_campaigns", "campaign")):  # fmt: skip
        with pytest.raises(InvalidError):
            _link(ecall, op, tid, rtype, "NOPE")
    metric = empty.store.metric_by_name["Placed Order"].id
    definition = {
        "triggers": [{"type": "metric", "id": metric}],
        "entry_action_id": None,
        "actions": [],
    }
    flow = ecall("create_flow", body={"data": {"type": "flow", "attributes": {
        "name": "F", "definition": definition}}}).data  # fmt: skip
    assert isinstance(flow, Resource)
    _link(ecall, "tag_flows", tid, "flow", flow.id)
    assert _ids(ecall("get_tags_for_flow", id=flow.id)) == [tid]
    assert _ids(ecall("get_flow_ids_for_tag", id=tid)) == [flow.id]
    got = ecall("get_flow", Query(include=("tags",)), id=flow.id)
    assert isinstance(got.data, Resource)
    assert got.data.relationships["tags"] == [("tag", tid)]
    assert [r.id for r in got.included] == [tid]
    ecall("delete_flow", id=flow.id)
    assert _ids(ecall("get_flow_ids_for_tag", id=tid)) == []


def test_campaign_tags(call: Caller) -> None:
    q = Query(conditions=(Condition("equals", "messages.channel", "email"),))
    campaigns = call("get_campaigns", q).data
    assert isinstance(campaigns, Page)
    cid = campaigns.items[0].id
    tid = _tag(call, "Promo-2026")
    _link(call, "tag_campaigns", tid, "campaign", cid)
    assert _ids(call("get_tag_ids_for_campaign", id=cid)) == [tid]
    assert _ids(call("get_campaign_ids_for_tag", id=tid)) == [cid]
    _link(call, "remove_tag_from_campaigns", tid, "campaign", cid)
    assert _ids(call("get_tags_for_campaign", id=cid)) == []


def test_an_object_carries_at_most_100_tags(ecall: Caller) -> None:
    lid = _list(ecall)
    for n in range(100):
        _link(ecall, "tag_lists", _tag(ecall, f"t{n}"), "list", lid)
    extra = _tag(ecall, "one too many")
    with pytest.raises(InvalidError) as err:
        _link(ecall, "tag_lists", extra, "list", lid)
    assert "100 tags" in err.value.detail
    assert len(_ids(ecall("get_tag_ids_for_list", id=lid))) == 100
