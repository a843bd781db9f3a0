"""A local Klaviyo-compatible API server.

backend/ holds the models and per-tag logic (no HTTP); http/ parses, routes,
serialises JSON:API, rate-limits and injects faults. May import: core, catalog
(never the client: a client bug must not hide behind the same emulator bug).
"""

from __future__ import annotations

__all__: list[str] = []
