"""Connections: the connection store, encrypted secrets, OAuth 2.0 + PKCE and scope planning.

May import: api, core, catalog. (Lands with the Connections issue.)
"""

from __future__ import annotations

__all__: list[str] = []
