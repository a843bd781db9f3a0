"""The unattended service: the app database (SQLAlchemy + Alembic), workspaces, jobs, schedules.

May import: sync, privacy, campaigns, analytics, report, connections, api, warehouse, core,
catalog. Nothing below imports it.
"""

from __future__ import annotations
