"""The session cookie's flags, and sign-in refusals, answered by the app itself (no browser)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kbridge.connections import generate_master_key
from kbridge.service.appdb import AppDatabase
from kbridge.service.db import database_url
from kbridge.service.users import add_user
from kbridge.web import create_app

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


async def login_cookies(app: object, base_url: str) -> list[str]:
    """The Set-Cookie headers of the sign-in page, then of signing in, over ``base_url``."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        page = await client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        refused = await client.post(
            "/login", data={"email": "ana@example.com", "password": PASSWORD}
        )
        assert refused.status_code == 403  # no CSRF token
        signed = await client.post(
            "/login",
            data={"email": "ana@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/connections"
        return [page.headers["set-cookie"], signed.headers["set-cookie"]]


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_the_session_cookie_is_httponly_lax_and_secure_over_tls(
    tmp_path: Path, scheme: str, secure: bool
) -> None:
    appdb = AppDatabase.open(database_url(tmp_path))
    try:
        appdb.create_workspace("acme")
        add_user(appdb, "acme", "ana@example.com", PASSWORD, "viewer")
        app = create_app(appdb, data_dir=tmp_path, master_key=generate_master_key())
        # a thread of its own: a browser test's Playwright may hold this thread's event loop
        with ThreadPoolExecutor(1) as thread:
            cookies = thread.submit(
                asyncio.run, login_cookies(app, f"{scheme}://kb.example")
            ).result()
    finally:
        appdb.close()
    for cookie in cookies:
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert ("secure" in flags) is secure
    assert cookies[0].split(";")[0] != cookies[1].split(";")[0]  # signing in starts a session
