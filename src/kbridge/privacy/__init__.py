"""Privacy workflows: data-subject access reports, deletion jobs and their audit log.

May import: api, warehouse, core, catalog. (Lands with the Workflows issue.)
"""

from __future__ import annotations

__all__: list[str] = []
