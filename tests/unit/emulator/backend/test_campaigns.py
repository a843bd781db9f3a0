"""Campaigns and send jobs: validation, status transitions, and what a send produces."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.models import ProfileRecord
from kbridge.emulator.query import Condition, Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import NOW, Caller, caller, make_backend

pytestmark = pytest.mark.unit

EMAIL = Query(conditions=(Condition("equals", "messages.channel", "email"),))
SENDER = "hello@northwind.example.com"
HOUR = 3600.0


def campaign_body(
    included: list[str],
    *,
    excluded: list[str] | None = None,
    strategy: dict[str, Any] | None = None,
    sender: str = SENDER,
    **attributes: Any,
) -> dict[str, Any]:
    definition = {"channel": "email", "label": "A",
                  "content": {"subject": "Hi {{ first_name }}", "from_email": sender}}  # fmt: skip
    attrs: dict[str, Any] = {
        "name": "Launch",
        "audiences": {"included": included, "excluded": excluded or []},
        "send_strategy": strategy or {"method": "static", "datetime": "2026-11-01T14:00:00+00:00"},
        "send_options": {"use_smart_sending": False},
        "campaign-messages": {
            "data": [{"type": "campaign-message", "attributes": {"definition": definition}}]
        },
        **attributes,
    }
    return {"data": {"type": "campaign", "attributes": attrs}}


def job(cid: str, action: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "campaign-send-job", "id": cid}
    if action:
        data["attributes"] = {"action": action}
    return {"data": data}


def receivable(p: ProfileRecord) -> bool:
    return (not p.deleted and bool(p.email) and p.email_consent == "SUBSCRIBED"
            and not p.email_suppression)  # fmt: skip


def newsletter(backend: EmulatorBackend) -> str:
    return next(lst.id for lst in backend.store.lists.values() if lst.name == "Newsletter")


def create(call: Caller, body: dict[str, Any]) -> tuple[str, str]:
    data = call("create_campaign", body=body).data
    assert data is not None
    assert not isinstance(data, list)
    return data.id, data.relationships["campaign-messages"][0][1]


def status(call: Caller, cid: str) -> str:
    data = call("get_campaign", id=cid).data
    return str(data.attributes["status"])


def events_of(backend: EmulatorBackend, metric: str, message_id: str) -> list[int]:
    """Indexes of ``metric`` events carrying ``$message`` = ``message_id`` (API events only)."""
    store = backend.store
    m = store.metric_by_name[metric].index
    return [i for i in store.events_by_metric.get(m, ())
            if store.events.extra.get(i, ({}, None))[0].get("$message") == message_id]  # fmt: skip


def advance(backend: EmulatorBackend, clock: SimClock, seconds: float) -> None:
    clock.advance(seconds)
    backend.run_due()


def test_listing_requires_the_channel_filter(call: Caller) -> None:
    with pytest.raises(InvalidError) as err:
        call("get_campaigns")
    assert err.value.parameter == "filter"
    assert "messages.channel" in err.value.detail


def test_the_generated_history_lists_as_sent_email_campaigns(call: Caller) -> None:
    page = call("get_campaigns", EMAIL).data
    names = [r.attributes["name"] for r in page.items]
    assert names
    assert all(n.startswith("Weekly Edit #") for n in names)
    assert {r.attributes["status"] for r in page.items} == {"Sent"}
    sms = Query(conditions=(Condition("equals", "messages.channel", "sms"),))
    assert call("get_campaigns", sms).data.items == []


def test_create_validates_and_starts_in_draft(backend: EmulatorBackend, call: Caller) -> None:
    lid = newsletter(backend)
    cid, mid = create(call, campaign_body([lid]))
    assert status(call, cid) == "Draft"
    message = call("get_campaign_message", id=mid).data
    assert message.attributes["definition"]["content"]["from_email"] == SENDER
    bad = {"method": "throttled", "datetime": "2026-11-02T00:00:00Z", "throttle_percentage": 7}
    with pytest.raises(InvalidError) as err:
        call("create_campaign", body=campaign_body([lid], strategy=bad))
    assert err.value.pointer == "/data/attributes/send_strategy/throttle_percentage"
    with pytest.raises(InvalidError) as err:
        call("create_campaign", body=campaign_body(["nope00"]))
    assert err.value.pointer == "/data/attributes/audiences/included/0"


def test_a_static_send_waits_for_the_clock_then_reaches_the_audience(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    lid = newsletter(backend)
    excluded_list = next(lst for lst in store.lists.values() if lst.name == "Product updates")
    cid, mid = create(call, campaign_body([lid], excluded=[excluded_list.id]))
    call("send_campaign", body=job(cid))
    assert status(call, cid) == "Scheduled"
    advance(backend, clock, HOUR)
    assert events_of(backend, "Received Email", mid) == []
    assert backend.outbox.messages == []

    advance(backend, clock, HOUR + 1)  # 14:00 has passed
    assert status(call, cid) == "Sent"
    expected = {s for s in store.lists[lid].members
                if s not in excluded_list.members and receivable(store.profiles[s])}  # fmt: skip
    received = events_of(backend, "Received Email", mid)
    assert {store.events.profile[i] for i in received} == expected
    assert {store.events.ts[i] for i in received} == {NOW.timestamp() + 2 * HOUR}
    first = store.events.extra[received[0]][0]
    person = store.profiles[store.events.profile[received[0]]]
    assert first == {"$message": mid, "Campaign Name": "Launch",
                     "Subject": f"Hi {person.first_name or ''}"}  # fmt: skip
    sent = [m for m in backend.outbox.messages if m.campaign_id == cid]
    assert {m.profile_id for m in sent} == {store.profiles[s].id for s in expected}
    person = store.profile(sent[0].profile_id)
    assert person is not None
    assert sent[0].subject == f"Hi {person.first_name or ''}"


def test_opens_clicks_and_orders_appear_only_once_their_time_has_come(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    cid, mid = create(call, campaign_body([newsletter(backend)], strategy={"method": "immediate"}))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 0)
    now = clock.now().timestamp()
    opened_now = events_of(backend, "Opened Email", mid)
    assert all(store.events.ts[i] <= now for i in opened_now)
    advance(backend, clock, 7 * 86400)
    opened = events_of(backend, "Opened Email", mid)
    clicked = events_of(backend, "Clicked Email", mid)
    assert len(opened) > len(opened_now)
    assert {store.events.profile[i] for i in clicked} <= {store.events.profile[i] for i in opened}
    orders = list(events_of(backend, "Placed Order", mid))
    assert orders == []  # orders carry $attributed_message, not $message
    m = store.metric_by_name["Placed Order"].index
    extra = store.events.extra
    attributed = [
        i
        for i in store.events_by_metric[m]
        if extra.get(i, ({}, None))[0].get("$attributed_message") == mid
    ]
    assert attributed  # seed 7: some recipients buy
    for i in attributed:
        assert store.events.value[i] == store.events.extra[i][0]["$value"] > 0


def test_the_behaviour_is_deterministic_per_seed(clock: SimClock) -> None:
    def run() -> list[tuple[float, int, int]]:
        from kbridge.core.clock import ManualClock

        sim = SimClock(ManualClock(NOW))
        b = make_backend(sim, profiles=300, events=3000)
        call = caller(b)
        cid, _ = create(call, campaign_body([newsletter(b)], strategy={"method": "immediate"}))
        call("send_campaign", body=job(cid))
        sim.advance(10 * 86400)
        b.run_due()
        ev = b.store.events
        return [(ev.ts[i], ev.profile[i], ev.metric[i]) for i in range(ev.generated, len(ev))]

    first, second = run(), run()
    assert first == second
    assert len(first) > 0


def test_small_clock_steps_produce_the_same_events_as_one_jump() -> None:
    from kbridge.core.clock import ManualClock

    b_jobs: list[Any] = []

    def run(steps: list[float]) -> list[tuple[float, int, int]]:
        sim = SimClock(ManualClock(NOW))
        b = make_backend(sim, profiles=300, events=3000)
        call = caller(b)
        cid, _ = create(call, campaign_body([newsletter(b)], strategy={"method": "immediate"}))
        call("send_campaign", body=job(cid))
        for step in steps:
            sim.advance(step)
            b.run_due()
        ev = b.store.events
        b_jobs[:] = list(b.store.jobs.values())
        return sorted((ev.ts[i], ev.profile[i], ev.metric[i]) for i in range(ev.generated, len(ev)))

    jump = run([4 * 86400.0])
    assert run([1800.0] * (4 * 48)) == jump
    # spent wake-ups do not pile up in the job queue
    assert not [j for j in b_jobs if j.kind.startswith("campaign-")]
    metrics = {m for _, _, m in jump}
    assert len(metrics) >= 3  # received, opened, clicked (and orders) all arrived


def test_cancel_and_revert(backend: EmulatorBackend, call: Caller, clock: SimClock) -> None:
    lid = newsletter(backend)
    cid, _ = create(call, campaign_body([lid]))
    call("send_campaign", body=job(cid))
    call("cancel_campaign_send", body=job(cid, "revert"), id=cid)
    assert status(call, cid) == "Draft"
    with pytest.raises(NotFoundError):
        call("get_campaign_send_job", id=cid)
    call("update_campaign", body={"data": {"type": "campaign", "id": cid,
         "attributes": {"name": "Renamed"}}}, id=cid)  # fmt: skip
    call("send_campaign", body=job(cid))
    call("cancel_campaign_send", body=job(cid, "cancel"), id=cid)
    assert status(call, cid) == "Cancelled"
    assert call("get_campaign_send_job", id=cid).data.attributes == {"status": "cancelled"}
    with pytest.raises(InvalidError):
        call("cancel_campaign_send", body=job(cid, "revert"), id=cid)
    with pytest.raises(InvalidError):
        call("send_campaign", body=job(cid))
    with pytest.raises(InvalidError):
        call("update_campaign", body={"data": {"type": "campaign", "id": cid,
             "attributes": {"name": "Late"}}}, id=cid)  # fmt: skip
    advance(backend, clock, 86400)
    assert status(call, cid) == "Cancelled"
    assert backend.outbox.messages == []


def test_an_unverified_sender_cancels_the_send(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    lid = newsletter(backend)
    immediate = {"method": "immediate"}
    cid, _ = create(call, campaign_body([lid], strategy=immediate, sender="news@elsewhere.example"))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 1)
    assert status(call, cid) == "Cancelled: Misconfigured"
    assert call("get_campaign_send_job", id=cid).data.attributes["status"] == "cancelled"
    assert "news@elsewhere.example" in backend.outbox.failures[-1]["reason"]
    backend.outbox.verify("News@Elsewhere.example")
    cid, _ = create(call, campaign_body([lid], strategy=immediate, sender="news@elsewhere.example"))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 1)
    assert status(call, cid) == "Sent"


def test_no_recipients_is_reported_by_status(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    empty = call("create_list", body={"data": {"type": "list", "attributes": {"name": "E"}}}).data
    cid, _ = create(call, campaign_body([empty.id], strategy={"method": "immediate"}))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 1)
    assert status(call, cid) == "Cancelled: No Recipients"


def test_a_throttled_send_spreads_over_hours(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    strategy = {"method": "throttled", "datetime": "2026-11-01T12:00:00+00:00",
                "throttle_percentage": 50}  # fmt: skip
    cid, mid = create(call, campaign_body([newsletter(backend)], strategy=strategy))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 60)
    first = len(events_of(backend, "Received Email", mid))
    assert status(call, cid) == "Sending"
    assert call("get_campaign_send_job", id=cid).data.attributes["status"] == "processing"
    with pytest.raises(InvalidError):  # a sending campaign can be cancelled, not reverted
        call("cancel_campaign_send", body=job(cid, "revert"), id=cid)
    advance(backend, clock, HOUR)
    total = len(events_of(backend, "Received Email", mid))
    assert status(call, cid) == "Sent"
    assert first == (total + 1) // 2
    assert len({store.events.ts[i] for i in events_of(backend, "Received Email", mid)}) == 2


def test_a_local_send_reaches_each_recipient_at_their_wall_clock_time(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    lid = newsletter(backend)
    members = sorted(s for s in store.lists[lid].members if receivable(store.profiles[s]))
    west, east = store.profiles[members[0]], store.profiles[members[1]]
    west.location = {"timezone": "America/Los_Angeles"}
    east.location = {"timezone": "Nowhere/Unknown"}  # unknown: the account's (New York)
    strategy = {"method": "static", "datetime": "2026-11-02T09:00:00+00:00",
                "options": {"is_local": True}}  # fmt: skip
    cid, mid = create(call, campaign_body([lid], strategy=strategy))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 2 * 86400)
    at = {store.events.profile[i]: store.events.ts[i]
          for i in events_of(backend, "Received Email", mid)}  # fmt: skip
    la, ny = ZoneInfo("America/Los_Angeles"), ZoneInfo("America/New_York")
    assert at[west.seq] == datetime(2026, 11, 2, 9, 0, tzinfo=la).timestamp()
    assert at[east.seq] == datetime(2026, 11, 2, 9, 0, tzinfo=ny).timestamp()
    assert status(call, cid) == "Sent"
    message = call("get_campaign_message", id=mid).data
    assert message.attributes["send_times"] == [
        {"datetime": "2026-11-02T09:00:00+00:00", "is_local": True}
    ]


def test_an_sms_campaign_reaches_sms_subscribers_only(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    lid = next(lst.id for lst in store.lists.values() if lst.name == "SMS subscribers")
    definition = {"channel": "sms", "content": {"body": "placeholder"}}
    body = campaign_body([lid], strategy={"method": "immediate"})
    body["data"]["attributes"]["campaign-messages"]["data"][0]["attributes"]["definition"] = (
        definition
    )
    cid, mid = create(call, body)
    sms = Query(conditions=(Condition("equals", "messages.channel", "sms"),))
    assert [r.id for r in call("get_campaigns", sms).data.items] == [cid]
    update = {"type": "campaign-message", "id": mid, "attributes": {"definition": {
        "channel": "sms", "content": {"body": "Hi {{ first_name }}, 20% off"}}}}  # fmt: skip
    call("update_campaign_message", body={"data": update}, id=mid)
    call("send_campaign", body=job(cid))
    advance(backend, clock, 86400)
    assert status(call, cid) == "Sent"
    members = [store.profiles[s] for s in store.lists[lid].members]
    expected = {p.seq for p in members if p.phone_number and p.sms_consent == "SUBSCRIBED"}
    assert expected
    assert {store.events.profile[i] for i in events_of(backend, "Received SMS", mid)} == expected
    assert events_of(backend, "Received Email", mid) == []
    assert events_of(backend, "Opened Email", mid) == []
    sent = [m for m in backend.outbox.messages if m.campaign_id == cid]
    assert {m.channel for m in sent} == {"sms"}
    assert all(m.to.startswith("+") and m.body and m.body.endswith(", 20% off") for m in sent)


def test_smart_sending_skips_recent_recipients(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    lid = newsletter(backend)
    smart = {"use_smart_sending": True}
    now = {"method": "immediate"}
    first, first_mid = create(call, campaign_body([lid], strategy=now))
    call("send_campaign", body=job(first))
    advance(backend, clock, 8 * HOUR)
    reached = {store.events.profile[i] for i in events_of(backend, "Received Email", first_mid)}

    second, _ = create(call, campaign_body([lid], strategy=now, send_options=smart))
    call("send_campaign", body=job(second))
    advance(backend, clock, 1)
    assert status(call, second) == "Cancelled: Smart Sending"  # everyone got one 8 hours ago

    advance(backend, clock, 9 * HOUR)  # 17 hours after the first send
    third, third_mid = create(call, campaign_body([lid], strategy=now, send_options=smart))
    call("send_campaign", body=job(third))
    advance(backend, clock, 1)
    assert status(call, third) == "Sent"
    received = events_of(backend, "Received Email", third_mid)
    assert {store.events.profile[i] for i in received} == reached


def test_event_hooks_see_what_a_send_stores(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    seen: list[int] = []
    backend._ctx.on_event.append(seen.append)  # how flows learn of new events
    cid, mid = create(call, campaign_body([newsletter(backend)], strategy={"method": "immediate"}))
    call("send_campaign", body=job(cid))
    advance(backend, clock, 3 * 86400)
    received = events_of(backend, "Received Email", mid)
    assert set(received) <= set(seen)
    assert len(seen) == len(backend.store.events) - backend.store.events.generated


def test_assigning_a_template_copies_it(backend: EmulatorBackend, call: Caller) -> None:
    _cid, mid = create(call, campaign_body([newsletter(backend)]))
    t = call("create_template", body={"data": {"type": "template", "attributes": {
        "name": "T", "editor_type": "CODE", "html": "<p>v1</p>"}}}).data  # fmt: skip
    out = call("assign_template_to_campaign_message", body={"data": {
        "type": "campaign-message", "id": mid,
        "relationships": {"template": {"data": {"type": "template", "id": t.id}}}}})  # fmt: skip
    assert out.data.attributes["channel"] == "email"
    call("update_template", body={"data": {"type": "template", "id": t.id,
         "attributes": {"html": "<p>v2</p>"}}}, id=t.id)  # fmt: skip
    copy = call("get_template_for_campaign_message", id=mid).data
    assert copy.id != t.id
    assert copy.attributes["html"] == "<p>v1</p>"


def test_delete_removes_campaign_and_messages(backend: EmulatorBackend, call: Caller) -> None:
    cid, mid = create(call, campaign_body([newsletter(backend)]))
    call("delete_campaign", id=cid)
    with pytest.raises(NotFoundError):
        call("get_campaign", id=cid)
    with pytest.raises(NotFoundError):
        call("get_campaign_message", id=mid)


def test_clone_copies_settings_messages_and_template(
    backend: EmulatorBackend, call: Caller
) -> None:
    cid, mid = create(call, campaign_body([newsletter(backend)]))
    t = call("create_template", body={"data": {"type": "template", "attributes": {
        "name": "T", "editor_type": "CODE", "html": "<p>x</p>"}}}).data  # fmt: skip
    template = {"template": {"data": {"type": "template", "id": t.id}}}
    assign = {"type": "campaign-message", "id": mid, "relationships": template}
    call("assign_template_to_campaign_message", body={"data": assign})
    clone = call("create_campaign_clone", body={"data": {"type": "campaign", "id": cid,
                 "attributes": {"new_name": "Again"}}})  # fmt: skip
    assert clone.status == 201
    attrs = clone.data.attributes
    assert attrs["name"] == "Again"
    assert attrs["status"] == "Draft"
    assert attrs["audiences"] == call("get_campaign", id=cid).data.attributes["audiences"]
    (new_mid,) = [m for _, m in clone.data.relationships["campaign-messages"]]
    assert new_mid != mid
    original = call("get_template_for_campaign_message", id=mid).data
    copied = call("get_template_for_campaign_message", id=new_mid).data
    assert copied.id != original.id
    assert copied.attributes["html"] == original.attributes["html"]
    default = call("create_campaign_clone", body={"data": {"type": "campaign", "id": cid,
                   "attributes": {}}})  # fmt: skip
    assert default.data.attributes["name"] == "Launch (Clone)"


def test_recipient_estimates_count_who_a_send_would_reach(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    store = backend.store
    lid = newsletter(backend)
    cid, _ = create(call, campaign_body([lid]))
    expected = sum(1 for s in store.lists[lid].members if receivable(store.profiles[s]))
    with pytest.raises(NotFoundError):
        call("get_campaign_recipient_estimation_job", id=cid)
    live = call("get_campaign_recipient_estimation", id=cid).data
    assert live.attributes == {"estimated_recipient_count": expected}
    refresh = {"data": {"type": "campaign-recipient-estimation-job", "id": cid}}
    started = call("refresh_campaign_recipient_estimation", body=refresh)
    assert started.status == 202
    assert started.data.attributes == {"status": "complete"}  # job_delay_seconds is 0
    newcomer = next(p for p in store.profiles if p.seq not in store.lists[lid].members
                    and receivable(p))  # fmt: skip
    call("add_profiles_to_list", body={"data": [{"type": "profile", "id": newcomer.id}]}, id=lid)
    kept = call("get_campaign_recipient_estimation", id=cid).data
    assert kept.attributes == {"estimated_recipient_count": expected}  # as of the refresh
    call("refresh_campaign_recipient_estimation", body=refresh)
    fresh = call("get_campaign_recipient_estimation", id=cid).data
    assert fresh.attributes == {"estimated_recipient_count": expected + 1}


def test_a_profile_erased_mid_campaign_gets_no_later_events(
    backend: EmulatorBackend, call: Caller, clock: SimClock
) -> None:
    from kbridge.emulator.backend.privacy import delete_profile

    store = backend.store
    lid = newsletter(backend)
    cid, _ = create(call, campaign_body([lid]))
    call("send_campaign", body=job(cid))
    recipients = [s for s in store.lists[lid].members if receivable(store.profiles[s])]
    before_send = recipients[0]
    delete_profile(backend._ctx, store.profiles[before_send])
    advance(backend, clock, 2 * HOUR + 1)  # the send happens
    assert status(call, cid) == "Sent"
    campaigns = backend._ctx.campaigns
    assert campaigns is not None
    pending = {e.profile for e in campaigns.sender.pending}
    after_send = next(s for s in recipients[1:] if s in pending)  # has opens etc. still to come
    delete_profile(backend._ctx, store.profiles[after_send])
    advance(backend, clock, 14 * 24 * HOUR)  # opens, clicks and orders fall due
    live = [i for i in range(len(store.events)) if i not in store.deleted_events]
    assert not {before_send, after_send} & {store.events.profile[i] for i in live}
    assert all(m.profile_id != store.profiles[before_send].id for m in backend.outbox.messages)
