"""Alembic's entry point for the app database; run only through :func:`kbridge.service.db.migrate`.

The caller hands over an open connection in ``config.attributes``, so no
``alembic.ini`` or URL is read here (and no secret reaches a log).
"""

from __future__ import annotations

from alembic import context

from kbridge.service.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only migrate() runs this
    raise RuntimeError("run migrations through kbridge.service.db.migrate(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
