"""Tried as a new user would: ``kbridge demo``, then push its churn scores to the account.

``kbridge demo`` writes demo.duckdb from a seeded emulator and stops it; the user
serves the same account again (``kbridge emulator serve`` with the same seed and
sizes), pushes the churn scores with ``kbridge analytics churn --push`` and finds
them on the profiles. The commands are docs/push.md's, at a small size.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.core import loads
from tests.e2e.test_cli import KBRIDGE, run

pytestmark = pytest.mark.e2e

SIZE = ("--seed", "5", "--profiles", "150", "--events", "3000")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``kbridge emulator serve`` with the demo's account: its base URL and key."""
    log = tmp_path / "serve.log"
    # a file, not a pipe: a server that logs much could fill a pipe nobody reads
    with log.open("w") as out:
        proc = subprocess.Popen(
            [KBRIDGE, "emulator", "serve", *SIZE, "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = key = None
        for _ in range(600):
            text = log.read_text()
            url, key = re.search(r"http://\S+", text), re.search(r"pk_\w+", text)
            if (url and key) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert url, log.read_text()
        assert key, log.read_text()
        yield url.group(0), key.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_demo_accounts_churn_scores_land_on_its_profiles(
    tmp_path: Path, served: tuple[str, str]
) -> None:
    db = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    demo = run("demo", *SIZE, "--to", db, "--html", str(tmp_path / "r.html"), timeout=180)
    assert demo.returncode == 0, demo.stderr
    base_url, key = served
    push = ("analytics", "churn", "--from", db, "--push", "--top", "0",
            "--api-key", key, "--base-url", base_url, "-o", "json")  # fmt: skip

    first = run(*push)
    assert first.returncode == 0, first.stderr
    doc = loads(first.stdout)
    scores = {r["email"]: r["churn_probability"] for r in doc["tables"][-1]["rows"]}
    assert len(scores) == 150
    assert doc["summary"]["push"] == {"rows": 150, "sent": 150, "unchanged": 0,
                                      "skipped_no_consent": 0, "errors": 0, "jobs": 1}  # fmt: skip
    assert "profiles submitted" in first.stderr

    headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15"}
    seen: dict[str, object] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        url: str | None = "/api/profiles?page[size]=100"
        while url:
            body = http.get(url).raise_for_status().json()
            for p in body["data"]:
                a = p["attributes"]
                seen[a["email"]] = (a.get("properties") or {}).get("churn_risk")
            url = body["links"].get("next")
    assert seen == scores

    again = run(*push)
    assert again.returncode == 0, again.stderr
    assert loads(again.stdout)["summary"]["push"]["sent"] == 0
    assert loads(again.stdout)["summary"]["push"]["unchanged"] == 150
