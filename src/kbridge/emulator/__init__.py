"""A local Klaviyo-compatible API server.

backend/ holds the models and per-tag logic (no HTTP); http/ parses, routes,
serialises JSON:API, rate-limits and injects faults. May import: core, catalog
(never the client: a client bug must not hide behind the same emulator bug).

Start one in a test or script::

    from kbridge.emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(profiles=100, events=1000)) as server:
        ...  # server.base_url, server.api_key

The names below load lazily, so importing a submodule (say
``kbridge.emulator.config`` from the CLI) does not start up the whole server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kbridge.emulator.config import EmulatorConfig, RateLimitAlgorithm
    from kbridge.emulator.http.app import create_app
    from kbridge.emulator.server import EmulatorServer, EmulatorServerError, serve
    from kbridge.emulator.simclock import SimClock

__all__ = [
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorServerError",
    "RateLimitAlgorithm",
    "SimClock",
    "create_app",
    "serve",
]

_WHERE = {
    "EmulatorConfig": "kbridge.emulator.config",
    "RateLimitAlgorithm": "kbridge.emulator.config",
    "SimClock": "kbridge.emulator.simclock",
    "create_app": "kbridge.emulator.http.app",
    "EmulatorServer": "kbridge.emulator.server",
    "EmulatorServerError": "kbridge.emulator.server",
    "serve": "kbridge.emulator.server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kbridge.emulator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
