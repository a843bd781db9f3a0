"""Open a page in a real headless Chromium (Debian's ``chromium``) for browser tests.

``render(url, screenshot=…)`` runs Chromium twice — ``--dump-dom`` for the DOM
after load, ``--screenshot`` for a PNG — with ``--enable-logging=stderr`` so
every console message (``console.error``, uncaught exceptions, failed loads)
is reported back. A missing browser is an error naming the package to
install, never a silent skip; ``make test`` installs it (``system-deps``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChromiumUnavailableError", "Rendered", "find_chromium", "png_size", "render"]

_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?[:\]].*")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ChromiumUnavailableError(RuntimeError):
    """No Chromium binary on PATH."""


@dataclass(frozen=True, slots=True)
class Rendered:
    dom: str
    console: tuple[str, ...]  # console messages and page errors, one per line
    screenshot: Path | None


def find_chromium() -> str:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumUnavailableError(
        "Chromium not found: install Debian's `chromium` package (apt-get install chromium) — "
        "`make test` does this when it is missing"
    )


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="kbridge-chromium-") as profile:
        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(  # noqa: S603 (our own arguments)
            command, capture_output=True, text=True, timeout=timeout, check=False
        )


def _console(stderr: str) -> list[str]:
    return [m.group(0) for line in stderr.splitlines() if (m := _CONSOLE.search(line))]


def render(
    url: str,
    *,
    screenshot: Path | None = None,
    window: tuple[int, int] = (1280, 2400),
    timeout: float = 90.0,
) -> Rendered:
    """The DOM of ``url`` after load, its console messages, and optionally a screenshot."""
    size = f"--window-size={window[0]},{window[1]}"
    dumped = _run([size, "--dump-dom", url], timeout)
    if dumped.returncode != 0 or not dumped.stdout.strip():
        tail = "\n".join(dumped.stderr.splitlines()[-5:])
        raise RuntimeError(f"chromium --dump-dom failed ({dumped.returncode}): {tail}")
    console = _console(dumped.stderr)
    if screenshot is not None:
        shot = _run([size, f"--screenshot={screenshot}", url], timeout)
        console += _console(shot.stderr)
        if shot.returncode != 0 or not screenshot.exists():
            raise RuntimeError(f"chromium --screenshot failed ({shot.returncode})")
    return Rendered(dumped.stdout, tuple(dict.fromkeys(console)), screenshot)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when it is not a PNG."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
