"""privacy requests: the regulation, its due date, and the subject's type

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # added columns only: SQLite alters in place, no table rebuild
    op.add_column(
        "privacy_requests",
        sa.Column("regulation", sa.String(length=8), server_default="gdpr", nullable=False),
    )
    op.add_column("privacy_requests", sa.Column("due_at", sa.DateTime(timezone=True)))
    op.add_column("privacy_requests", sa.Column("subject_type", sa.String(length=8)))


def downgrade() -> None:
    with op.batch_alter_table("privacy_requests") as batch:
        batch.drop_column("subject_type")
        batch.drop_column("due_at")
        batch.drop_column("regulation")
