"""`kbridge worker` through the real console script: foreseeable mistakes are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

KBRIDGE = str(Path(sys.executable).with_name("kbridge"))


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLAVIYO_", "KBRIDGE_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "KBRIDGE_HOME": str(home)})
    return subprocess.run(
        [KBRIDGE, "worker", *args], capture_output=True, text=True, check=False, env=env, timeout=60
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_worker_without_a_broker_says_to_give_one(tmp_path: Path) -> None:
    line = _one_line(run(tmp_path))
    assert "--broker redis://" in line
    assert "kbridge serve" in line


def test_a_broker_that_is_not_redis_is_refused(tmp_path: Path) -> None:
    line = _one_line(run(tmp_path, "--broker", "amqp://127.0.0.1:5672"))
    assert line.startswith("error: --broker:")


def test_an_unreachable_app_database_is_one_line(tmp_path: Path) -> None:
    line = _one_line(
        run(
            tmp_path,
            "--database",
            "postgresql://kbridge:secret-pw@127.0.0.1:1/app",
            "--broker",
            "redis://127.0.0.1:1/0",
        )
    )
    assert "secret-pw" not in line
