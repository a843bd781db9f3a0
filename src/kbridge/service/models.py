"""The app database's tables, as typed SQLAlchemy 2 models.

The app database is the service's truth: what exists (workspaces, their
tokens and connections), what should happen (schedules) and what did
(jobs, their timeline, privacy requests, the audit log). A broker only
carries job ids; a lost message is recovered from here, never the reverse.

Times are stored as UTC and read back aware (:class:`UTCDateTime`), and every
"now" comes from the caller's :class:`~kbridge.core.Clock`, never from the
database server, so tests move time by hand and two machines agree.
Migrations live in ``alembic/versions`` and must match these models (a test
compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "JOB_STATES",
    "SCHEDULE_KINDS",
    "USER_ROLES",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Connection",
    "Job",
    "JobEvent",
    "Meta",
    "PrivacyRequest",
    "Schedule",
    "ScheduleFire",
    "UTCDateTime",
    "User",
    "Workspace",
]

#: a job's life: queued → running → succeeded | failed | cancelled (running → queued on retry)
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
#: a dashboard user's role, most to least: admin (users, connections), operator (jobs,
#: privacy, campaigns), viewer (read only)
USER_ROLES = ("admin", "operator", "viewer")
#: how a schedule says when: a local time of day in a timezone, or a cron expression
SCHEDULE_KINDS = ("daily", "cron")

# Named constraints, so migrations can refer to them the same way on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on the way in and out, on every dialect.

    SQLite keeps no timezone, PostgreSQL answers in the session's: both are
    normalised here, and a naive value is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} for the app database")
        utc = value.astimezone(UTC)
        # SQLite compares the stored text: one offset-free format keeps the order right
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON on SQLite, JSONB on PostgreSQL (indexable, compact)
JSONType = JSON().with_variant(JSONB(), "postgresql")

_ID = String(32)  # uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class Meta(Base):
    """Facts about the database itself: the sealed key check of the master key, and such."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class Workspace(Base):
    """A tenant: everything below belongs to exactly one, and no token reaches another's."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token, stored as the SHA-256 of its 32 random bytes (never in clear)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Connection(Base):
    """A Klaviyo account connected to a workspace; its secrets sealed AES-256-GCM.

    ``secret`` is ``nonce || ciphertext`` whose associated data binds the
    routing columns (id, name, kind, base URL, account, OAuth endpoints) and
    the workspace: an edited row, or a blob copied onto another, won't open.
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        CheckConstraint("kind IN ('api_key', 'oauth')", name="kind"),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str] = mapped_column(String(64))
    account_name: Mapped[str | None] = mapped_column(Text)
    sender_name: Mapped[str | None] = mapped_column(Text)
    sender_email: Mapped[str | None] = mapped_column(Text)
    #: ``spec``, ``off`` or a factor, as the CLI's ``--rate-limits``
    rate_limits: Mapped[str] = mapped_column(String(32), server_default="spec")
    #: where this connection syncs to (a DuckDB path or a PostgreSQL URL); None: the default
    warehouse: Mapped[str | None] = mapped_column(Text)
    capabilities: Mapped[list[str]] = mapped_column(JSONType)
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    #: the OAuth client's public half as canonical JSON text (it is part of the binding)
    oauth: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Schedule(Base):
    """A job to run again and again: daily at a local time in a timezone, or by cron."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("schedule IN ('daily', 'cron')", name="schedule"),
        CheckConstraint(
            "(schedule = 'daily' AND daily_at IS NOT NULL AND cron IS NULL) OR "
            "(schedule = 'cron' AND cron IS NOT NULL AND daily_at IS NULL)",
            name="when",
        ),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    schedule: Mapped[str] = mapped_column(String(8))
    #: ``HH:MM`` local time in ``timezone`` (schedule ``daily``)
    daily_at: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    cron: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    #: the next time it is due; a scheduler fires every schedule whose next_due has passed
    next_due: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScheduleFire(Base):
    """One due time of one schedule, fired: the unique key makes it fire once, whoever fires."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("schedule_id", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Job(Base):
    """One unit of background work and everything known about its run.

    A worker holds a job through a lease (``lease_owner`` until
    ``lease_expires_at``) that it renews while it works; a lease left to
    expire by a dead worker lets another claim the job again. At most one
    ``sync`` per connection runs at once: a partial unique index says so to
    the database itself, whatever the claimers race.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"
        ),
        Index("ix_jobs_claim", "state", "run_after"),
        Index(
            "uq_jobs_one_running_sync",
            "connection_id",
            unique=True,
            sqlite_where=text("state = 'running' AND kind = 'sync'"),
            postgresql_where=text("state = 'running' AND kind = 'sync'"),
        ),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16), server_default="queued")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("3"))
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    cancel_requested: Mapped[bool] = mapped_column(server_default=text("false"))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: not claimable before this (a retry's back-off, a confirmation poll's next look)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobEvent(Base):
    """One line of a job's timeline: queued, claimed, progress, retried, finished…"""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class PrivacyRequest(Base):
    """A data subject's access or deletion request, from receipt to confirmation.

    The subject is kept as a keyed hash (as the privacy audit does) plus, while
    the request is open, sealed for the job that needs it; ``subject_sealed``
    is cleared when the request is done so the service forgets the address.
    """

    __tablename__ = "privacy_requests"
    __table_args__ = (
        CheckConstraint("action IN ('access', 'delete')", name="action"),
        CheckConstraint(
            "state IN ('received', 'requested', 'confirmed', 'failed', 'cancelled')",
            name="state",
        ),
    )

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(8))
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    subject_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), server_default="received")
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: the law the answer is owed under (``gdpr`` or ``ccpa``): it sets ``due_at``
    regulation: Mapped[str] = mapped_column(String(8), server_default="gdpr")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: ``email`` or ``phone``: what the hash stands for, without saying what it is
    subject_type: Mapped[str | None] = mapped_column(String(8))


class AuditEntry(Base):
    """Who did what to which object, appended and never changed."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the token id that acted, or ``system`` (scheduler, recovery)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class User(Base):
    """A person who signs in to the dashboard: one workspace, one role, an argon2id hash.

    The email is unique across workspaces, so signing in needs no workspace
    picker; the hash is argon2-cffi's encoded form (parameters and salt in it).
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),)

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
