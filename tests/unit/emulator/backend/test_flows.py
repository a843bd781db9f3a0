from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query, Sort
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, event_body, profile_body

pytestmark = pytest.mark.unit

HOUR = 3600.0


def _email(temp: str, subject: str, nxt: str | None = None, **message: Any) -> dict[str, Any]:
    return {
        "temporary_id": temp,
        "type": "send-email",
        "links": {"next": nxt},
        "data": {"message": {"subject_line": subject, "name": subject, **message}},
    }


def _delay(temp: str, nxt: str | None, value: int, unit: str = "hours") -> dict[str, Any]:
    return {
        "temporary_id": temp,
        "type": "time-delay",
        "links": {"next": nxt},
        "data": {"unit": unit, "value": value},
    }


def _definition(trigger: dict[str, Any], *actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "triggers": [trigger],
        "entry_action_id": actions[0]["temporary_id"] if actions else None,
        "actions": list(actions),
    }


def _create(ecall: Caller, definition: dict[str, Any], name: str = "F") -> Resource:
    body = {"data": {"type": "flow", "attributes": {"name": name, "definition": definition}}}
    out = ecall("create_flow", body=body)
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data


def _metric_id(b: EmulatorBackend, name: str) -> str:
    return b.store.metric_by_name[name].id


def _set_status(ecall: Caller, fid: str, status: str) -> Resource:
    body = {"data": {"type": "flow", "id": fid, "attributes": {"status": status}}}
    out = ecall("update_flow", body=body, id=fid)
    assert isinstance(out.data, Resource)
    return out.data


def _profile(ecall: Caller, **attrs: Any) -> str:
    out = ecall("create_profile", body=profile_body(**attrs)).data
    assert isinstance(out, Resource)
    return out.id


def _flow_emails(b: EmulatorBackend) -> list[tuple[float, str, dict[str, Any]]]:
    """(time, profile id, properties) of every Received Email a flow produced."""
    store = b.store
    m = store.metric_by_name["Received Email"]
    out = []
    for i in store.events_by_metric.get(m.index, ()):
        props, _ = store.events.extra.get(i, ({}, None))
        if "$flow" in props:
            out.append((store.events.ts[i], store.profiles[store.events.profile[i]].id, props))
    return out


def _order(ecall: Caller, email: str) -> None:
    ecall("create_event", body=event_body("Placed Order", {"email": email}, value=10))


def test_create_turns_temporary_ids_into_real_ones(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _delay("wait", "mail", 2), _email("mail", "Hi")))
    attrs = flow.attributes
    assert (attrs["status"], attrs["trigger_type"], attrs["archived"]) == ("draft", "Metric", False)
    definition = attrs["definition"]
    wait, mail = definition["actions"]
    assert "temporary_id" not in wait
    assert definition["entry_action_id"] == wait["id"]
    assert wait["links"]["next"] == mail["id"]
    assert mail["data"]["message"]["id"]
    linked = flow.relationships["flow-actions"]
    assert linked == [("flow-action", wait["id"]), ("flow-action", mail["id"])]
    # the same definition comes back from GET with additional-fields[flow]=definition
    got = ecall("get_flow", Query(additional_fields={"flow": ("definition",)}), id=flow.id)
    assert got.data.attributes["definition"] == definition  # type: ignore[union-attr]
    plain = ecall("get_flow", id=flow.id)
    assert "definition" not in plain.data.attributes  # type: ignore[union-attr]
    message = ecall("get_flow_message", id=mail["data"]["message"]["id"]).data
    assert isinstance(message, Resource)
    assert message.attributes["definition"]["subject_line"] == "Hi"
    assert message.relationships["flow-action"] == ("flow-action", mail["id"])
    action = ecall("get_flow_for_flow_action", id=mail["id"]).data
    assert isinstance(action, Resource)
    assert action.id == flow.id


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"triggers": [], "actions": []}, "/data/attributes/definition/triggers"),
        ({"triggers": [{"type": "metric", "id": "NOPE"}], "actions": []},
         "/data/attributes/definition/triggers/0/id"),
        ({"triggers": [{"type": "price-drop"}], "actions": []},
         "/data/attributes/definition/triggers/0/type"),
        ({"triggers": "METRIC", "actions": [{"id": "1", "type": "send-email"}]},
         "/data/attributes/definition/triggers"),
    ],
)  # fmt: skip
def test_create_rejects_bad_triggers(
    ecall: Caller, definition: dict[str, Any], pointer: str
) -> None:
    body = {"data": {"type": "flow", "attributes": {"name": "F", "definition": definition}}}
    with pytest.raises(InvalidError) as err:
        ecall("create_flow", body=body)
    assert err.value.pointer == pointer


@pytest.mark.parametrize(
    ("actions", "entry", "pointer"),
    [
        ([{"id": "1", "temporary_id": "a", "type": "send-email"}], "a", "actions/0/id"),
        ([{"type": "send-email"}], "a", "actions/0/temporary_id"),
        ([_email("a", "x"), _email("a", "y")], "a", "actions/1/temporary_id"),
        ([_email("a", "x", nxt="ghost")], "a", "actions/0/links/next"),
        ([_email("a", "x")], "b", "entry_action_id"),
        ([{"temporary_id": "a", "type": "teleport"}], "a", "actions/0/type"),
        ([_delay("a", None, 2, unit="fortnights")], "a", "actions/0/data/unit"),
        ([_delay("a", None, -1)], "a", "actions/0/data/value"),
        ([_email("a", "x", template_id="NOPE")], "a", "actions/0/data/message/template_id"),
    ],
)
def test_create_rejects_bad_actions(
    ecall: Caller, empty: EmulatorBackend, actions: list[Any], entry: str, pointer: str
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    definition = {"triggers": [trigger], "actions": actions, "entry_action_id": entry}
    body = {"data": {"type": "flow", "attributes": {"name": "F", "definition": definition}}}
    with pytest.raises(InvalidError) as err:
        ecall("create_flow", body=body)
    assert err.value.pointer == f"/data/attributes/definition/{pointer}"


def test_status_moves_the_flow_and_its_actions(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _email("a", "x")))
    assert _set_status(ecall, flow.id, "live").attributes["status"] == "live"
    actions = ecall("get_actions_for_flow", id=flow.id).data
    assert isinstance(actions, Page)
    assert [a.attributes["definition"]["data"]["status"] for a in actions.items] == ["live"]
    _set_status(ecall, flow.id, "manual")
    q = Query(conditions=(Condition("equals", "status", "manual"),))
    assert [f.id for f in ecall("get_flows", q).data.items] == [flow.id]  # type: ignore[union-attr]
    body = {"data": {"type": "flow", "id": flow.id, "attributes": {"status": "paused"}}}
    with pytest.raises(InvalidError) as err:
        ecall("update_flow", body=body, id=flow.id)
    assert err.value.pointer == "/data/attributes/status"


def test_live_metric_flow_sends_after_its_delay(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(
        ecall,
        _definition(trigger, _email("first", "Thanks", "wait"), _delay("wait", "second", 24),
                    _email("second", "Review?")),
    )  # fmt: skip
    messages = [a["data"]["message"]["id"] for a in flow.attributes["definition"]["actions"]
                if a["type"] == "send-email"]  # fmt: skip
    _set_status(ecall, flow.id, "live")
    pid = _profile(ecall, email="buyer@example.com")
    clock.advance(60)
    start = clock.now().timestamp()
    _order(ecall, "buyer@example.com")
    empty.run_due()
    sent = _flow_emails(empty)
    assert [(ts - start, p, props["$message"], props["Subject"]) for ts, p, props in sent] == [
        (0.0, pid, messages[0], "Thanks")
    ]
    assert sent[0][2]["$flow"] == flow.id
    clock.advance(24 * HOUR - 1)
    empty.run_due()
    assert len(_flow_emails(empty)) == 1  # a second early: the delay is not over
    clock.advance(1)
    empty.run_due()
    sent = _flow_emails(empty)
    assert [(ts - start, props["$message"]) for ts, _, props in sent] == [
        (0.0, messages[0]),
        (24 * HOUR, messages[1]),
    ]


def test_draft_flow_and_other_metrics_send_nothing(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    _create(ecall, _definition(trigger, _email("a", "x")))
    live = _create(ecall, _definition(trigger, _email("a", "x")))
    _set_status(ecall, live.id, "live")
    ecall("create_event", body=event_body("Viewed Product", {"email": "v@example.com"}))
    empty.run_due()
    assert _flow_emails(empty) == []
    _order(ecall, "v@example.com")
    empty.run_due()
    assert [props["$flow"] for _, _, props in _flow_emails(empty)] == [live.id]


def test_bulk_events_trigger_flows_when_the_job_runs(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _email("a", "x")))
    _set_status(ecall, flow.id, "live")
    metric = {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}}
    event = {"type": "event", "attributes": {"properties": {}, "metric": metric}}
    item = {"type": "event-bulk-create", "attributes": {
        "profile": {"data": {"type": "profile", "attributes": {"email": "bulk@example.com"}}},
        "events": {"data": [event, event]}}}  # fmt: skip
    body = {"data": {"type": "event-bulk-create-job",
                     "attributes": {"events-bulk-create": {"data": [item]}}}}  # fmt: skip
    ecall("bulk_create_events", body=body)
    empty.run_due()
    assert len(_flow_emails(empty)) == 2  # each event enters the flow


def test_list_flow_enters_members_who_join_after_it_went_live(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    created = ecall("create_list", body={"data": {"type": "list", "attributes": {"name": "L"}}})
    assert isinstance(created.data, Resource)
    lid = created.data.id
    early = _profile(ecall, email="early@example.com")
    late = _profile(ecall, email="late@example.com")
    ecall("add_profiles_to_list", body={"data": [{"type": "profile", "id": early}]}, id=lid)
    trigger = {"type": "list", "id": lid}
    flow = _create(ecall, _definition(trigger, _delay("w", "m", 1), _email("m", "Welcome")))
    assert flow.attributes["trigger_type"] == "Added to List"
    clock.advance(10)
    _set_status(ecall, flow.id, "live")
    clock.advance(10)
    joined = clock.now().timestamp()
    ecall("add_profiles_to_list", body={"data": [{"type": "profile", "id": late}]}, id=lid)
    clock.advance(2 * HOUR)  # several requests later, the email is still timed from the join
    empty.run_due()
    assert [(ts - joined, p) for ts, p, _ in _flow_emails(empty)] == [(HOUR, late)]
    triggered = ecall("get_flows_triggered_by_list", id=lid).data
    assert [f.id for f in triggered] == [flow.id]  # type: ignore[union-attr]


def test_scheduled_emails_respect_status_consent_and_deletion(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _delay("w", "m", 1), _email("m", "x")))
    _set_status(ecall, flow.id, "live")
    ok = _profile(ecall, email="ok@example.com")
    _profile(ecall, email="gone@example.com")
    for email in ("ok@example.com", "gone@example.com"):
        _order(ecall, email)
    p = empty.store.find_identifier("email", "gone@example.com")
    assert p is not None
    p.email_suppression = [("HARD_BOUNCE", clock.now().timestamp())]
    clock.advance(HOUR)
    empty.run_due()
    assert [pid for _, pid, _ in _flow_emails(empty)] == [ok]
    _order(ecall, "ok@example.com")
    _set_status(ecall, flow.id, "manual")  # no longer live: the queued email is dropped
    clock.advance(HOUR)
    empty.run_due()
    assert len(_flow_emails(empty)) == 1


def test_a_flow_email_does_not_trigger_flows_itself(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Received Email")}
    flow = _create(ecall, _definition(trigger, _email("m", "Echo")))
    _set_status(ecall, flow.id, "live")
    ecall("create_event", body=event_body("Received Email", {"email": "e@example.com"}))
    empty.run_due()
    empty.run_due()
    assert len(_flow_emails(empty)) == 1


def test_delete_removes_the_flow_its_actions_and_messages(
    ecall: Caller, empty: EmulatorBackend
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _email("m", "x")))
    action = flow.attributes["definition"]["actions"][0]
    assert ecall("delete_flow", id=flow.id).status == 204
    for op, ident in (
        ("get_flow", flow.id),
        ("get_flow_action", action["id"]),
        ("get_flow_message", action["data"]["message"]["id"]),
    ):
        with pytest.raises(NotFoundError):
            ecall(op, id=ident)


def test_listing_filters_and_sorts(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    b = _create(ecall, _definition(trigger, _delay("w", "m", 1), _email("m", "x")), name="Beta")
    a = _create(ecall, _definition(trigger, _email("m", "x")), name="Alpha")
    names = ecall("get_flows", Query(sort=Sort("name"))).data
    assert [f.id for f in names.items] == [a.id, b.id]  # type: ignore[union-attr]
    q = Query(conditions=(Condition("contains", "name", "et"),))
    assert [f.id for f in ecall("get_flows", q).data.items] == [b.id]  # type: ignore[union-attr]
    q = Query(conditions=(Condition("equals", "action_type", "time-delay"),))
    delays = ecall("get_actions_for_flow", q, id=b.id).data
    assert [x.attributes["definition"]["type"] for x in delays.items] == ["time-delay"]  # type: ignore[union-attr]
    ids = ecall("get_action_ids_for_flow", id=b.id)
    assert ids.identifiers_only
    assert len(ids.data.items) == 2  # type: ignore[union-attr]


def test_generated_account_has_draft_flows(call: Caller) -> None:
    flows = call("get_flows").data
    assert isinstance(flows, Page)
    assert {f.attributes["name"] for f in flows.items} >= {"Welcome Series"}
    assert {f.attributes["status"] for f in flows.items} == {"draft"}


def test_update_action_replaces_its_definition(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _delay("w", "m", 1), _email("m", "Old")))
    other = _create(ecall, _definition(trigger, _email("m", "x")))
    wait, mail = flow.attributes["definition"]["actions"]
    foreign = other.attributes["definition"]["actions"][0]["id"]

    def patch(action_id: str, definition: dict[str, Any]) -> Resource:
        body = {"data": {"type": "flow-action", "id": action_id,
                         "attributes": {"definition": definition}}}  # fmt: skip
        out = ecall("update_flow_action", body=body, id=action_id)
        assert isinstance(out.data, Resource)
        return out.data

    delay = {"type": "time-delay", "links": {"next": mail["id"]},
             "data": {"unit": "hours", "value": 5}}  # fmt: skip
    assert patch(wait["id"], delay).attributes["definition"]["data"]["value"] == 5
    message = {"subject_line": "New", "name": "Renamed"}
    updated = patch(mail["id"], {"type": "send-email", "data": {"message": message}})
    mid = mail["data"]["message"]["id"]
    assert updated.attributes["definition"]["data"]["message"]["id"] == mid
    got = ecall("get_flow_message", id=mid).data
    assert got.attributes["definition"]["subject_line"] == "New"  # type: ignore[union-attr]
    for bad, pointer in (
        ({"type": "send-email"}, "type"),
        ({"type": "time-delay", "links": {"next": foreign},
          "data": {"unit": "hours", "value": 1}}, "links/next"),
        ({"type": "time-delay", "data": {"unit": "hours", "value": -2}}, "data/value"),
    ):  # fmt: skip
        with pytest.raises(InvalidError) as err:
            patch(wait["id"], bad)
        assert err.value.pointer == f"/data/attributes/definition/{pointer}"

    _set_status(ecall, flow.id, "live")
    start = clock.now().timestamp()
    _order(ecall, "late@example.com")
    clock.advance(5 * HOUR)
    empty.run_due()
    assert [(ts - start, props["Subject"]) for ts, _, props in _flow_emails(empty)] == [
        (5 * HOUR, "New")
    ]


def test_delete_action_splices_it_out_of_its_flow(ecall: Caller, empty: EmulatorBackend) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    flow = _create(ecall, _definition(trigger, _delay("wait", "mail", 2), _email("mail", "Hi")))
    wait, mail = flow.attributes["definition"]["actions"]
    assert ecall("delete_flow_action", id=wait["id"]).status == 204
    with pytest.raises(NotFoundError):
        ecall("get_flow_action", id=wait["id"])
    got = ecall("get_flow", Query(additional_fields={"flow": ("definition",)}), id=flow.id).data
    assert isinstance(got, Resource)
    # whatever led to the deleted action now leads to what followed it
    assert got.attributes["definition"]["entry_action_id"] == mail["id"]
    assert [a["id"] for a in got.attributes["definition"]["actions"]] == [mail["id"]]
    assert got.relationships["flow-actions"] == [("flow-action", mail["id"])]
    assert ecall("delete_flow_action", id=mail["id"]).status == 204
    with pytest.raises(NotFoundError):
        ecall("get_flow_message", id=mail["data"]["message"]["id"])
    with pytest.raises(NotFoundError):
        ecall("delete_flow_action", id=mail["id"])


def test_deleting_an_action_reroutes_links_from_earlier_actions(
    ecall: Caller, empty: EmulatorBackend
) -> None:
    trigger = {"type": "metric", "id": _metric_id(empty, "Placed Order")}
    definition = _definition(
        trigger, _email("first", "A", "wait"), _delay("wait", "last", 1), _email("last", "B")
    )
    first, wait, last = _create(ecall, definition).attributes["definition"]["actions"]
    ecall("delete_flow_action", id=wait["id"])
    got = ecall("get_flow_action", id=first["id"]).data
    assert isinstance(got, Resource)
    assert got.attributes["definition"]["links"]["next"] == last["id"]
