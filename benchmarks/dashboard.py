"""The dashboard with many accounts: every page's server time p95 against 300 ms (#21).

A Klaviyo emulator serving ``--accounts`` independent accounts (40 profiles and
400 events each, limits × ``--factor``), ``kbridge serve``'s pieces in this
process (SQLite app database, a worker of two threads on the in-process
broker, the dashboard under uvicorn on loopback), one admin who connects every
account through the Connections form (verified, scopes probed) and starts its
sync from the connection's page, as a person would. Once every sync is done,
each page is fetched ``--samples`` times (over the accounts in turn, signed in,
one request at a time; the first view of each after its sync, then all again) and
timed from request to last byte on loopback: the
server's time plus well under a millisecond of loopback. The campaigns page
asks Klaviyo (here the emulator) for the month's campaigns on each view; that
round trip is part of its time, as it would be in production.

``--serve`` instead keeps the service running for a person (``make serve``):
two accounts connected and synced, the URL and a sign-in printed, until
Ctrl-C; ``--screenshot PATH`` saves a picture of a connection's page with
Debian's chromium (Playwright) and stops.

Usage: python -m benchmarks.dashboard [--accounts 50] [--samples 40] [--factor 20]
       python -m benchmarks.dashboard --serve [--port 8080] [--screenshot docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from kbridge.catalog import REVISION
from kbridge.connections import generate_master_key
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings
from kbridge.service.users import add_user
from kbridge.service.worker import start_in_process
from kbridge.web import create_app
from kbridge.web.dashboard.overview import use_rate_budgets

console = Console(width=160)
CEILING_MS = 300.0
EMAIL = "admin@example.com"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONNECTION = re.compile(r"/connections/([0-9a-f]{32})")


@dataclass
class Demo:
    """A running service with its accounts connected: where, who, and what."""

    base_url: str
    appdb: AppDatabase
    workspace_id: str
    password: str = field(repr=False)
    connection_ids: list[str] = field(default_factory=list)
    emulator_url: str = ""
    #: a full key for an account the demo left unconnected, for a person to connect by hand
    spare_key: str | None = field(default=None, repr=False)
    #: a synced profile's email, for a person to try a privacy request on
    example_email: str = ""


def _csrf(client: httpx.Client, path: str) -> str:
    found = _CSRF.search(client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(base_url: str, password: str) -> httpx.Client:
    """An httpx client signed in as the demo's admin."""
    client = httpx.Client(base_url=base_url, timeout=60.0, follow_redirects=True)
    reply = client.post(
        "/login",
        data={"email": EMAIL, "password": password, "csrf_token": _csrf(client, "/login")},
    )
    assert reply.status_code == 200, reply.status_code
    assert "/connections" in str(reply.url), "the sign-in was refused"
    return client


def _serve(app: object, port: int) -> tuple[uvicorn.Server, threading.Thread, str]:
    import socket

    sock = socket.create_server(("127.0.0.1", port))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")  # type: ignore[arg-type]
    )
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="dashboard", daemon=True
    )
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _wait_for_syncs(appdb: AppDatabase, workspace_id: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [j for j in appdb.jobs(workspace_id) if j.kind == "sync"]
        ended = [j for j in jobs if j.state in ("succeeded", "failed", "cancelled")]
        if len(ended) >= n:
            failed = [j.last_error for j in ended if j.state != "succeeded"]
            assert not failed, failed
            return
        time.sleep(0.5)
    raise AssertionError(f"the {n} syncs did not end within {timeout:g} s")


@contextmanager
def demo(
    accounts: int, *, factor: float, port: int = 0, data_dir: Path, spare: int = 0
) -> Iterator[Demo]:
    """The service on ``data_dir`` with ``accounts`` emulator accounts connected and synced,
    and ``spare`` more in the emulator left for a person to connect."""
    config = EmulatorConfig(
        seed=42, profiles=40, events=400, accounts=accounts + spare, rate_limit_factor=factor
    )
    with EmulatorServer(config) as emulator:
        appdb = AppDatabase.open(database_url(data_dir))
        key = generate_master_key()
        settings = WorkerSettings(data_dir=data_dir, master_key=key)
        service = start_in_process(appdb, settings, threads=2)
        workspace = appdb.create_workspace("demo")
        password = secrets.token_urlsafe(12)
        add_user(appdb, "demo", EMAIL, password, "admin")
        app = create_app(
            appdb, data_dir=data_dir, master_key=key, on_enqueued=service.queue.enqueue
        )
        use_rate_budgets(app, settings.rate_budgets)
        server, thread, base_url = _serve(app, port)
        found = Demo(base_url, appdb, workspace.id, password, emulator_url=emulator.base_url)
        if spare:
            found.spare_key = emulator.api_key_of(accounts)
        try:
            with closing(sign_in(base_url, password)) as client:
                for i in range(accounts):
                    reply = client.post(
                        "/connections",
                        data={
                            "csrf_token": _csrf(client, "/connections"),
                            "name": f"shop-{i + 1:02d}",
                            "api_key": emulator.api_key_of(i),
                            "base_url": emulator.base_url,
                            "rate_limits": f"{factor:g}",
                        },
                    )
                    match = _CONNECTION.search(str(reply.url))
                    assert reply.status_code == 200, reply.text[:500]
                    assert match, reply.text[:500]
                    connection_id = match.group(1)
                    found.connection_ids.append(connection_id)
                    page = f"/connections/{connection_id}"
                    client.post(f"{page}/sync", data={"csrf_token": _csrf(client, page)})
            _wait_for_syncs(appdb, workspace.id, accounts, timeout=60.0 + 30.0 * accounts)
            found.example_email = _first_email(emulator)
            yield found
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            service.stop()
            appdb.close()


def _first_email(emulator: EmulatorServer) -> str:
    """The first profile's email in the first connected account."""
    headers = {
        "Authorization": f"Klaviyo-API-Key {emulator.api_key_of(0)}",
        "revision": REVISION,
        "accept": "application/vnd.api+json",
    }
    reply = httpx.get(f"{emulator.base_url}/api/profiles", headers=headers, timeout=30.0)
    return str(reply.json()["data"][0]["attributes"]["email"])


def _pages(ids: list[str]) -> dict[str, list[str]]:
    """Each page (as the table names it) and the paths it is fetched at, in turn."""
    return {
        "/connections": ["/connections"],
        "/connections/{id}": [f"/connections/{i}" for i in ids],
        "/connections/{id}/overview (polled)": [f"/connections/{i}/overview" for i in ids],
        "/jobs": ["/jobs"],
        "/jobs/table (polled)": ["/jobs/table"],
        "/privacy": ["/privacy"],
        "/privacy/queue (polled)": ["/privacy/queue"],
        "/campaigns?connection={id}": [f"/campaigns?connection={i}" for i in ids],
        "/analytics?connection={id}": [f"/analytics?connection={i}" for i in ids],
        "/analytics/{id}/churn (loaded by the page)": [f"/analytics/{i}/churn" for i in ids],
    }


def measure(found: Demo, samples: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Milliseconds per fetch of each page: ``samples`` fetches over the accounts in turn
    (the first view of each after its sync, for up to as many accounts as samples), then
    the same fetches again."""
    first: dict[str, list[float]] = {}
    again: dict[str, list[float]] = {}
    with closing(sign_in(found.base_url, found.password)) as client:
        for into in (first, again):
            for name, paths in _pages(found.connection_ids).items():
                taken = into[name] = []
                for n in range(samples):
                    path = paths[n % len(paths)]
                    started = time.perf_counter()
                    reply = client.get(path)
                    taken.append(1000 * (time.perf_counter() - started))
                    assert reply.status_code == 200, (path, reply.status_code)
    return first, again


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def report(
    first: dict[str, list[float]], again: dict[str, list[float]], accounts: int, samples: int
) -> None:
    table = Table(title=f"Dashboard server time, {accounts} accounts, {samples} fetches a page")
    columns = ("page", "first view: median", "p95", "again: median", "p95", "ceiling (p95)")
    for column in (*columns, "met"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for name, values in first.items():
        p95, p95_again = _p95(values), _p95(again[name])
        table.add_row(
            name,
            f"{statistics.median(values):.1f} ms",
            f"{p95:.1f} ms",
            f"{statistics.median(again[name]):.1f} ms",
            f"{p95_again:.1f} ms",
            f"{CEILING_MS:.0f} ms",
            "yes" if max(p95, p95_again) < CEILING_MS else "NO",
        )
    console.print(table)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"commit {commit or '?'}, load average {load}, {os.cpu_count()} cores")


def screenshot(found: Demo, path: Path) -> None:
    """A picture of the first connection's page, signed in, in Debian's chromium."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(
                base_url=found.base_url, viewport={"width": 1200, "height": 900}
            )
            page.goto("/login")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(found.password)
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"/connections/{found.connection_ids[0]}")
            page.screenshot(path=str(path), full_page=False)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument(
        "--factor", type=float, default=20.0, help="the emulator's and the connections' limits"
    )
    parser.add_argument("--serve", action="store_true", help="keep serving (make serve)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args(argv)
    accounts = args.accounts or (2 if args.serve or args.screenshot else 50)
    with tempfile.TemporaryDirectory(prefix="kbridge-dashboard-") as tmp:
        port = args.port if args.serve else 0
        console.print(f"connecting and syncing {accounts} emulator accounts …")
        spare = 1 if args.serve else 0
        with demo(
            accounts, factor=args.factor, port=port, data_dir=Path(tmp), spare=spare
        ) as found:
            if args.screenshot is not None:
                screenshot(found, args.screenshot)
                console.print(f"saved {args.screenshot}")
            elif args.serve:
                console.print(
                    f"\nThe dashboard: {found.base_url}/  (sign in as {EMAIL}, "
                    f"password {found.password})\n{accounts} emulator accounts connected and "
                    f"synced (limits × {args.factor:g}); data in {tmp}, removed on exit. "
                    "Ctrl-C stops.\n\nTo try it as a new user:\n"
                    f"- Connections: a key for a third emulator account, {found.spare_key}; "
                    f"under Advanced, Base URL {found.emulator_url} and Rate limits "
                    f"{args.factor:g} (spec would pace it as slowly as Klaviyo's own limits)\n"
                    f"- Privacy: a deletion for {found.example_email} on shop-01 is "
                    "confirmed a minute or two after it is requested\n"
                    "- Campaigns: New campaign from a template, tick Schedule, then Cancel it "
                    "in the calendar (reload, or follow its job under Jobs)",
                    soft_wrap=True,
                )
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    console.print("stopped")
            else:
                report(*measure(found, args.samples), accounts, args.samples)


if __name__ == "__main__":
    main()
