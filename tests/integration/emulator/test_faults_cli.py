"""``kbridge emulator serve --faults … --oauth-access-ttl …`` as a user runs it: a real process."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from kbridge.catalog import REVISION

pytestmark = pytest.mark.integration

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
_STARTUP = 60.0


def run_oauth_flow(http: httpx.Client, app: dict[str, str]) -> dict[str, object]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect = http.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "http://x/cb",
            "scope": "accounts:read",
            "code_challenge_method": "S256",
            "code_challenge": challenge.rstrip(b"=").decode(),
        },
    )
    code = dict(parse_qsl(urlsplit(redirect.headers["location"]).query))["code"]
    token = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": "http://x/cb",
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return dict(token.json())


def test_serve_applies_faults_and_the_oauth_token_lifetime() -> None:
    proc = subprocess.Popen(
        [
            KBRIDGE, "emulator", "serve", "--port", "0", "--profiles", "0", "--events", "0",
            "--rate-limits", "off", "--faults", "http503=1@7s", "--oauth-access-ttl", "90",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )  # fmt: skip
    watchdog = threading.Timer(_STARTUP, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        key = re.search(r"(pk_[A-Za-z0-9]{34})\b", proc.stdout.readline())
        assert url
        assert key
        headers = {"Authorization": f"Klaviyo-API-Key {key[1]}", "revision": REVISION}
        with httpx.Client(base_url=url[1], timeout=10.0) as http:
            failed = http.get("/api/accounts", headers=headers)
            faults = http.get("/_emulator/faults").json()
            app = http.post("/_emulator/oauth-clients", json={"redirect_uris": ["http://x/cb"]})
            assert app.status_code == 201
            denied = http.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": "nope"},
                auth=(app.json()["client_id"], app.json()["client_secret"]),
            )
            expires_in = run_oauth_flow(http, app.json())["expires_in"]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=_STARTUP)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "7"
    assert faults["spec"] == "http503=1@7s"
    assert faults["counts"]["http503"] == 1
    assert denied.status_code == 400  # OAuth is never faulted
    assert expires_in == 90
    assert "Traceback" not in stderr


def test_a_bad_faults_spec_is_one_clear_line() -> None:
    result = subprocess.run(
        [KBRIDGE, "emulator", "serve", "--faults", "http500=0.1,http502=0.1"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=_STARTUP,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: --faults: unknown fault 'http502'"), result.stderr
    assert result.stderr.count("\n") == 1
