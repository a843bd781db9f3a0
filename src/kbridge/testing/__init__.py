"""A shipped pytest plugin: the emulator fixture, a frozen clock, warehouse fixtures.

May import: emulator, core, catalog.
"""

from __future__ import annotations

__all__: list[str] = []
