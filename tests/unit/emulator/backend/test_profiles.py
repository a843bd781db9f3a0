from __future__ import annotations

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import ConflictError, InvalidError, NotFoundError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query, Sort
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, profile_body

pytestmark = pytest.mark.unit


def _create(ecall: Caller, **attrs: object) -> Resource:
    out = ecall("create_profile", body=profile_body(**attrs))
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data


def test_create_then_get_returns_the_same_profile(ecall: Caller) -> None:
    made = _create(ecall, email="Sam@Example.com", first_name="Sam", properties={"tier": "gold"})
    got = ecall("get_profile", id=made.id).data
    assert isinstance(got, Resource)
    assert got.attributes["email"] == "Sam@Example.com"
    assert got.attributes["properties"] == {"tier": "gold"}
    assert got.attributes["created"].endswith("+00:00")
    assert "subscriptions" not in got.attributes


def test_duplicate_identifier_is_409_with_the_existing_profile_id(ecall: Caller) -> None:
    first = _create(ecall, email="a@example.com")
    with pytest.raises(ConflictError) as err:
        ecall("create_profile", body=profile_body(email="A@example.com", first_name="x"))
    assert err.value.code == "duplicate_profile"
    assert err.value.meta == {"duplicate_profile_id": first.id}


@pytest.mark.parametrize(
    ("attrs", "pointer"),
    [
        ({"email": "not-an-email"}, "/data/attributes/email"),
        ({"email": "a@example.com", "phone_number": "5551234"}, "/data/attributes/phone_number"),
        ({"first_name": "No identifier"}, "/data/attributes"),
        ({"email": "b@example.com", "properties": {"blob": "x" * 110_000}}, "/data"),
    ],
)
def test_invalid_profiles_name_the_pointer(
    ecall: Caller, attrs: dict[str, object], pointer: str
) -> None:
    with pytest.raises(InvalidError) as err:
        ecall("create_profile", body=profile_body(**attrs))
    assert err.value.pointer == pointer


def test_update_null_clears_omission_keeps_and_patch_properties(
    ecall: Caller, clock: SimClock
) -> None:
    made = _create(
        ecall,
        email="c@example.com",
        first_name="C",
        last_name="D",
        properties={"tags": ["a"], "drop": 1, "keep": True},
    )
    before = made.attributes["updated"]
    clock.advance(60)
    body = {
        "data": {
            "type": "profile",
            "id": made.id,
            "attributes": {"first_name": None, "properties": {"new": 2}},
            "meta": {"patch_properties": {"append": {"tags": "b"}, "unset": "drop"}},
        }
    }
    got = ecall("update_profile", body=body, id=made.id).data
    assert isinstance(got, Resource)
    assert got.attributes["first_name"] is None
    assert got.attributes["last_name"] == "D"
    assert got.attributes["properties"] == {"tags": ["a", "b"], "keep": True, "new": 2}
    assert got.attributes["updated"] > before


def test_update_requires_matching_id(ecall: Caller) -> None:
    made = _create(ecall, email="e@example.com")
    body = {"data": {"type": "profile", "id": "01XXXXXXXXXXXXXXXXXXXXXXXX", "attributes": {}}}
    with pytest.raises(InvalidError) as err:
        ecall("update_profile", body=body, id=made.id)
    assert err.value.pointer == "/data/id"


def test_profile_import_creates_201_then_updates_200_by_email(ecall: Caller) -> None:
    first = ecall("create_or_update_profile", body=profile_body(email="f@example.com"))
    assert first.status == 201
    second = ecall(
        "create_or_update_profile", body=profile_body(email="f@example.com", first_name="F")
    )
    assert second.status == 200
    assert isinstance(first.data, Resource)
    assert isinstance(second.data, Resource)
    assert second.data.id == first.data.id
    assert second.data.attributes["first_name"] == "F"


def test_unknown_profile_is_404(ecall: Caller) -> None:
    with pytest.raises(NotFoundError):
        ecall("get_profile", id="01HZZZZZZZZZZZZZZZZZZZZZZZ")


def test_additional_fields_add_subscriptions_and_predictions_only_when_asked(call: Caller) -> None:
    q = Query(page_size=5, additional_fields={"profile": ("subscriptions", "predictive_analytics")})
    page = call("get_profiles", q).data
    assert isinstance(page, Page)
    attrs = page.items[0].attributes
    marketing = attrs["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] in ("SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")
    assert "churn_probability" in attrs["predictive_analytics"]


def test_filter_by_email_any_and_updated_range(call: Caller, backend: EmulatorBackend) -> None:
    ps = backend.store.profiles
    wanted = (ps[3].email, ps[10].email)
    page = call("get_profiles", Query(conditions=(Condition("any", "email", wanted),))).data
    assert isinstance(page, Page)
    assert sorted(r.attributes["email"] for r in page.items) == sorted(wanted)
    cut = ps[150].created
    from datetime import UTC, datetime

    q = Query(
        conditions=(Condition("greater-than", "created", datetime.fromtimestamp(cut, UTC)),),
        sort=Sort("created"),
        page_size=100,
    )
    seen = _walk(call, "get_profiles", q)
    expected = [p.id for p in sorted(ps, key=lambda p: (p.created, p.seq)) if p.created > cut]
    assert seen == expected


def _walk(call: Caller, op: str, q: Query, **path: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = call(op, Query(**{**_fields(q), "cursor": cursor}), **path).data
        assert isinstance(page, Page)
        ids += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids


def _fields(q: Query) -> dict[str, object]:
    return {
        "conditions": q.conditions,
        "sort": q.sort,
        "page_size": q.page_size,
        "additional_fields": q.additional_fields,
        "include": q.include,
    }


def test_paging_all_profiles_by_email_desc_is_complete_and_ordered(
    call: Caller, backend: EmulatorBackend
) -> None:
    ids = _walk(call, "get_profiles", Query(sort=Sort("email", True), page_size=37))
    expected = sorted(backend.store.profiles, key=lambda p: (p.email or "", p.seq), reverse=True)
    assert ids == [p.id for p in expected]


def test_prev_cursor_returns_the_previous_page(call: Caller) -> None:
    first = call("get_profiles", Query(page_size=10)).data
    assert isinstance(first, Page)
    assert first.prev_cursor is None
    second = call("get_profiles", Query(page_size=10, cursor=first.next_cursor)).data
    assert isinstance(second, Page)
    assert second.prev_cursor is not None
    back = call("get_profiles", Query(page_size=10, cursor=second.prev_cursor)).data
    assert isinstance(back, Page)
    assert [r.id for r in back.items] == [r.id for r in first.items]
    assert back.prev_cursor is None


def test_cursor_from_another_sort_is_refused(call: Caller) -> None:
    first = call("get_profiles", Query(page_size=10)).data
    assert isinstance(first, Page)
    with pytest.raises(InvalidError) as err:
        call("get_profiles", Query(page_size=10, sort=Sort("email"), cursor=first.next_cursor))
    assert err.value.parameter == "page[cursor]"
    with pytest.raises(InvalidError):
        call("get_profiles", Query(cursor="garbage!"))


@pytest.mark.parametrize("share", [0.05, 0.6])
def test_updated_window_in_id_order(
    call: Caller, backend: EmulatorBackend, clock: SimClock, share: float
) -> None:
    """Narrow windows are pre-selected from the updated index, wide ones scanned: same answer."""
    from datetime import timedelta

    ps = backend.store.profiles
    clock.advance(10)
    cut = clock.now()
    clock.advance(10)
    touched = ps[: int(len(ps) * share)]
    for p in touched:
        body = {"data": {"type": "profile", "id": p.id, "attributes": {"title": "x"}}}
        call("update_profile", body=body, id=p.id)
    q = Query(conditions=(Condition("greater-than", "updated", cut),), page_size=50)
    assert _walk(call, "get_profiles", q) == sorted(p.id for p in touched)
    later = Query(conditions=(Condition("greater-than", "updated", cut + timedelta(days=1)),))
    assert _walk(call, "get_profiles", later) == []


def test_sort_by_suppression_time_puts_suppressed_profiles_first(call: Caller) -> None:
    for descending in (False, True):
        q = Query(
            sort=Sort("subscriptions.email.marketing.suppression.timestamp", descending),
            page_size=3,
            additional_fields={"profile": ("subscriptions",)},
        )
        page = call("get_profiles", q).data
        assert isinstance(page, Page)
        stamps = [
            r.attributes["subscriptions"]["email"]["marketing"]["suppression"][0]["timestamp"]
            for r in page.items
        ]
        assert stamps == sorted(stamps, reverse=descending)
