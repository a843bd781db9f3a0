"""Campaign publishing: create, schedule, cancel, revert, and pull performance back.

May import: api, warehouse, core, catalog. (Lands with the Workflows issue.)
"""

from __future__ import annotations

__all__: list[str] = []
