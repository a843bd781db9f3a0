"""The same API over a PostgreSQL app database: what several `serve` processes share."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from tests.integration.web.conftest import running_api

pytestmark = pytest.mark.integration


def test_connections_jobs_and_schedules_on_postgresql(
    postgres_url: str, tmp_path: Path, emulator: EmulatorServer, clock: ManualClock
) -> None:
    with running_api(postgres_url, tmp_path / "data", emulator, clock) as api:
        connection = api.connect(api.a)
        created = api.a.post("/api/v1/jobs", json={"kind": "sync", "connection": "shop"})
        assert created.status_code == 202
        job_id = created.json()["id"]
        assert api.a.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
        assert api.a.post(f"/api/v1/jobs/{job_id}/retry").json()["state"] == "queued"
        assert api.b.get(f"/api/v1/jobs/{job_id}").status_code == 404
        schedule = api.a.post(
            "/api/v1/schedules", json={"connection": connection["id"], "cron": "0 6 * * *"}
        )
        assert schedule.status_code == 201
        assert schedule.json()["next_due"] == "2026-03-02T06:00:00Z"
        assert api.a.delete(f"/api/v1/schedules/{schedule.json()['id']}").status_code == 204
        assert api.a.delete(f"/api/v1/connections/{connection['id']}").status_code == 204
        assert api.a.get("/api/v1/connections").json() == []
        assert api.enqueued == [job_id, job_id]
