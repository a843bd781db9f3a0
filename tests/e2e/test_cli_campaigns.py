"""``kbridge campaigns|templates|flows`` workflow commands through the real console script.

The emulator's simulated clock starts at real time; the console script uses
the system clock, so send times are given relative to the emulator's clock
(which is never behind the wall clock) and time moves only through
``POST /_emulator/clock``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kbridge.api import Client
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.warehouse import open_warehouse

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
SENDER = "news@northwind.example"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=31, profiles=300, events=600, rate_limit_factor=None)
    ) as running:
        httpx.post(f"{running.base_url}/_emulator/senders", json={"email": SENDER}, timeout=10)
        yield running


def run(
    server: EmulatorServer, *args: str, key: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "KBRIDGE_"))}
    environ.update({"NO_COLOR": "1", "COLUMNS": "200"})
    environ["KLAVIYO_BASE_URL"] = server.base_url
    environ["KLAVIYO_API_KEY"] = key or server.api_key
    environ.update(env or {})
    return subprocess.run(
        [KBRIDGE, *args], capture_output=True, text=True, check=False, env=environ, timeout=60
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def emulator_now(server: EmulatorServer) -> datetime:
    reply = httpx.get(f"{server.base_url}/_emulator/clock", timeout=10)
    return datetime.fromisoformat(reply.json()["now"])


def advance(server: EmulatorServer, seconds: float) -> None:
    httpx.post(
        f"{server.base_url}/_emulator/clock", json={"advance_seconds": seconds}, timeout=30
    ).raise_for_status()


def outbox(server: EmulatorServer, campaign_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server.base_url}/_emulator/outbox", params={"campaign_id": campaign_id}, timeout=10
    )
    messages: list[dict[str, Any]] = reply.json()["messages"]
    return messages


def can_receive_email(attributes: Any) -> bool:
    """Consented and not suppressed (what Klaviyo computes for a profile)."""
    marketing = (attributes.get("subscriptions") or {}).get("email", {}).get("marketing", {})
    return marketing.get("can_receive_email_marketing") is True


@pytest.fixture(scope="module")
def audience(server: EmulatorServer) -> str:
    """Every profile that can receive email, on one list (set up with the library).

    Opens and orders are drawn per message id, which embeds the send time: a big
    audience makes "no order at all" (a vacuous conversions check) vanishingly rare.
    """
    with Client(server.api_key, base_url=server.base_url) as client:
        everyone = client.paginate(
            "get_profiles", params={"additional-fields[profile]": "subscriptions"}
        )
        chosen = [str(p.id) for p in everyone if can_receive_email(p.attributes)]
        made = client.lists.create_list(name="CLI audience")
        client.lists.add_profiles_to_list(str(made.id), profile_ids=chosen)
        return str(made.id)


def publish_args(audience: str, send_at: str, *extra: str) -> list[str]:
    return [
        "campaigns", "publish", "--name", "Spring drop", "--list", audience,
        "--subject", "Spring is here", "--from-email", SENDER, "--from-label", "Northwind",
        "--send-at", send_at, "--no-smart-sending", "-o", "json", *extra,
    ]  # fmt: skip


def count_events(server: EmulatorServer, message_id: str, since: datetime) -> dict[str, Any]:
    """What the emulator's events imply for one message (read through the events API)."""
    with Client(server.api_key, base_url=server.base_url) as client:
        names = {m.id: m.attributes["name"] for m in client.metrics.get_metrics()}
        counts: dict[str, Any] = {"Received Email": 0, "Opened Email": 0, "Clicked Email": 0}
        openers: set[str] = set()
        revenue, orders = 0.0, 0
        for e in client.paginate(
            "get_events",
            params={"filter": f"greater-or-equal(datetime,{since:%Y-%m-%dT%H:%M:%SZ})"},
        ):
            name = names[e.relationships["metric"]["data"]["id"]]
            props = e.attributes["event_properties"]
            if name in counts and props.get("$message") == message_id:
                counts[name] += 1
                if name == "Opened Email":
                    openers.add(e.relationships["profile"]["data"]["id"])
            if name == "Placed Order" and props.get("$attributed_message") == message_id:
                orders += 1
                revenue += float(props["$value"])
    return {**counts, "openers": len(openers), "orders": orders, "revenue": round(revenue, 2)}


def test_publish_cancel_revert_schedule_send_and_performance(
    server: EmulatorServer, audience: str, tmp_path: Path
) -> None:
    page = tmp_path / "spring.html"
    page.write_text("<p>Hi {{ first_name|default:'there' }}, spring is here.</p>", "utf-8")
    pushed = ok(run(server, "templates", "push", str(page), "--name", "Spring", "-o", "json"))
    assert pushed["status"] == "created"
    assert ok(run(server, "templates", "push", str(page), "--name", "Spring"))["status"] == (
        "unchanged"
    )
    start = emulator_now(server)
    at = (start + timedelta(hours=1)).isoformat()

    first = ok(run(server, *publish_args(audience, at, "--template", pushed["id"])))
    assert first["status"] == "Scheduled"
    assert ok(run(server, "campaigns", "cancel", first["id"], "-o", "json"))["status"] == (
        "Cancelled"
    )
    second = ok(run(server, *publish_args(audience, at, "--html-file", str(page))))
    assert second["status"] == "Scheduled"
    assert ok(run(server, "campaigns", "revert", second["id"], "-o", "json"))["status"] == "Draft"
    later = (start + timedelta(hours=2)).isoformat()
    again = ok(run(server, "campaigns", "schedule", second["id"], "--send-at", later, "-o", "json"))
    assert again["status"] == "Scheduled"

    advance(server, 2 * 3600 + 60)
    status = ok(run(server, "campaigns", "status", second["id"], "-o", "json"))
    assert status["status"] == "Sent"
    sent = outbox(server, second["id"])
    assert len(sent) >= 100
    assert "spring is here" in sent[0]["html"]
    assert outbox(server, first["id"]) == []

    advance(server, 3 * 86400)
    since = start - timedelta(minutes=5)
    # the emulator's clock is now days ahead of the wall clock the CLI's default end uses
    window = ("--since", since.isoformat(), "--until", (start + timedelta(days=5)).isoformat())
    warehouse = tmp_path / "wh.duckdb"
    result = run(
        server, "campaigns", "performance", second["id"], *window,
        "-o", "json", env={"KBRIDGE_WAREHOUSE": f"duckdb:///{warehouse}"},
    )  # fmt: skip
    report = ok(result)
    assert "saved 1 row(s) to campaign_performance" in result.stderr
    (row,) = report["campaigns"]
    assert row["campaign_name"] == "Spring drop"  # beside the id, not only the id
    expected = count_events(server, row["campaign_message_id"], since)
    assert row["recipients"] == expected["Received Email"] == len(sent)
    assert row["opens"] == expected["Opened Email"]
    assert row["open_rate"] == round(expected["openers"] / len(sent), 4)
    assert row["clicks"] == expected["Clicked Email"]
    assert row["conversions"] == expected["orders"] > 0
    assert row["conversion_value"] == pytest.approx(expected["revenue"])
    assert row["unsubscribes"] == 0

    wh = open_warehouse(f"duckdb:///{warehouse}")
    try:
        stored = wh.query(
            "select campaign_id, recipients, opens, conversions from campaign_performance"
        )
    finally:
        wh.close()
    assert [tuple(r) for r in stored] == [
        (second["id"], row["recipients"], row["opens"], row["conversions"])
    ]

    table = run(server, "campaigns", "performance", second["id"], *window, "-o", "table")
    assert table.returncode == 0, table.stderr
    assert second["id"] in table.stdout
    assert "Spring drop" in table.stdout
    assert "open rate" in table.stdout


def test_error_cases_are_one_clear_line(
    server: EmulatorServer, audience: str, tmp_path: Path
) -> None:
    page = tmp_path / "x.html"
    page.write_text("<p>x</p>", "utf-8")
    future = (emulator_now(server) + timedelta(hours=1)).isoformat()

    bad_key = run(server, *publish_args(audience, future, "--html-file", str(page)),
                  key="pk_" + "z" * 34)  # fmt: skip
    line = one_line_error(bad_key)
    assert "refused the API key" in line
    assert "pk_zz" not in line

    narrow = httpx.post(
        f"{server.base_url}/_emulator/keys", json={"scopes": ["campaigns:read"]}, timeout=10
    ).json()["key"]
    line = one_line_error(
        run(server, *publish_args(audience, future, "--html-file", str(page)), key=narrow)
    )
    assert "lacks the scope campaigns:write" in line
    assert "campaigns:read campaigns:write templates:write" in line

    past = (datetime.now().astimezone() - timedelta(hours=1)).isoformat()
    line = one_line_error(run(server, *publish_args(audience, past, "--html-file", str(page))))
    assert "is in the past" in line

    unverified = [*publish_args(audience, "now", "--html-file", str(page))]
    unverified[unverified.index(SENDER)] = "someone@unverified.example"
    line = one_line_error(run(server, *unverified))
    assert "someone@unverified.example is not verified" in line
    assert "Settings > Domains and senders" in line

    with Client(server.api_key, base_url=server.base_url) as client:
        empty = str(client.lists.create_list(name="Empty").id)
    line = one_line_error(run(server, *publish_args(empty, future, "--html-file", str(page))))
    assert "has no profile that can receive" in line

    both = one_line_error(run(server, *publish_args(audience, future)))
    assert "exactly one of --template ID or --html-file" in both


def test_flows_create_status_and_preview(server: EmulatorServer, tmp_path: Path) -> None:
    page = tmp_path / "welcome.html"
    page.write_text("<p>Welcome {{ first_name }}! You joined from {{ event.Source }}.</p>", "utf-8")
    ok(run(server, "templates", "push", str(page), "--name", "Welcome"))
    definition = tmp_path / "flow.json"
    definition.write_text(json.dumps({
        "name": "Signup welcome",
        "trigger": {"metric": "Placed Order"},
        "actions": [{"type": "send-email", "template": "Welcome", "subject": "Welcome!",
                     "from_email": SENDER, "from_label": "Northwind"}],
    }), "utf-8")  # fmt: skip
    flow = ok(run(server, "flows", "create", "--from", str(definition), "-o", "json"))
    assert flow["status"] == "draft"
    assert ok(run(server, "flows", "status", flow["id"], "live", "-o", "json"))["status"] == "live"
    bad = one_line_error(run(server, "flows", "status", flow["id"], "paused"))
    assert "paused" in bad
    with Client(server.api_key, base_url=server.base_url) as client:
        list_id = str(client.lists.create_list(name="Raw flow list").id)
    raw = {"triggers": [{"type": "list", "id": list_id}], "entry_action_id": "w",
           "actions": [{"temporary_id": "w", "type": "time-delay",
                        "data": {"unit": "days", "value": 1}}]}  # fmt: skip
    # the generated action's spelling still works: --name and Klaviyo's own definition
    made = ok(run(server, "flows", "create", "--name", "Raw", "--definition", json.dumps(raw)))
    assert (made["name"], made["status"]) == ("Raw", "draft")

    with Client(server.api_key, base_url=server.base_url) as client:
        tester = next(
            p
            for p in client.profiles.get_profiles(additional_fields={"profile": ["subscriptions"]})
            if can_receive_email(p.attributes)
        )
        events = client.events.get_events(sort="-datetime", page_size=5)
    context = ok(run(server, "templates", "render", flow_template_id(server), "--context",
                     '{"first_name": "Ada", "event": {"Source": "the CLI"}}'))  # fmt: skip
    assert "Welcome Ada! You joined from the CLI." in context["attributes"]["html"]

    preview = ok(run(server, "flows", "preview", flow["id"], "--to", tester.attributes["email"],
                     "-o", "json"))  # fmt: skip
    assert preview["status"] in ("Sending", "Sent")
    assert preview["event_id"] is not None
    advance(server, 1)
    (message,) = outbox(server, preview["id"])
    assert message["to"] == tester.attributes["email"]
    assert message["subject"] == "[Preview] Welcome!"
    assert events  # the account has recent events to preview with


def flow_template_id(server: EmulatorServer) -> str:
    with Client(server.api_key, base_url=server.base_url) as client:
        (found,) = client.templates.get_templates(filter="equals(name,'Welcome')")
        return str(found.id)
