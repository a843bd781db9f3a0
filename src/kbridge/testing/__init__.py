"""A shipped pytest plugin: the emulator fixtures (``kbridge.testing.plugin``).

Enable with ``pytest_plugins = ["kbridge.testing.plugin"]``. May import:
emulator, core, catalog.
"""

from __future__ import annotations

__all__: list[str] = []
