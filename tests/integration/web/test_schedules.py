"""Schedules through the API: daily at a local time or by cron, per connection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.web.conftest import Api

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(api: Api) -> dict[str, Any]:
    return api.connect(api.a)


def test_schedules_are_created_listed_and_deleted(api: Api, connection: dict[str, Any]) -> None:
    # the clock reads Sunday 2026-03-01 09:00 UTC; Berlin is UTC+1 until the end of March
    daily = api.a.post(
        "/api/v1/schedules",
        json={
            "connection": connection["id"],
            "kind": "sync",
            "daily_at": "06:00",
            "timezone": "Europe/Berlin",
            "params": {"streams": ["profiles"]},
        },
    )
    assert daily.status_code == 201, daily.text
    assert daily.json() == {
        "id": daily.json()["id"],
        "connection": connection["id"],
        "kind": "sync",
        "params": {"streams": ["profiles"]},
        "daily_at": "06:00",
        "cron": None,
        "timezone": "Europe/Berlin",
        "enabled": True,
        "next_due": "2026-03-02T05:00:00Z",
    }
    api.clock.advance(1)
    weekdays = api.a.post(
        "/api/v1/schedules", json={"connection": "shop", "cron": "30 7 * * mon-fri"}
    )
    assert weekdays.status_code == 201, weekdays.text
    assert weekdays.json()["kind"] == "sync"
    assert weekdays.json()["timezone"] == "UTC"
    assert weekdays.json()["next_due"] == "2026-03-02T07:30:00Z"

    listed = [s["id"] for s in api.a.get("/api/v1/schedules").json()]
    assert listed == [daily.json()["id"], weekdays.json()["id"]]

    assert api.a.delete(f"/api/v1/schedules/{daily.json()['id']}").status_code == 204
    assert [s["id"] for s in api.a.get("/api/v1/schedules").json()] == [weekdays.json()["id"]]
    assert api.a.delete(f"/api/v1/schedules/{daily.json()['id']}").status_code == 404


def test_a_due_schedule_makes_a_job_the_api_shows(api: Api, connection: dict[str, Any]) -> None:
    created = api.a.post(
        "/api/v1/schedules", json={"connection": "shop", "daily_at": "10:00"}
    ).json()
    api.clock.advance(3600)
    fired = api.appdb.fire_due()
    assert len(fired) == 1
    jobs = api.a.get("/api/v1/jobs").json()
    assert [(j["id"], j["kind"], j["connection"]) for j in jobs] == [
        (fired[0].id, "sync", connection["id"])
    ]
    events = api.a.get(f"/api/v1/jobs/{fired[0].id}/events").json()
    assert [e["event"] for e in events] == ["scheduled"]
    assert api.a.get("/api/v1/schedules").json()[0]["id"] == created["id"]


def test_deleting_the_connection_deletes_its_schedules(
    api: Api, connection: dict[str, Any]
) -> None:
    api.a.post("/api/v1/schedules", json={"connection": "shop", "daily_at": "06:00"})
    api.a.delete(f"/api/v1/connections/{connection['id']}")
    assert api.a.get("/api/v1/schedules").json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"connection": "shop", "daily_at": "25:00"}, "daily_at"),
        ({"connection": "shop", "daily_at": "6am"}, "daily_at"),
        ({"connection": "shop", "daily_at": 600}, "daily_at"),
        ({"connection": "shop", "daily_at": "06:00", "timezone": "Mars/Olympus"}, "timezone"),
        # zoneinfo reads a long name as a file path and raises OSError, not a "no such zone"
        (
            {"connection": "shop", "daily_at": "06:00", "timezone": "Europe/" + "x" * 300},
            "timezone",
        ),
        ({"connection": "shop", "cron": "every day"}, "cron"),
        ({"connection": "shop", "cron": "0 0 31 2 *"}, "cron"),
        ({"connection": "shop", "cron": "0 0 * * * *"}, "cron"),
        ({"connection": "shop", "daily_at": "06:00", "cron": "0 6 * * *"}, "cron"),
        ({"connection": "shop"}, "daily_at"),
        ({"connection": "elsewhere", "daily_at": "06:00"}, "connection"),
        ({"daily_at": "06:00"}, "connection"),
        ({"connection": "shop", "daily_at": "06:00", "kind": "nap"}, "kind"),
        (
            {"connection": "shop", "daily_at": "06:00", "params": {"streams": ["nope"]}},
            "params.streams",
        ),
        ({"connection": "shop", "daily_at": "06:00", "every": "day"}, "every"),
    ],
)
def test_bad_schedule_input_is_422_naming_the_field(
    api: Api, connection: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    reply = api.a.post("/api/v1/schedules", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field, error
    assert error["message"].startswith(f"{field}: ")
    assert api.a.get("/api/v1/schedules").json() == []
