"""The Klaviyo client: one request pipeline (auth, revision, JSON:API, pagination,
rate limiting, retries, errors) behind AsyncClient and a synchronous Client.

May import: core, catalog.
"""

from __future__ import annotations

__all__: list[str] = []
