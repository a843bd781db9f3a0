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

DELAY = 60.0  # EmulatorConfig.deletion_delay_seconds default


def _deletion(attributes: dict[str, Any] | None = None, profile_id: str | None = None) -> Any:
    profile: dict[str, Any] = {"type": "profile", "attributes": attributes or {}}
    if profile_id is not None:
        profile["id"] = profile_id
    attrs = {"profile": {"data": profile}}
    return {"data": {"type": "data-privacy-deletion-job", "attributes": attrs}}


def _profile(ecall: Caller, **attrs: Any) -> str:
    out = ecall("create_profile", body=profile_body(**attrs)).data
    assert isinstance(out, Resource)
    return out.id


def _by_email(call: Caller, email: str) -> list[str]:
    out = call("get_profiles", Query(conditions=(Condition("equals", "email", email),))).data
    assert isinstance(out, Page)
    return [r.id for r in out.items]


def _events_of(call: Caller, pid: str) -> list[str]:
    q = Query(conditions=(Condition("equals", "profile_id", pid),))
    out = call("get_events", q).data
    assert isinstance(out, Page)
    return [r.id for r in out.items]


def test_deletion_by_email_happens_after_the_delay(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock
) -> None:
    pid = _profile(ecall, email="Gone@Example.com", first_name="Ann")
    keep = _profile(ecall, email="stay@example.com")
    for email in ("gone@example.com", "stay@example.com"):
        ecall("create_event", body=event_body("Placed Order", {"email": email}, unique_id="o-1"))
    eids = _events_of(ecall, pid)
    assert len(eids) == 1
    lid = ecall("create_list", body={"data": {"type": "list", "attributes": {"name": "L"}}})
    assert isinstance(lid.data, Resource)
    both = {"data": [{"type": "profile", "id": pid}, {"type": "profile", "id": keep}]}
    ecall("add_profiles_to_list", body=both, id=lid.data.id)

    out = ecall("request_profile_deletion", body=_deletion({"email": "gone@example.com"}))
    assert (out.status, out.data) == (202, None)
    clock.advance(DELAY - 1)
    empty.run_due()
    assert _by_email(ecall, "gone@example.com") == [pid]  # not yet
    clock.advance(1)
    empty.run_due()

    with pytest.raises(NotFoundError):
        ecall("get_profile", id=pid)
    assert _by_email(ecall, "gone@example.com") == []
    assert _events_of(ecall, pid) == []
    with pytest.raises(NotFoundError):
        ecall("get_event", id=eids[0])
    members = ecall("get_profile_ids_for_list", id=lid.data.id).data
    assert [r.id for r in members.items] == [keep]  # type: ignore[union-attr]
    assert _by_email(ecall, "stay@example.com") == [keep]
    assert len(_events_of(ecall, keep)) == 1
    record = empty.store.profiles[empty.store.by_id[pid]]
    assert (record.email, record.first_name, record.properties) == (None, None, {})
    # the address is free again, and its old unique_id no longer de-duplicates
    again = _profile(ecall, email="gone@example.com")
    ecall("create_event", body=event_body("Placed Order", {"email": "gone@example.com"},
                                          unique_id="o-1"))  # fmt: skip
    assert len(_events_of(ecall, again)) == 1


@pytest.mark.parametrize("field", ["phone_number", "id"])
def test_deletion_by_phone_or_id(
    ecall: Caller, empty: EmulatorBackend, clock: SimClock, field: str
) -> None:
    pid = _profile(ecall, email="p@example.com", phone_number="+15005550006")
    body = (
        _deletion({"phone_number": "+15005550006"}) if field == "phone_number"
        else _deletion(profile_id=pid)
    )  # fmt: skip
    ecall("request_profile_deletion", body=body)
    clock.advance(DELAY)
    empty.run_due()
    with pytest.raises(NotFoundError):
        ecall("get_profile", id=pid)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (_deletion({}), "/data/attributes/profile/data"),
        (_deletion({"email": "a@example.com", "phone_number": "+15005550006"}),
         "/data/attributes/profile/data"),
        (_deletion({"email": "a@example.com"}, profile_id="01ABC"),
         "/data/attributes/profile/data"),
        (_deletion({"email": "not-an-email"}), "/data/attributes/profile/data/attributes/email"),
        (_deletion({"phone_number": "555-1234"}),
         "/data/attributes/profile/data/attributes/phone_number"),
    ],
)  # fmt: skip
def test_exactly_one_valid_identifier(ecall: Caller, body: Any, pointer: str) -> None:
    with pytest.raises(InvalidError) as err:
        ecall("request_profile_deletion", body=body)
    assert err.value.pointer == pointer


def test_unknown_identifier_is_accepted_and_deletes_nothing(
    call: Caller, backend: EmulatorBackend, clock: SimClock
) -> None:
    live = sum(1 for _ in backend.store.live_profiles())
    events = len(backend.store.event_order)
    out = call("request_profile_deletion", body=_deletion({"email": "nobody@example.com"}))
    assert out.status == 202
    clock.advance(DELAY)
    backend.run_due()
    assert sum(1 for _ in backend.store.live_profiles()) == live
    assert len(backend.store.event_order) == events


def test_generated_profile_loses_exactly_its_events(
    call: Caller, backend: EmulatorBackend, clock: SimClock
) -> None:
    store = backend.store
    seq = max(store.events_by_profile, key=lambda s: len(store.events_by_profile[s]))
    p = store.profiles[seq]
    mine = len(store.events_by_profile[seq])
    total = len(store.event_order)
    by_metric = sum(len(v) for v in store.events_by_metric.values())
    assert mine > 1
    call("request_profile_deletion", body=_deletion(profile_id=p.id))
    clock.advance(DELAY)
    backend.run_due()
    assert len(store.event_order) == total - mine
    assert sum(len(v) for v in store.events_by_metric.values()) == by_metric - mine
    assert seq not in store.events_by_profile
    ts = [store.events.ts[i] for i in store.event_order]
    assert ts == sorted(ts)
    assert all(store.events.profile[i] != seq for i in store.event_order)
