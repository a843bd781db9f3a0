"""Deletions against the emulator: requested, confirmed on the simulated clock, purged
from the warehouse, guarded, resumable — and every step in the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kbridge import sync
from kbridge.api import PermissionDeniedError
from kbridge.core import ManualClock
from kbridge.emulator import EmulatorServer
from kbridge.privacy import (
    AuditLog,
    DeletionBatch,
    DeletionResult,
    MemoryAuditLog,
    PollPolicy,
    Subject,
    execute_deletions,
    parse_subject,
    plan_deletions,
    read_log,
)
from kbridge.warehouse import open_warehouse
from kbridge.warehouse.duckdb import DuckDBWarehouse
from tests.integration.privacy.conftest import (
    EmulatorClock,
    add_to_list,
    all_of,
    client_for,
    create_profile,
    place_order,
    profile_exists,
)

pytestmark = pytest.mark.integration


def delete(
    server: EmulatorServer,
    subjects: Sequence[Subject],
    audit: AuditLog,
    *,
    clock: ManualClock | None = None,
    allow_ambiguous: bool = False,
    allow_unmatched: bool = False,
    poll: PollPolicy | None = None,
    warehouse: Any = None,
    key: str | None = None,
) -> tuple[DeletionBatch, list[DeletionResult]]:
    async def go() -> tuple[DeletionBatch, list[DeletionResult]]:
        async with client_for(server) if key is None else _client(server, key) as client:
            batch = await plan_deletions(client, subjects, audit=audit)
            results = await execute_deletions(
                client,
                batch,
                audit=audit,
                allow_ambiguous=allow_ambiguous,
                allow_unmatched=allow_unmatched,
                warehouse=warehouse,
                clock=clock or EmulatorClock(server),
                poll=poll,
            )
            return batch, results

    return asyncio.run(go())


def _client(server: EmulatorServer, key: str) -> Any:
    from kbridge.api import AsyncClient

    return AsyncClient(key, base_url=server.base_url, clock=ManualClock())


@contextmanager
def synced(server: EmulatorServer, tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """The account's profiles, list memberships and events, synced into DuckDB."""
    wh = open_warehouse(f"duckdb:///{tmp_path / 'kb.duckdb'}")
    assert isinstance(wh, DuckDBWarehouse)

    async def go() -> None:
        async with client_for(server) as client:
            await sync.run(client, wh, streams=["profiles", "lists", "list_memberships", "events"])

    try:
        asyncio.run(go())
        yield wh
    finally:
        wh.close()


def rows_about(wh: DuckDBWarehouse, pid: str) -> dict[str, int]:
    counts = {}
    for table, column in (("profiles", "id"), ("list_memberships", "profile_id"),
                          ("events", "profile_id")):  # fmt: skip
        sql = f'SELECT count(*) FROM "{table}" WHERE "{column}" = ?'  # noqa: S608
        counts[table] = int(wh.query(sql, [pid])[0][0])
    return counts


def test_a_deletion_is_confirmed_after_the_backoff_and_purged_from_the_warehouse(
    server: EmulatorServer, http: httpx.Client, tmp_path: Path
) -> None:
    pid = create_profile(http, email="erase.me@example.com", first_name="Erin")
    add_to_list(http, all_of(http, "/api/lists")[0]["id"], pid)
    place_order(http, "erase.me@example.com", "E1")
    other = all_of(http, "/api/profiles")[0]["id"]
    with synced(server, tmp_path) as wh:
        assert rows_about(wh, pid) == {"profiles": 1, "list_memberships": 1, "events": 1}
        before_other = rows_about(wh, other)
        audit = MemoryAuditLog()
        clock = EmulatorClock(server)
        _, (result,) = delete(
            server, [parse_subject("Erase.Me@example.com")], audit, clock=clock, warehouse=wh
        )
        assert (result.outcome, result.profile_ids, result.purged) == ("confirmed", (pid,), 1)
        # the emulator deletes 60 simulated seconds after the request: checks at 0, 5, 15, 35, 75
        assert clock.slept == [5, 10, 20, 40]
        assert result.confirmed_at is not None
        assert result.requested_at is not None
        assert (result.confirmed_at - result.requested_at).total_seconds() == 75
        assert not profile_exists(http, pid)
        assert rows_about(wh, pid) == {"profiles": 0, "list_memberships": 0, "events": 0}
        assert rows_about(wh, other) == before_other
    entries = read_log(audit)
    assert [e.outcome for e in entries] == ["requested", "confirmed"]
    assert all(e.profile_ids == (pid,) for e in entries)
    assert entries[1].confirmed_at == result.confirmed_at


def test_a_timeout_is_pending_and_a_rerun_only_confirms(
    server: EmulatorServer, http: httpx.Client
) -> None:
    pid = create_profile(http, email="slow.erase@example.com")
    audit = MemoryAuditLog()
    subjects = [parse_subject("slow.erase@example.com")]
    short = PollPolicy(first_delay=5, timeout=30)
    clock = EmulatorClock(server)
    _, (first,) = delete(server, subjects, audit, clock=clock, poll=short)
    assert first.outcome == "pending"
    assert first.confirmed_at is None
    assert clock.slept == [5, 10, 15]  # never past the deadline
    assert profile_exists(http, pid)
    batch, (second,) = delete(server, subjects, audit)
    assert batch.plans[0].resuming
    assert (second.outcome, second.profile_ids) == ("confirmed", (pid,))
    assert not profile_exists(http, pid)
    outcomes = [e.outcome for e in read_log(audit)]
    assert outcomes == ["requested", "pending", "confirmed"]  # requested once only


def test_the_guard_refuses_a_subject_matching_two_profiles_unless_ambiguity_is_allowed(
    server: EmulatorServer, http: httpx.Client
) -> None:
    mail = create_profile(http, email="two.people@example.com")
    phone = create_profile(http, phone_number="+15005550123")
    subject = Subject(email="two.people@example.com", phone_number="+15005550123")
    audit = MemoryAuditLog()
    batch, (refused,) = delete(server, [subject], audit)
    assert batch.ambiguous == batch.plans
    assert [m.id for m in batch.plans[0].matches] == [mail, phone]
    assert (refused.outcome, refused.profile_ids) == ("refused", (mail, phone))
    assert profile_exists(http, mail)
    assert profile_exists(http, phone)
    # what a scripted --yes allows (requests for unmatched subjects) is not a licence to
    # delete two people: an email and a phone of different profiles may be a typo
    _, (still,) = delete(server, [subject], audit, allow_unmatched=True)
    assert (still.outcome, still.profile_ids) == ("refused", (mail, phone))
    assert profile_exists(http, mail)
    assert profile_exists(http, phone)
    entries = read_log(audit)
    assert [(e.outcome, e.profile_ids) for e in entries] == [("refused", (mail, phone))] * 2
    assert all(e.detail is not None and "2 profiles" in e.detail for e in entries)
    _, (done,) = delete(server, [subject], audit, allow_ambiguous=True)
    assert (done.outcome, done.profile_ids) == ("confirmed", (mail, phone))
    assert not profile_exists(http, mail)
    assert not profile_exists(http, phone)


def test_no_match_still_requests_by_identifier_once_allowed(
    server: EmulatorServer,
) -> None:
    audit = MemoryAuditLog()
    subjects = [parse_subject("never.seen@example.com")]
    # "not exactly one" includes none: the guard wants confirmation for it too
    _, (refused,) = delete(server, subjects, audit)
    assert refused.outcome == "refused"
    _, (gone,) = delete(server, subjects, audit, allow_unmatched=True)
    assert (gone.outcome, gone.profile_ids) == ("not_found", ())
    twice = [*subjects, parse_subject("Never.Seen@example.com")]  # one person, two spellings
    # the batch is finished: the same subject again is a new request, asked for again
    batch, (again,) = delete(server, twice, audit, allow_unmatched=True)
    assert len(batch.plans) == 1
    assert not again.skipped
    assert again.outcome == "not_found"
    assert [e.outcome for e in read_log(audit)] == [
        "refused", "requested", "not_found", "requested", "not_found"
    ]  # fmt: skip


class InterruptAfter(MemoryAuditLog):
    """An audit log whose n-th final entry fails: the batch stops there, like a kill."""

    def __init__(self, inner: MemoryAuditLog, n: int) -> None:
        super().__init__(key=inner.audit_key())
        self.inner = inner
        self.left = n

    def append_audit(self, **fields: Any) -> int:
        if fields["outcome"] == "confirmed":
            if self.left == 0:
                raise RuntimeError("interrupted")
            self.left -= 1
        return self.inner.append_audit(**fields)

    def audit_entries(self, **filters: Any) -> list[dict[str, Any]]:
        return self.inner.audit_entries(**filters)


def test_an_interrupted_batch_resumes_without_repeating_finished_subjects(
    server: EmulatorServer, http: httpx.Client
) -> None:
    emails = [f"batch{i}@example.com" for i in range(12)]
    ids = [create_profile(http, email=e) for e in emails]
    subjects = [parse_subject(e) for e in emails]
    audit = MemoryAuditLog()
    with pytest.raises(RuntimeError, match="interrupted"):
        delete(server, subjects, InterruptAfter(audit, 5))
    finished = {e.subject_hash for e in read_log(audit) if e.outcome == "confirmed"}
    assert len(finished) == 5
    batch, results = delete(server, subjects, audit)
    assert {p.subject_hash for p in batch.plans if p.finished} == finished
    assert sum(r.skipped for r in results) == 5
    assert [r.outcome for r in results] == ["confirmed"] * 12
    assert [r.profile_ids for r in results] == [(pid,) for pid in ids]
    assert not any(profile_exists(http, pid) for pid in ids)
    log = read_log(audit)
    for hashed in {r.subject_hash for r in results}:
        mine = [e.outcome for e in log if e.subject_hash == hashed]
        assert mine.count("requested") == 1
        assert mine.count("confirmed") == 1


def test_a_key_without_the_privacy_scope_stops_the_batch(
    server: EmulatorServer, http: httpx.Client
) -> None:
    pid = create_profile(http, email="kept@example.com")
    reply = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["profiles:read"]})
    reply.raise_for_status()
    audit = MemoryAuditLog()
    with pytest.raises(PermissionDeniedError):
        delete(server, [parse_subject("kept@example.com")], audit, key=reply.json()["key"])
    assert profile_exists(http, pid)
    assert read_log(audit) == []


class RefuseDeletions(httpx.AsyncBaseTransport):
    """The emulator, except that deletion requests get a 400 echoing the address
    (some of Klaviyo's errors quote the identifier) and lookups of one address a 500."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/data-privacy-deletion-jobs"):
            detail = "cannot delete doomed@example.com"
            error = {"id": "e1", "status": 400, "code": "invalid", "detail": detail}
            return httpx.Response(400, json={"errors": [error]})
        if "lookup-fails" in str(request.url):
            return httpx.Response(500, json={"errors": [{"status": 500, "code": "error"}]})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_refused_requests_fail_that_subject_only_and_keep_the_address_out_of_the_log(
    server: EmulatorServer, http: httpx.Client
) -> None:
    from kbridge.api import AsyncClient, ClientConfig, RetryPolicy

    doomed = create_profile(http, email="doomed@example.com")
    fine = create_profile(http, email="fine@example.com")
    audit = MemoryAuditLog()
    subjects = [parse_subject(e) for e in ("doomed@example.com", "lookup-fails@example.com")]

    async def go() -> list[DeletionResult]:
        async with AsyncClient(
            server.api_key,
            base_url=server.base_url,
            clock=ManualClock(),
            transport=RefuseDeletions(),
            config=ClientConfig(retry=RetryPolicy(max_attempts=1)),
        ) as client:
            batch = await plan_deletions(client, subjects, audit=audit)
            return await execute_deletions(client, batch, audit=audit, clock=EmulatorClock(server))

    refused, broken = asyncio.run(go())
    assert (refused.outcome, refused.detail) == ("failed", "InvalidRequestError 400 invalid")
    assert broken.outcome == "failed"
    assert broken.detail is not None
    assert broken.detail.startswith("ServerError 500")
    assert profile_exists(http, doomed)
    assert profile_exists(http, fine)
    log = read_log(audit)
    assert sorted(e.outcome for e in log) == ["failed", "failed"]
    assert "example.com" not in repr([e.to_dict() for e in log])


class CountingTransport(httpx.AsyncBaseTransport):
    """The emulator, counting requests by method and path."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: dict[tuple[str, str], int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        self.calls[key] = self.calls.get(key, 0) + 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_large_batch_shares_its_confirmation_searches(
    server: EmulatorServer, http: httpx.Client
) -> None:
    from kbridge.api import AsyncClient

    emails = [f"many{i}@example.com" for i in range(150)]
    ids = [create_profile(http, email=e) for e in emails]
    audit = MemoryAuditLog()
    counting = CountingTransport()
    done: list[DeletionResult] = []

    async def go() -> list[DeletionResult]:
        async with AsyncClient(
            server.api_key, base_url=server.base_url, clock=ManualClock(), transport=counting
        ) as client:
            batch = await plan_deletions(client, [parse_subject(e) for e in emails], audit=audit)
            lookups = counting.calls[("GET", "/api/profiles")]
            results = await execute_deletions(
                client, batch, audit=audit, clock=EmulatorClock(server), on_done=done.append
            )
            counting.calls[("GET", "/api/profiles")] -= lookups
            return results

    results = asyncio.run(go())
    assert [r.outcome for r in results] == ["confirmed"] * 150
    assert [r.profile_ids for r in results] == [(pid,) for pid in ids]
    assert len(done) == 150
    assert counting.calls[("POST", "/api/data-privacy-deletion-jobs")] == 150
    # one search per 100 outstanding ids a round, not one per subject
    assert counting.calls[("GET", "/api/profiles")] < 30
    assert not any(profile_exists(http, pid) for pid in ids[::10])


def test_the_least_scopes_planned_for_privacy_delete_are_enough_to_delete_and_purge(
    server: EmulatorServer, http: httpx.Client, tmp_path: Path
) -> None:
    from kbridge.connections.scopes import plan_scopes

    pid = create_profile(http, email="least.scopes@example.com")
    scopes = list(plan_scopes(["privacy-delete"]).scopes)
    reply = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": scopes})
    reply.raise_for_status()
    with synced(server, tmp_path) as wh:
        _, (result,) = delete(
            server,
            [parse_subject("least.scopes@example.com")],
            MemoryAuditLog(),
            warehouse=wh,
            key=reply.json()["key"],
        )
        assert (result.outcome, result.purged) == ("confirmed", 1)
        assert rows_about(wh, pid)["profiles"] == 0


def test_a_repeat_request_after_a_finished_batch_deletes_the_new_profile(
    server: EmulatorServer, http: httpx.Client
) -> None:
    first_id = create_profile(http, email="again@example.com")
    audit = MemoryAuditLog()
    subjects = [parse_subject("again@example.com")]
    first_batch, (first,) = delete(server, subjects, audit)
    assert (first.outcome, first.profile_ids) == ("confirmed", (first_id,))
    # the person signs up again, then asks to be erased again: a new request, not a rerun
    second_id = create_profile(http, email="again@example.com")
    second_batch, (second,) = delete(server, subjects, audit)
    assert second_batch.batch_id != first_batch.batch_id
    assert not second.skipped
    assert (second.outcome, second.profile_ids) == ("confirmed", (second_id,))
    assert not profile_exists(http, second_id)
    log = read_log(audit)
    assert [(e.batch_id, e.outcome) for e in log] == [
        (first_batch.batch_id, "requested"),
        (first_batch.batch_id, "confirmed"),
        (second_batch.batch_id, "requested"),
        (second_batch.batch_id, "confirmed"),
    ]


def _stored_bytes(path: Path) -> bytes:
    """The database file and any write-ahead log beside it, as stored on disk."""
    wal = path.with_name(path.name + ".wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_erased_identifiers_leave_no_bytes_in_the_duckdb_file(
    server: EmulatorServer, http: httpx.Client, tmp_path: Path
) -> None:
    people = [(f"erased.bytes{i}@example.com", f"+1500555910{i}") for i in range(5)]
    ids = [create_profile(http, email=e, phone_number=p) for e, p in people]
    for email, _ in people:
        place_order(http, email, f"B-{email}")
    create_profile(http, email="kept.bytes@example.com", phone_number="+15005559199")
    path = tmp_path / "kb.duckdb"
    with synced(server, tmp_path) as wh:
        wh.query("CHECKPOINT")
        before = _stored_bytes(path)
        assert all(e.encode() in before for e, _ in people)  # the grep can see them
        _, results = delete(server, [parse_subject(e) for e, _ in people], MemoryAuditLog(),
                            warehouse=wh)  # fmt: skip
        assert [(r.outcome, r.purged) for r in results] == [("confirmed", 1)] * 5
        assert [r.profile_ids for r in results] == [(pid,) for pid in ids]
        assert wh.query("SELECT count(*) FROM profiles WHERE email LIKE 'erased.bytes%'") == [(0,)]
        assert wh.query("SELECT count(*) FROM profiles WHERE email = 'kept.bytes@example.com'") == [
            (1,)
        ]
        wh.query("CHECKPOINT")
        during = _stored_bytes(path)
    after = _stored_bytes(path)
    for stored in (during, after):
        assert b"kept.bytes@example.com" in stored  # the rest of the warehouse is still there
        for email, phone in people:
            assert email.encode() not in stored
            assert phone.encode() not in stored


def test_a_deletion_purges_a_postgresql_warehouse_too(
    server: EmulatorServer, http: httpx.Client, postgres_url: str
) -> None:
    pid = create_profile(http, email="pg.erase@example.com", phone_number="+15005559201")
    place_order(http, "pg.erase@example.com", "PG1")
    kept = create_profile(http, email="pg.kept@example.com")
    wh = open_warehouse(postgres_url)
    try:

        async def go() -> None:
            async with client_for(server) as client:
                await sync.run(client, wh, streams=["profiles", "events"])

        asyncio.run(go())
        count = 'SELECT count(*) FROM "{}" WHERE "{}" = ?'
        assert wh.query(count.format("profiles", "id"), [pid]) == [(1,)]
        assert wh.query(count.format("events", "profile_id"), [pid]) == [(1,)]
        _, (result,) = delete(
            server, [parse_subject("pg.erase@example.com")], MemoryAuditLog(), warehouse=wh
        )
        assert (result.outcome, result.purged) == ("confirmed", 1)
        assert wh.query(count.format("profiles", "id"), [pid]) == [(0,)]
        assert wh.query(count.format("events", "profile_id"), [pid]) == [(0,)]
        assert wh.query(count.format("profiles", "id"), [kept]) == [(1,)]
    finally:
        wh.close()


def test_a_refused_subject_does_not_keep_a_finished_run_open_for_a_repeat_request(
    server: EmulatorServer, http: httpx.Client
) -> None:
    create_profile(http, email="again.two@example.com")
    create_profile(http, email="mixed.row@example.com")
    create_profile(http, phone_number="+15005559301")
    subjects = [
        parse_subject("again.two@example.com"),
        Subject(email="mixed.row@example.com", phone_number="+15005559301"),
    ]
    audit = MemoryAuditLog()
    _, (done, refused) = delete(server, subjects, audit)
    assert (done.outcome, refused.outcome) == ("confirmed", "refused")
    # nothing was left in flight: the same list later is a new request for everyone
    returned = create_profile(http, email="again.two@example.com")
    _, (again, still) = delete(server, subjects, audit)
    assert (again.skipped, again.outcome, again.profile_ids) == (False, "confirmed", (returned,))
    assert still.outcome == "refused"
    assert not profile_exists(http, returned)
