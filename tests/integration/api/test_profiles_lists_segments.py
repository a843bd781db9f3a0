"""Profiles, lists, segments, subscriptions: create → get → list with filter → update → delete."""

from __future__ import annotations

import pytest

from kbridge.api import Client, ConflictError, NotFoundError
from kbridge.api.filter_builder import F
from kbridge.api.resources import Contact
from kbridge.api.validation import ValidationError
from kbridge.emulator import EmulatorServer

pytestmark = pytest.mark.integration


def test_profile_lifecycle(client: Client) -> None:
    created = client.profiles.create_profile(
        email="ada@example.com",
        phone_number="+15005550101",
        external_id="crm-1",
        first_name="Ada",
        last_name="Lovelace",
        organization="Engines",
        title="Analyst",
        image="https://example.com/ada.png",
        location={"city": "London", "country": "UK"},
        properties={"tier": "gold"},
    )
    assert created.id
    assert created["email"] == "ada@example.com"
    fetched = client.profiles.get_profile(created.id)
    assert fetched["phone_number"] == "+15005550101"
    assert fetched["location"]["city"] == "London"
    assert fetched["properties"] == {"tier": "gold"}
    found = list(client.profiles.iter_profiles(filter=F.equals("email", "ada@example.com")))
    assert [p.id for p in found] == [created.id]
    updated = client.profiles.update_profile(created.id, title="Countess", properties={"a": 1})
    assert updated["title"] == "Countess"
    assert updated["first_name"] == "Ada"  # untouched attributes stay
    with pytest.raises(ConflictError) as conflict:
        client.profiles.create_profile(email="ada@example.com")
    assert conflict.value.duplicate_profile_id == created.id


def test_profile_list_query_options_reach_the_server(client: Client) -> None:
    page = client.profiles.get_profiles(
        fields={"profile": ["email"]},
        sort="-created",
        page_size=5,
        additional_fields={"profile": ["subscriptions"]},
    )
    assert len(page) == 5
    assert set(page[0].attributes) <= {"email", "subscriptions"}
    created = [p["email"] for p in page]
    assert created  # sorted page came back


def test_list_lifecycle_and_membership(client: Client) -> None:
    made = client.lists.create_list(name="Integration VIP")
    assert made["name"] == "Integration VIP"
    assert client.lists.get_list(made.id)["name"] == "Integration VIP"
    names = [x["name"] for x in client.lists.iter_lists(filter=F.any("name", ["Integration VIP"]))]
    assert names == ["Integration VIP"]
    assert client.lists.update_list(made.id, name="Renamed")["name"] == "Renamed"
    ids = [p.id for p in client.profiles.get_profiles(page_size=3)]
    assert client.lists.add_profiles_to_list(made.id, profile_ids=ids + ids[:1]) == 3
    members = {p.id for p in client.lists.iter_profiles_for_list(made.id)}
    assert members == set(ids)
    client.lists.remove_profiles_from_list(made.id, profile_ids=ids[:1])
    assert {p.id for p in client.lists.iter_profiles_for_list(made.id)} == set(ids[1:])
    client.lists.delete_list(made.id)
    with pytest.raises(NotFoundError):
        client.lists.get_list(made.id)


def test_segment_lifecycle(client: Client) -> None:
    target = client.lists.create_list(name="Seg source")
    groups = [
        {
            "conditions": [
                {"type": "profile-group-membership", "is_member": True, "group_ids": [target.id]}
            ]
        }
    ]
    seg = client.segments.create_segment(name="Members", condition_groups=groups)
    assert seg["name"] == "Members"
    assert client.segments.get_segment(seg.id).id == seg.id
    listed = [s.id for s in client.segments.iter_segments(filter=F.any("name", ["Members"]))]
    assert listed == [seg.id]
    starred = client.segments.update_segment(seg.id, is_starred=True, name="Stars")
    assert starred["is_starred"] is True
    assert starred["name"] == "Stars"
    assert list(client.segments.iter_profiles_for_segment(seg.id)) == []
    client.segments.delete_segment(seg.id)
    with pytest.raises(NotFoundError):
        client.segments.get_segment(seg.id)
    client.lists.delete_list(target.id)


def test_subscribe_and_unsubscribe_email_and_sms(client: Client) -> None:
    target = client.lists.create_list(name="Newsletter")
    people = [Contact(email="sub1@example.com", phone_number="+15005550111"), "sub2@example.com"]
    assert (
        client.subscriptions.bulk_subscribe_profiles(
            people, list_id=target.id, channels=["email", "sms"]
        )
        == 2
    )
    found = client.profiles.get_profiles(
        filter=F.equals("email", "sub1@example.com"),
        additional_fields={"profile": ["subscriptions"]},
    )
    subs = found[0]["subscriptions"]
    assert subs["email"]["marketing"]["consent"] == "SUBSCRIBED"
    assert subs["sms"]["marketing"]["consent"] == "SUBSCRIBED"
    # Without a list, unsubscribing is global (with a list, only that membership ends).
    client.subscriptions.bulk_unsubscribe_profiles(["sub1@example.com"])
    after = client.profiles.get_profiles(
        filter=F.equals("email", "sub1@example.com"),
        additional_fields={"profile": ["subscriptions"]},
    )
    assert after[0]["subscriptions"]["email"]["marketing"]["consent"] == "UNSUBSCRIBED"
    client.lists.delete_list(target.id)


def test_bad_input_is_refused_before_sending(client: Client, server: EmulatorServer) -> None:
    with pytest.raises(ValidationError) as bad:
        client.profiles.create_profile(email="not-an-email")
    assert bad.value.field == "email"
    with pytest.raises(ValidationError) as bad_sort:
        client.profiles.get_profiles(sort="shoe_size")
    assert bad_sort.value.field == "sort"


def test_accounts_and_metrics(client: Client) -> None:
    accounts = client.accounts.get_accounts()
    assert len(accounts) == 1
    assert client.accounts.get_account(accounts[0].id or "").id == accounts[0].id
    metrics = client.metrics.get_metrics()
    assert metrics
    assert client.metrics.get_metric(metrics[0].id or "")["name"] == metrics[0]["name"]
    assert list(client.metrics.iter_metrics())
