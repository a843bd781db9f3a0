"""The HTTP face of the service: the REST API under ``/api/v1`` and the dashboard at ``/``.

``create_app(appdb, data_dir=…, master_key=…)`` builds the ASGI app; ``kbridge
serve`` runs it under uvicorn.

May import: service and anything below it. Never cli.
"""

from __future__ import annotations

from kbridge.web.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
