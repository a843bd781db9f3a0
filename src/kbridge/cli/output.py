"""Shared output helpers: one clear line for errors, tables or JSON for data."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True)
    sys.stderr.flush()
    raise SystemExit(code)
