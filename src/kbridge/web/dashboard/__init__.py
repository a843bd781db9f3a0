"""The dashboard: server-rendered pages beside the REST API, for people rather than scripts.

``install_dashboard(app)`` mounts the pages at ``/`` (``/login``, ``/connections``,
``/jobs`` …) and their static files at ``/static`` on the app ``create_app`` built;
the pages act through the same app database and connection functions as the API.
"""

from __future__ import annotations

from kbridge.web.dashboard.pages import install_dashboard

__all__ = ["install_dashboard"]
