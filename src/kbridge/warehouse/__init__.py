"""The warehouse: a storage protocol and one module per dialect (DuckDB, PostgreSQL).

May import: core only. (Lands with the Sync issue.)
"""

from __future__ import annotations

__all__: list[str] = []
