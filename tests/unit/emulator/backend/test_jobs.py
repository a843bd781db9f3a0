from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.errors import InvalidError, NotImplementedOperationError
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page, Query
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, caller, event_body, make_backend

pytestmark = pytest.mark.unit


@pytest.fixture
def slow(clock: SimClock) -> EmulatorBackend:
    """Jobs take 60 simulated seconds."""
    return make_backend(clock, profiles=0, events=0, job_delay_seconds=60)


def _list(call: Caller, name: str = "L", opt_in: str = "single_opt_in") -> str:
    body = {"data": {"type": "list", "attributes": {"name": name, "opt_in_process": opt_in}}}
    out = call("create_list", body=body).data
    assert isinstance(out, Resource)
    return out.id


def _subscribe_body(list_id: str | None, *emails: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-subscription-bulk-create-job",
        "attributes": {
            "profiles": {
                "data": [
                    {
                        "type": "profile",
                        "attributes": {
                            "email": e,
                            "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
                        },
                    }
                    for e in emails
                ]
            }
        },
    }
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def _unsubscribe_body(list_id: str | None, email: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "profile-subscription-bulk-delete-job",
        "attributes": {
            "profiles": {
                "data": [
                    {
                        "type": "profile",
                        "attributes": {
                            "email": email,
                            "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
                        },
                    }
                ]
            }
        },
    }
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def _consent(b: EmulatorBackend, email: str) -> str:
    p = b.store.find_identifier("email", email)
    assert p is not None
    return p.email_consent


def test_subscribe_applies_only_after_the_delay(slow: EmulatorBackend, clock: SimClock) -> None:
    call = caller(slow)
    lid = _list(call)
    out = call("bulk_subscribe_profiles", body=_subscribe_body(lid, "s@example.com"))
    assert out.status == 202
    assert out.data is None
    slow.run_due()
    assert slow.store.find_identifier("email", "s@example.com") is None
    clock.advance(61)
    slow.run_due()
    assert _consent(slow, "s@example.com") == "SUBSCRIBED"
    p = slow.store.find_identifier("email", "s@example.com")
    assert p is not None
    assert p.seq in slow.store.lists[lid].members


def test_unsubscribe_from_a_list_not_joined_is_global(
    empty: EmulatorBackend, ecall: Caller
) -> None:
    joined, other = _list(ecall, "Joined"), _list(ecall, "Other")
    ecall("bulk_subscribe_profiles", body=_subscribe_body(joined, "u@example.com"))
    empty.run_due()
    ecall("bulk_unsubscribe_profiles", body=_unsubscribe_body(joined, "u@example.com"))
    empty.run_due()
    # on the list: removed from it and suppressed for that list only
    p = empty.store.find_identifier("email", "u@example.com")
    assert p is not None
    assert p.seq not in empty.store.lists[joined].members
    assert p.email_consent == "SUBSCRIBED"
    assert [x[0] for x in p.email_list_suppressions] == [joined]
    ecall("bulk_unsubscribe_profiles", body=_unsubscribe_body(other, "u@example.com"))
    empty.run_due()
    assert p.email_consent == "UNSUBSCRIBED"


def test_subscribe_rejects_consented_at_without_historical_import(ecall: Caller) -> None:
    body = _subscribe_body(None, "h@example.com")
    marketing = body["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]
    marketing["email"]["marketing"]["consented_at"] = "2025-01-01T00:00:00Z"
    with pytest.raises(InvalidError) as err:
        ecall("bulk_subscribe_profiles", body=body)
    assert err.value.pointer is not None
    assert err.value.pointer.endswith("consented_at")


def test_bulk_import_job_lifecycle_with_import_errors(
    slow: EmulatorBackend, clock: SimClock
) -> None:
    call = caller(slow)
    lid = _list(call)
    rows = [
        {"type": "profile", "attributes": {"email": "ok1@example.com", "first_name": "A"}},
        {"type": "profile", "attributes": {"email": "broken"}},
        {"type": "profile", "attributes": {"email": "ok2@example.com"}},
    ]
    body = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": rows}},
            "relationships": {"lists": {"data": [{"type": "list", "id": lid}]}},
        }
    }
    out = call("bulk_import_profiles", body=body)
    assert out.status == 202
    assert isinstance(out.data, Resource)
    job_id = out.data.id
    assert out.data.attributes["status"] == "queued"
    clock.advance(60)
    slow.run_due()
    job = call("get_bulk_import_profiles_job", job_id=job_id).data
    assert isinstance(job, Resource)
    assert job.attributes["status"] == "complete"
    assert (job.attributes["completed_count"], job.attributes["failed_count"]) == (2, 1)
    errors = call("get_errors_for_bulk_import_profiles_job", id=job_id).data
    assert isinstance(errors, Page)
    assert errors.items[0].attributes["source"]["pointer"].endswith("/1/attributes/email")
    assert errors.items[0].attributes["original_payload"] == rows[1]
    profiles = call("get_profiles_for_bulk_import_profiles_job", id=job_id).data
    assert isinstance(profiles, Page)
    assert {r.attributes["email"] for r in profiles.items} == {"ok1@example.com", "ok2@example.com"}
    assert len(slow.store.lists[lid].members) == 2
    listed = call("get_bulk_import_profiles_jobs").data
    assert isinstance(listed, Page)
    assert [r.id for r in listed.items] == [job_id]


def test_suppress_and_unsuppress_jobs(empty: EmulatorBackend, ecall: Caller) -> None:
    body = {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {
                "profiles": {
                    "data": [{"type": "profile", "attributes": {"email": "x@example.com"}}]
                }
            },
        }
    }
    job = ecall("bulk_suppress_profiles", body=body).data
    assert isinstance(job, Resource)
    assert job.attributes["total_count"] == 1
    empty.run_due()
    p = empty.store.find_identifier("email", "x@example.com")
    assert p is not None
    assert [r for r, _ in p.email_suppression] == ["USER_SUPPRESSED"]
    got = ecall("get_bulk_suppress_profiles_job", job_id=job.id).data
    assert isinstance(got, Resource)
    assert got.attributes["completed_count"] == 1
    body["data"]["type"] = "profile-suppression-bulk-delete-job"
    ecall("bulk_unsuppress_profiles", body=body)
    empty.run_due()
    assert p.email_suppression == []


def test_bulk_events_are_applied_as_a_job(empty: EmulatorBackend, ecall: Caller) -> None:
    one = event_body("Bulk", {"email": "b@example.com"})["data"]["attributes"]
    body = {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": one["profile"],
                                "events": {
                                    "data": [
                                        {
                                            "type": "event",
                                            "attributes": {
                                                "properties": {"n": k},
                                                "metric": one["metric"],
                                            },
                                        }
                                        for k in range(3)
                                    ]
                                },
                            },
                        }
                    ]
                }
            },
        }
    }
    assert ecall("bulk_create_events", body=body).status == 202
    assert "Bulk" not in empty.store.metric_by_name
    empty.run_due()
    assert len(empty.store.events) == 3


def test_unimplemented_operation_is_501(backend: EmulatorBackend) -> None:
    from dataclasses import replace

    from kbridge import catalog
    from kbridge.emulator.backend.call import Call

    # every operation of the spec is emulated: one a later spec adds has no route
    later = replace(catalog.get("get_profile"), operation_id="get_profile_history")
    assert later.operation_id not in backend.implemented
    with pytest.raises(NotImplementedOperationError) as err:
        backend.dispatch(Call(later, {"id": "x"}, Query()))
    assert "get_profile_history" in err.value.detail


def test_reset_restores_the_generated_account(backend: EmulatorBackend, call: Caller) -> None:
    before = len(backend.store.profiles)
    call(
        "create_profile",
        body={"data": {"type": "profile", "attributes": {"email": "r@example.com"}}},
    )
    assert len(backend.store.profiles) == before + 1
    backend.reset()
    assert len(backend.store.profiles) == before
    assert backend.store.find_identifier("email", "r@example.com") is None
    assert backend.truth()["aggregates"]["profiles"] == before


def test_bulk_limits_are_enforced(ecall: Caller) -> None:
    one = event_body("Bulk", {"email": "b@example.com"})["data"]["attributes"]
    events = [{"type": "event", "attributes": {"properties": {}, "metric": one["metric"]}}] * 1001
    item = {"type": "event-bulk-create", "attributes": {"profile": one["profile"],
                                                        "events": {"data": events}}}  # fmt: skip
    body = {"data": {"type": "event-bulk-create-job",
                     "attributes": {"events-bulk-create": {"data": [item]}}}}  # fmt: skip
    with pytest.raises(InvalidError, match="1000"):
        ecall("bulk_create_events", body=body)
    rows = [{"type": "profile", "attributes": {"email": f"p{k}@example.com"}} for k in range(101)]
    suppress = {"data": {"type": "profile-suppression-bulk-create-job",
                         "attributes": {"profiles": {"data": rows}}}}  # fmt: skip
    with pytest.raises(InvalidError, match="100"):
        ecall("bulk_suppress_profiles", body=suppress)


def test_every_implemented_operation_is_a_catalogue_operation(empty: EmulatorBackend) -> None:
    from kbridge import catalog

    assert len(empty.implemented) >= 50
    for op in empty.implemented:
        assert catalog.get(op).operation_id == op


def test_a_bulk_import_is_processing_for_as_long_as_its_size_takes(clock: SimClock) -> None:
    # 60 s in the queue, then 100 profiles a second: 300 profiles take 3 s more
    b = make_backend(
        clock, profiles=0, events=0, job_delay_seconds=60, import_profiles_per_second=100
    )
    call = caller(b)
    rows = [{"type": "profile", "attributes": {"email": f"r{i}@example.com"}} for i in range(300)]
    body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}}
    job_id = call("bulk_import_profiles", body=body).data.id  # type: ignore[union-attr]

    def status() -> tuple[str, int, str | None]:
        b.run_due()
        job = call("get_bulk_import_profiles_job", job_id=job_id).data
        assert isinstance(job, Resource)
        a = job.attributes
        return a["status"], a["completed_count"], a["started_at"]

    clock.advance(59)
    assert status() == ("queued", 0, None)
    clock.advance(2)
    state, done, started = status()
    assert (state, done) == ("processing", 0)
    assert started is not None
    clock.advance(1.5)
    assert status()[0] == "processing"
    assert b.store.find_identifier("email", "r0@example.com") is None
    clock.advance(1)
    assert status()[:2] == ("complete", 300)
    assert b.store.find_identifier("email", "r299@example.com") is not None


def test_a_bulk_import_leaves_every_profile_order_as_a_full_sort_would(
    backend: EmulatorBackend, clock: SimClock
) -> None:
    # the orders are brought up to date once per job: new profiles, existing ones
    # updated (twice, in one job), a repeated new email and a refused row among them
    call = caller(backend)
    store = backend.store
    existing = [p.email for p in store.profiles[:150:3] if p.email]
    rows: list[dict[str, Any]] = [
        {"type": "profile", "attributes": {"email": e, "first_name": "Again"}} for e in existing
    ]
    rows += [{"type": "profile", "attributes": {"email": f"n{i}@example.com"}} for i in range(90)]
    rows += [
        {"type": "profile", "attributes": {"email": existing[0], "last_name": "Twice"}},
        {"type": "profile", "attributes": {"email": "n5@example.com", "first_name": "Twice"}},
        {"type": "profile", "attributes": {"email": "bad"}},
    ]
    body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}}
    for _ in range(2):  # the second time every row is an update
        call("bulk_import_profiles", body=body)
        clock.advance(1)
        backend.run_due()
        assert len(store.profiles) == 300 + 90
        seqs = [p.seq for p in store.profiles]
        for index in (store.order_id, store.order_created, store.order_updated):
            assert list(index.items) == sorted(seqs, key=index.key)
    twice = store.find_identifier("email", existing[0])
    assert twice is not None
    assert (twice.first_name, twice.last_name) == ("Again", "Twice")


def test_a_sorted_index_takes_many_records_at_once_wherever_they_fall() -> None:
    from kbridge.emulator.backend.store import SortedIndex

    keys = {s: ((s * 7919) % 101, s) for s in range(100)}
    index = SortedIndex(lambda s: keys[s], list(range(0, 100, 2)))
    index.insert_many(range(1, 100, 2))  # interleaved with what is there
    assert list(index.items) == sorted(range(100), key=keys.__getitem__)
    index.discard_many({3, 50, 99})
    index.insert_many([])
    assert list(index.items) == sorted(set(range(100)) - {3, 50, 99}, key=keys.__getitem__)


def _import_body(rows: list[Any]) -> dict[str, Any]:
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}}


def _job_attrs(call: Caller, job_id: str) -> dict[str, Any]:
    job = call("get_bulk_import_profiles_job", job_id=job_id).data
    assert isinstance(job, Resource)
    return job.attributes


def test_work_imports_a_job_in_parts_ahead_of_its_due_time(clock: SimClock) -> None:
    # 100 profiles a simulated second: 1,200 rows are due 12 s after they are accepted
    b = make_backend(clock, profiles=0, events=0, import_profiles_per_second=100)
    call = caller(b)
    rows: list[Any] = [
        {"type": "profile", "attributes": {"email": f"w{i}@example.com"}} for i in range(1200)
    ]
    rows[700] = {"type": "profile", "attributes": {"email": "not-an-email"}}
    rows[1100] = {"type": "profile", "attributes": {"phone_number": "12345"}}
    job_id = call("bulk_import_profiles", body=_import_body(rows)).data.id  # type: ignore[union-attr]

    assert b.work(500) == 0.0
    store = b.store
    assert store.find_identifier("email", "w499@example.com") is not None
    assert store.find_identifier("email", "w500@example.com") is None
    b.run_due()  # not due: the job is processing, its counts come at the end
    attrs = _job_attrs(call, job_id)
    assert (attrs["status"], attrs["completed_count"], attrs["failed_count"]) == (
        "processing",
        0,
        0,
    )
    # what a part imported is in every sorted order once a request has come
    seqs = [p.seq for p in store.profiles]
    assert len(seqs) == 500
    for index in (store.order_id, store.order_created, store.order_updated):
        assert list(index.items) == sorted(seqs, key=index.key)

    assert b.work(500) == 0.0  # rows 500-999, the bad email among them
    clock.advance(12)
    b.run_due()  # the rest at completion
    attrs = _job_attrs(call, job_id)
    assert (attrs["status"], attrs["completed_count"], attrs["failed_count"]) == (
        "complete",
        1198,
        2,
    )
    errors = call("get_errors_for_bulk_import_profiles_job", id=job_id).data
    assert isinstance(errors, Page)
    assert [e.attributes["source"]["pointer"] for e in errors.items] == [
        "/data/attributes/profiles/data/700/attributes/email",
        "/data/attributes/profiles/data/1100/attributes/phone_number",
    ]
    assert b.work(500) is None  # nothing left to do
    seqs = [p.seq for p in store.profiles]
    assert len(seqs) == 1198
    for index in (store.order_id, store.order_created, store.order_updated):
        assert list(index.items) == sorted(seqs, key=index.key)


def test_work_waits_for_a_job_to_leave_its_queue(slow: EmulatorBackend, clock: SimClock) -> None:
    call = caller(slow)
    rows = [{"type": "profile", "attributes": {"email": "q@example.com"}}]
    call("bulk_import_profiles", body=_import_body(rows))
    assert slow.work(500) == 60.0  # seconds until it leaves the 60 s queue
    assert slow.store.find_identifier("email", "q@example.com") is None
    clock.advance(60)
    assert slow.work(500) == 0.0
    assert slow.store.find_identifier("email", "q@example.com") is not None


def test_a_new_import_leaves_an_unfinished_due_import_and_what_follows_it(
    empty: EmulatorBackend, ecall: Caller, clock: SimClock
) -> None:
    rows = [{"type": "profile", "attributes": {"email": f"n{i}@example.com"}} for i in range(50)]
    job_id = ecall("bulk_import_profiles", body=_import_body(rows)).data.id  # type: ignore[union-attr]
    suppress = {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {
                "profiles": {
                    "data": [{"type": "profile", "attributes": {"email": "n1@example.com"}}]
                }
            },
        }
    }
    clock.advance(1)
    ecall("bulk_suppress_profiles", body=suppress)
    clock.advance(1)
    empty.run_due(complete_imports=False)  # both are due; the import comes first
    assert empty.store.find_identifier("email", "n1@example.com") is None
    assert empty.store.jobs[job_id].status == "queued"
    assert empty.work(20) == 0.0
    empty.run_due(complete_imports=False)  # 30 rows left: still the runner's
    assert empty.store.jobs[job_id].status == "queued"
    empty.run_due()  # a request that reads: both complete, in their order
    assert _job_attrs(ecall, job_id)["completed_count"] == 50
    p = empty.store.find_identifier("email", "n1@example.com")
    assert p is not None
    assert [r for r, _ in p.email_suppression] == ["USER_SUPPRESSED"]


def test_the_5_mb_limit_is_judged_by_the_request_length(empty: EmulatorBackend) -> None:
    from dataclasses import replace

    from kbridge import catalog
    from kbridge.emulator.backend.call import Call

    rows = [{"type": "profile", "attributes": {"email": "s@example.com"}}]
    call = Call(catalog.get("bulk_import_profiles"), {}, Query(), _import_body(rows))
    assert empty.dispatch(replace(call, body_bytes=5 * 1024 * 1024)).status == 202
    with pytest.raises(InvalidError, match="5 MB"):
        empty.dispatch(replace(call, body_bytes=5 * 1024 * 1024 + 1))


def test_import_errors_name_each_bad_row_and_spare_the_good_ones(
    empty: EmulatorBackend, ecall: Caller, clock: SimClock
) -> None:
    for attrs in ({"email": "held@example.com", "external_id": "X1"},
                  {"email": "a1@example.com"}, {"external_id": "B1"}):  # fmt: skip
        ecall("create_profile", body={"data": {"type": "profile", "attributes": attrs}})
    rows: list[Any] = [
        {"type": "profile", "attributes": {"email": "good@example.com", "first_name": "G"}},
        {"type": "profile", "attributes": {"email": "a@b"}},
        {"type": "profile", "attributes": {"phone_number": "+1"}},
        {
            "type": "profile",
            "attributes": {"email": "big@example.com", "properties": {"blob": "x" * 110_000}},
        },
        {
            "type": "profile",
            "attributes": {
                "email": "held@example.com",
                "external_id": "X2",
                "phone_number": "+15005550006",
            },
        },
        {"type": "profile", "attributes": {"email": "a1@example.com", "external_id": "B1"}},
        {"type": "profile", "attributes": {"first_name": "nobody"}},
        {"type": "event", "attributes": {"email": "e@example.com"}},
        "not an object",
        {"type": "profile", "id": "01NOSUCHPROFILE00000000000", "attributes": {}},
        {"type": "profile", "attributes": {"email": "x@example.com", "title": 5}},
        {"type": "profile", "attributes": {"email": "good@example.com", "last_name": "Again"}},
    ]
    job_id = ecall("bulk_import_profiles", body=_import_body(rows)).data.id  # type: ignore[union-attr]
    clock.advance(1)
    empty.run_due()
    attrs = _job_attrs(ecall, job_id)
    assert (attrs["completed_count"], attrs["failed_count"]) == (3, 9)
    errors = ecall("get_errors_for_bulk_import_profiles_job", id=job_id).data
    assert isinstance(errors, Page)
    base = "/data/attributes/profiles/data"
    assert [e.attributes["source"]["pointer"] for e in errors.items] == [
        f"{base}/1/attributes/email",
        f"{base}/2/attributes/phone_number",
        f"{base}/3",
        f"{base}/5/attributes/external_id",
        f"{base}/6/attributes",
        f"{base}/7/type",
        f"{base}/8/type",
        f"{base}/9/id",
        f"{base}/10/attributes/title",
    ]
    assert errors.items[2].attributes["detail"] == "A profile payload must not exceed 100 KB."
    assert errors.items[3].attributes["code"] == "duplicate_profile"
    assert errors.items[6].attributes["original_payload"] == {"value": "not an object"}
    held = empty.store.find_identifier("email", "held@example.com")
    assert held is not None
    assert (held.external_id, held.phone_number) == ("X2", "+15005550006")
    good = empty.store.find_identifier("email", "good@example.com")
    assert good is not None
    assert (good.first_name, good.last_name) == ("G", "Again")
    assert empty.store.find_identifier("email", "big@example.com") is None


def test_profiles_made_in_one_millisecond_have_ids_in_the_order_made(
    empty: EmulatorBackend, ecall: Caller, clock: SimClock
) -> None:
    rows = [{"type": "profile", "attributes": {"email": f"o{i}@example.com"}} for i in range(300)]
    ecall("bulk_import_profiles", body=_import_body(rows))
    clock.advance(1)
    empty.run_due()
    ids = [p.id for p in empty.store.profiles]
    assert ids == sorted(ids)
    assert len(set(ids)) == 300
    assert len({i[:10] for i in ids}) == 1  # one millisecond: one time part
    body = {"data": {"type": "profile", "attributes": {"email": "z@example.com"}}}
    made = ecall("create_profile", body=body)
    assert isinstance(made.data, Resource)
    assert made.data.id not in ids
    assert len(made.data.id) == 26
