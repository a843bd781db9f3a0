"""The ``kbridge`` command line: thin commands over the library.

This package is a composition root: the only place that reads the
environment (``KLAVIYO_API_KEY``, ``KLAVIYO_BASE_URL``, ``KBRIDGE_*``).
"""

from __future__ import annotations

from kbridge.cli.app import app, main

__all__ = ["app", "main"]
