"""The bulk import answers a push relies on, judged by Klaviyo's spec: a job while it is
processing, its import errors, and the refusals of an oversized request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.spec import errors_of

pytestmark = pytest.mark.contract

PATH = "/api/profile-bulk-import-jobs"
JSONAPI = {"content-type": "application/vnd.api+json"}


def body(rows: list[dict[str, object]]) -> dict[str, object]:
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": rows}}}}


def row(email: str, **props: object) -> dict[str, object]:
    return {"type": "profile", "attributes": {"email": email, "properties": props}}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    # one profile a simulated second: a job stays "processing" until the clock is moved
    config = EmulatorConfig(profiles=0, events=0, rate_limit_factor=None,
                            import_profiles_per_second=1.0)  # fmt: skip
    with EmulatorServer(config) as srv:
        yield srv


def check(op_id: str, response: httpx.Response) -> None:
    problems = errors_of(catalog.get(op_id), response.status_code, response.json())
    assert problems == [], problems


def test_a_processing_job_and_its_import_errors(server: EmulatorServer) -> None:
    with http_client_for(server) as http:
        made = http.post(PATH, json=body([row("ok@example.com"), row("broken")]), headers=JSONAPI)
        assert made.status_code == 202
        check("bulk_import_profiles", made)
        job_id = made.json()["data"]["id"]
        got = http.get(f"{PATH}/{job_id}")
        check("get_bulk_import_profiles_job", got)
        assert got.json()["data"]["attributes"]["status"] == "processing"
        http.post("/_emulator/clock", json={"advance_seconds": 3}).raise_for_status()
        done = http.get(f"{PATH}/{job_id}").json()["data"]["attributes"]
        assert (done["status"], done["completed_count"], done["failed_count"]) == ("complete", 1, 1)
        errors = http.get(f"{PATH}/{job_id}/import-errors")
        check("get_errors_for_bulk_import_profiles_job", errors)
        [error] = errors.json()["data"]
        assert error["attributes"]["source"]["pointer"].endswith("/1/attributes/email")


def test_more_than_10000_profiles_or_5_mb_are_refused(server: EmulatorServer) -> None:
    with http_client_for(server) as http:
        many = http.post(
            PATH, json=body([row(f"m{i}@e.com") for i in range(10_001)]), headers=JSONAPI
        )
        assert many.status_code == 400
        check("bulk_import_profiles", many)
        big = [row(f"b{i}@e.com", blob="x" * 60_000) for i in range(90)]
        heavy = http.post(PATH, json=body(big), headers=JSONAPI)
        assert heavy.status_code == 413
        assert heavy.json()["errors"][0]["status"] == 413
