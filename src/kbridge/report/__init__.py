"""The self-contained HTML report over the analytics.

May import: warehouse, core (and analytics). (Lands with the Analytics issue.)
"""

from __future__ import annotations

__all__: list[str] = []
