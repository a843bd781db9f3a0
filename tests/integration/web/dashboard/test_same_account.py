"""The Connections form, answered by the app itself (no browser): connecting a Klaviyo account
a connection already covers connects, and the page says so in one line."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kbridge.connections import generate_master_key
from kbridge.emulator.server import EmulatorServer
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.users import add_user
from kbridge.web import create_app

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    return html.split('name="csrf_token" value="')[1].split('"')[0]


async def connect_twice(app: object, server: EmulatorServer, second_key: str) -> list[str]:
    """Sign in, connect ``server``'s account as ``shop`` then as ``shop-narrow``; the pages
    each connect leads to."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://kb.example") as client:
        page = await client.get("/login")
        signed = await client.post(
            "/login",
            data={"email": "ana@example.com", "password": PASSWORD, "csrf_token": _csrf(page.text)},
        )
        assert signed.status_code == 303
        shown = []
        for name, key in (("shop", server.api_key), ("shop-narrow", second_key)):
            form = await client.get("/connections")
            made = await client.post(
                "/connections",
                data={
                    "name": name,
                    "api_key": key,
                    "base_url": server.base_url,
                    "rate_limits": "off",
                    "csrf_token": _csrf(form.text),
                },
            )
            assert made.status_code == 303, made.text
            assert "done=connected" in made.headers["location"]
            landed = await client.get(made.headers["location"])
            assert landed.status_code == 200
            shown.append(landed.text)
        return shown


def test_connecting_an_account_already_connected_connects_and_warns_naming_the_other(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    second_key = httpx.post(
        f"{emulator.base_url}/_emulator/keys", json={"scopes": ["accounts:read", "profiles:read"]}
    ).json()["key"]
    appdb = AppDatabase.open(database_url(tmp_path))
    try:
        appdb.create_workspace("acme")
        add_user(appdb, "acme", "ana@example.com", PASSWORD, "admin")
        app = create_app(appdb, data_dir=tmp_path, master_key=generate_master_key())
        # a thread of its own: a browser test's Playwright may hold this thread's event loop
        with ThreadPoolExecutor(1) as thread:
            first, second = thread.submit(
                asyncio.run, connect_twice(app, emulator, second_key)
            ).result()
    finally:
        appdb.close()

    assert "already covers" not in first
    warnings = [line for line in second.splitlines() if "already covers" in line]
    assert len(warnings) == 1
    assert "&#39;shop&#39;" in warnings[0]
    assert 'role="alert"' in warnings[0] or 'role="status"' in warnings[0]
    assert second_key not in second
