"""Sync: declarative streams, pure state functions, time windows and the engine.

May import: api, warehouse, connections, core, catalog. (Lands with the Sync issue.)
"""

from __future__ import annotations

__all__: list[str] = []
