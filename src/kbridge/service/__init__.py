"""The unattended service: the app database (SQLAlchemy + Alembic), workspaces, jobs,
schedules, and the Redis store for shared rate budgets.

May import: sync, privacy, campaigns, analytics, report, connections, api, warehouse, core,
catalog. Nothing below imports it.
"""

from __future__ import annotations
