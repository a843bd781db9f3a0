"""The dashboard served on loopback with a worker, driven by Debian's Chromium via Playwright.

Workspaces ``a`` and ``b``; users ``admin@a.test`` (admin), ``viewer@a.test``
(viewer) and ``admin@b.test`` (admin), all with :data:`PASSWORD`. The app
database runs on the system clock (the in-process worker's leases need time
to pass); the dashboard's own clock (sessions, the sign-in throttle) is a
:class:`ManualClock` the tests move by hand.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from kbridge.connections import generate_master_key
from kbridge.core import ManualClock
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.jobs import WorkerSettings
from kbridge.service.users import add_user
from kbridge.service.worker import start_in_process
from kbridge.web import create_app
from kbridge.web.dashboard.overview import use_rate_budgets
from tests.integration.web.conftest import serve

PASSWORD = "correct horse battery"


@dataclass
class Dashboard:
    base_url: str
    appdb: AppDatabase
    clock: ManualClock
    emulator: EmulatorServer
    workspace_a: str
    workspace_b: str
    master_key: bytes = field(repr=False)


@pytest.fixture
def dashboard(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Dashboard]:
    data_dir = tmp_path / "data"
    appdb = AppDatabase.open(database_url(data_dir))
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    key = generate_master_key()
    # a short lease: a running job hears of its cancellation within a second or so
    settings = WorkerSettings(
        data_dir=data_dir,
        master_key=key,
        retry_backoff=timedelta(0),
        lease=timedelta(seconds=3),
    )
    service = start_in_process(appdb, settings, tick_every=timedelta(milliseconds=200))
    ids = {}
    for name in ("a", "b"):
        ids[name] = appdb.create_workspace(name).id
    add_user(appdb, "a", "admin@a.test", PASSWORD, "admin")
    add_user(appdb, "a", "viewer@a.test", PASSWORD, "viewer")
    add_user(appdb, "b", "admin@b.test", PASSWORD, "admin")
    app = create_app(
        appdb, data_dir=data_dir, master_key=key, on_enqueued=service.queue.enqueue, clock=clock
    )
    use_rate_budgets(app, settings.rate_budgets)
    try:
        with serve(app) as base_url:
            yield Dashboard(base_url, appdb, clock, emulator, ids["a"], ids["b"], key)
    finally:
        service.stop()
        appdb.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # not session-wide: while Playwright's sync API runs, its event loop is this thread's, and
    # any later test calling asyncio.run here would fail
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def refusals() -> set[int]:
    """The HTTP statuses a flow expects the dashboard to answer a page with (a wrong password's
    401, a forged form's 403…): Chromium logs each such page as a console error, and only
    these are forgiven."""
    return set()


_REFUSED = "Failed to load resource: the server responded with a status of "


@pytest.fixture
def page(
    browser: Browser, dashboard: Dashboard, tmp_path: Path, refusals: set[int]
) -> Iterator[Page]:
    """A fresh browser context on the dashboard; the flow fails on any console error (but the
    refusals it expects), and leaves a screenshot of where it ended under ``tmp_path``."""
    context = browser.new_context(base_url=dashboard.base_url)
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: Any) -> None:
        text = message.text
        if message.type != "error":
            return
        if text.startswith(_REFUSED) and int(text.removeprefix(_REFUSED)[:3]) in refusals:
            return
        errors.append(text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.set_default_timeout(20_000)
    try:
        yield opened
        opened.screenshot(path=str(tmp_path / "flow.png"), full_page=True)
        assert errors == [], errors
    finally:
        context.close()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def every_input_labelled(page: Page) -> None:
    """Each visible input has a label a screen reader announces."""
    unlabelled: Any = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.name || el.id)"""
    )
    assert unlabelled == []


AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"


def no_serious_violations(page: Page) -> None:
    """axe-core (pinned, vendored) finds no serious or critical violation on the page.

    Injected through the DevTools protocol (``evaluate``), which the pages' CSP does not
    govern: the dashboard itself never serves axe."""
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, "the vendored axe-core changed"
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source.decode("utf-8") + "\n;undefined")
    found: Any = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): '
                + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )
    assert found == [], f"{page.url}: {found}"
