"""Frozen views of the app database's rows: what the repository hands out, never live ORM rows."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbridge.service.models import Job, Schedule

__all__ = [
    "IssuedToken",
    "JobEventView",
    "JobView",
    "ScheduleView",
    "TokenIdentity",
    "WorkspaceView",
]


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: the plaintext exists only here, once (it is stored hashed)."""

    id: str
    workspace_id: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a bearer token speaks for."""

    token_id: str
    workspace_id: str
    workspace_name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class JobView:
    id: str
    workspace_id: str
    connection_id: str | None
    kind: str
    params: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    progress: dict[str, Any] | None
    last_error: str | None
    result: dict[str, Any] | None
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: datetime | None
    run_after: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobEventView:
    at: datetime
    event: str
    detail: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleView:
    id: str
    workspace_id: str
    connection_id: str
    kind: str
    params: dict[str, Any]
    schedule: str
    daily_at: str | None
    timezone: str
    cron: str | None
    enabled: bool
    next_due: datetime | None


def _hash_token(token: str) -> bytes:
    # 32 random bytes need no slow hash: nobody can guess their way to a preimage
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _new_id() -> str:
    return uuid.uuid4().hex


def _job_view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        workspace_id=job.workspace_id,
        connection_id=job.connection_id,
        kind=job.kind,
        params=dict(job.params),
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        progress=job.progress,
        last_error=job.last_error,
        result=job.result,
        cancel_requested=job.cancel_requested,
        lease_owner=job.lease_owner,
        lease_expires_at=job.lease_expires_at,
        run_after=job.run_after,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _schedule_view(row: Schedule) -> ScheduleView:
    return ScheduleView(
        id=row.id,
        workspace_id=row.workspace_id,
        connection_id=row.connection_id,
        kind=row.kind,
        params=dict(row.params),
        schedule=row.schedule,
        daily_at=row.daily_at,
        timezone=row.timezone,
        cron=row.cron,
        enabled=row.enabled,
        next_due=row.next_due,
    )
