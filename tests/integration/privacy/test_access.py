"""Access reports against the emulator: what they say is what the account holds."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from kbridge.emulator import EmulatorServer
from kbridge.privacy import (
    MemoryAuditLog,
    Subject,
    SubjectReport,
    access_reports,
    parse_subject,
    read_log,
    report_rows,
)
from tests.integration.privacy.conftest import (
    add_to_list,
    all_of,
    client_for,
    create_profile,
    ok,
    place_order,
)

pytestmark = pytest.mark.integration


def reports_for(
    server: EmulatorServer, subjects: list[Subject], audit: MemoryAuditLog, *, events: bool
) -> list[SubjectReport]:
    async def go() -> list[SubjectReport]:
        async with client_for(server) as client:
            return await access_reports(client, subjects, audit=audit, events=events)

    return asyncio.run(go())


def truth(http: httpx.Client, pid: str) -> dict[str, Any]:
    """The profile as the emulator serves it, read without kbridge's client."""
    params = {"additional-fields[profile]": "subscriptions"}
    profile = ok(http.get(f"/api/profiles/{pid}", params=params))["data"]
    events = all_of(http, "/api/events", {"filter": f'equals(profile_id,"{pid}")'})
    return {
        "attributes": profile["attributes"],
        "lists": {r["id"] for r in all_of(http, f"/api/profiles/{pid}/lists")},
        "segments": {r["id"] for r in all_of(http, f"/api/profiles/{pid}/segments")},
        "events": {e["id"] for e in events},
    }


def seeded_member(http: httpx.Client) -> dict[str, Any]:
    """A generated profile with an email that belongs to a segment and has events."""
    for profile in all_of(http, "/api/profiles"):
        email = profile["attributes"]["email"]
        if not email:
            continue
        facts = truth(http, profile["id"])
        if facts["segments"] and facts["events"]:
            return {"id": profile["id"], "email": email, **facts}
    raise AssertionError("the seeded account has no profile in a segment with events")


def test_a_report_holds_exactly_what_the_emulator_holds(
    server: EmulatorServer, http: httpx.Client
) -> None:
    seeded = seeded_member(http)
    audit = MemoryAuditLog()
    (report,) = reports_for(server, [parse_subject(seeded["email"])], audit, events=True)
    assert report.status == "reported"
    assert report.error is None
    (profile,) = report.profiles
    assert profile.id == seeded["id"]
    expected = dict(seeded["attributes"])
    consent = expected.pop("subscriptions")
    assert dict(profile.attributes) == expected
    assert profile.consent == consent
    assert {m["id"] for m in profile.lists} == seeded["lists"]
    assert {m["id"] for m in profile.segments} == seeded["segments"]
    assert all(m["name"] for m in (*profile.lists, *profile.segments))
    assert profile.events is not None
    assert {e["id"] for e in profile.events} == seeded["events"]
    times = [e["datetime"] for e in profile.events]
    assert times == sorted(times)
    (row,) = report_rows([report])
    assert (row["profile_id"], row["email"], row["events"]) == (
        seeded["id"],
        seeded["email"],
        len(seeded["events"]),
    )
    assert row["email_consent"] == consent["email"]["marketing"]["consent"]


def test_case_variants_and_phone_find_every_profile_once(
    server: EmulatorServer, http: httpx.Client
) -> None:
    by_email = create_profile(http, email="mixed.case@example.com", first_name="Mia")
    by_phone = create_profile(http, phone_number="+15005550111", first_name="Phil")
    lid = all_of(http, "/api/lists")[0]["id"]
    add_to_list(http, lid, by_email)
    place_order(http, "mixed.case@example.com", "A1")
    subjects = [
        Subject(email="Mixed.Case@Example.COM", phone_number="+15005550111"),
        parse_subject("nobody-here@example.com"),
    ]
    audit = MemoryAuditLog()
    both, nobody = reports_for(server, subjects, audit, events=False)
    assert [p.id for p in both.profiles] == [by_email, by_phone]
    assert lid in [m["id"] for m in both.profiles[0].lists]
    assert both.profiles[0].events is None  # only with events=True
    assert nobody.profiles == ()
    assert nobody.status == "reported"
    assert report_rows([nobody]) == [
        dict.fromkeys(report_rows([nobody])[0]) | {"subject": nobody.subject.label,
                                                         "status": "reported"}
    ]  # fmt: skip
    entries = read_log(audit)
    assert [(e.action, e.outcome) for e in entries] == [("access", "reported")] * 2
    assert {e.subject_hash for e in entries} == {both.subject_hash, nobody.subject_hash}
    logged = {e.subject_hash: e.profile_ids for e in entries}
    assert logged[both.subject_hash] == (by_email, by_phone)
    assert all(e.batch_id == entries[0].batch_id for e in entries)
    assert "example" not in repr([e.to_dict() for e in entries]).lower()
