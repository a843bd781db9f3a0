"""The served emulator imports bulk import rows between requests, not inside the next one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kbridge.catalog import REVISION
from kbridge.core.clock import ManualClock
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.models import JobStatus
from kbridge.emulator.simclock import SimClock
from kbridge.testing.plugin import http_client_for

pytestmark = pytest.mark.integration

PATH = "/api/profile-bulk-import-jobs"
JSONAPI = {"content-type": "application/vnd.api+json"}
#: generous: the runner needs well under a second for a job of 10,000 on a busy machine
PATIENCE = 60.0


def body(prefix: str, n: int) -> dict[str, Any]:
    rows = [
        {"type": "profile", "attributes": {"email": f"{prefix}{i}@example.com"}} for i in range(n)
    ]
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}}


Served = tuple[EmulatorServer, EmulatorBackend, SimClock]


def serve(job_delay: float) -> Iterator[Served]:
    # simulated time moves only when the test moves it
    clock = SimClock(ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC)))
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None,
                            import_profiles_per_second=200_000.0,
                            job_delay_seconds=job_delay)  # fmt: skip
    backend = EmulatorBackend(config, clock)
    with EmulatorServer(config, backend=backend) as server:
        yield server, backend, clock


@pytest.fixture
def served() -> Iterator[Served]:
    yield from serve(0.0)


@pytest.fixture
def queued() -> Iterator[Served]:
    """As ``served``, with each job queued a second (of simulated time) before it runs."""
    yield from serve(1.0)


def wait_until_imported(backend: EmulatorBackend, job_id: str) -> None:
    job = backend.store.jobs[job_id]
    done = threading.Event()
    for _ in range(int(PATIENCE / 0.05)):
        if job.done == job.total_count:
            return
        done.wait(0.05)
    raise AssertionError(f"the runner imported {job.done} of {job.total_count} rows")


def test_rows_are_imported_with_no_request_and_a_new_import_does_not_complete_the_last(
    served: tuple[EmulatorServer, EmulatorBackend, SimClock],
) -> None:
    server, backend, clock = served
    with http_client_for(server) as http:
        first = http.post(PATH, json=body("a", 10_000), headers=JSONAPI)
        assert first.status_code == 202
        first_id = first.json()["data"]["id"]
        # no request comes, and the job is not due: the server's runner imports its rows
        wait_until_imported(backend, first_id)
        assert backend.store.find_identifier("email", "a9999@example.com") is not None
        got = http.get(f"{PATH}/{first_id}").json()["data"]["attributes"]
        assert (got["status"], got["completed_count"]) == ("processing", 0)
        clock.advance(1)  # now due (10,000 rows at 200,000 a second)
        second = http.post(PATH, json=body("b", 10_000), headers=JSONAPI)
        assert second.status_code == 202
        # a new import reads no job: answering it completed none
        assert backend.store.jobs[first_id].status == JobStatus.QUEUED
        # a request that reads does, with the counts of every row
        got = http.get(f"{PATH}/{first_id}").json()["data"]["attributes"]
        assert (got["status"], got["completed_count"], got["failed_count"]) == (
            "complete",
            10_000,
            0,
        )
        second_id = second.json()["data"]["id"]
        wait_until_imported(backend, second_id)
        clock.advance(1)
        listed = http.get(PATH).json()["data"]
        assert {j["id"]: j["attributes"]["completed_count"] for j in listed} == {
            first_id: 10_000,
            second_id: 10_000,
        }
        found = http.get("/api/profiles", params={"filter": 'equals(email,"b9999@example.com")'})
        assert [p["attributes"]["email"] for p in found.json()["data"]] == ["b9999@example.com"]


def test_a_job_due_while_its_rows_wait_is_complete_for_the_request_that_reads_it(
    served: tuple[EmulatorServer, EmulatorBackend, SimClock],
) -> None:
    server, _, clock = served
    with http_client_for(server) as http:
        made = http.post(PATH, json=body("c", 3), headers=JSONAPI).json()["data"]
        clock.advance(1)
        # whether or not the runner got to its rows first, the job reads complete
        got = http.get(f"{PATH}/{made['id']}").json()["data"]["attributes"]
        assert (got["status"], got["completed_count"]) == ("complete", 3)
        emails = [
            p["attributes"]["email"]
            for p in http.get(f"{PATH}/{made['id']}/profiles").json()["data"]
        ]
        assert sorted(emails) == ["c0@example.com", "c1@example.com", "c2@example.com"]


def test_the_runner_leaves_the_loop_to_a_request_in_flight_then_imports(
    queued: tuple[EmulatorServer, EmulatorBackend, SimClock],
) -> None:
    # A 5 MB upload arrives in many reads; a part imported in each of their waits held
    # the next job's POST for tens of milliseconds. While a request is being read, the
    # runner waits for it to end.
    server, backend, clock = queued
    with http_client_for(server) as http:
        made = http.post(PATH, json=body("d", 10_000), headers=JSONAPI).json()["data"]
        job = backend.store.jobs[made["id"]]
        assert job.done == 0  # queued (1 s of delay): the runner has not started
        # a request whose body is still on its way, from a socket of our own
        partial = b'{"data": {"type": "profile", "attributes": {"email": "held@example.com"'
        with socket.create_connection((server.host, server.port)) as held:
            held.sendall(
                f"POST /api/profiles HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n".encode()
                + f"Authorization: Klaviyo-API-Key {server.api_key}\r\n".encode()
                + f"revision: {REVISION}\r\n".encode()
                + b"Content-Type: application/vnd.api+json\r\n"
                + f"Content-Length: {len(partial) + 3}\r\n\r\n".encode()
                + partial
            )
            # out of its queue, not yet due (10,000 rows take 0.05 s more): the runner's
            clock.advance(1.01)
            http.get("/api/accounts")  # a request that ends wakes the runner
            threading.Event().wait(1.0)  # the runner would import 250 rows in ~3 ms
            assert job.done == 0, "rows imported while a request was in flight"
            held.sendall(b"}}}")
            answer = held.recv(65536)
            assert answer.startswith(b"HTTP/1.1 201")
        wait_until_imported(backend, made["id"])
