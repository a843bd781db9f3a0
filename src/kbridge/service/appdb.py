"""The app database's repository: the few verbs the API, scheduler and workers need.

Every method is one short transaction, and every "now" is the injected
clock's. Objects are handed out as frozen views, never live ORM rows, so
nothing outside this module can write behind a transaction's back.

Jobs move ``queued → running → succeeded | failed | cancelled``. A worker
claims one with a lease that it renews while it works; the claim is a
single ``UPDATE … WHERE id = (SELECT … [FOR UPDATE SKIP LOCKED]) … RETURNING``,
so two claimers never get the same job, and a job whose lease expired
(its worker died) is claimable again. At most one ``sync`` per connection
runs at a time: the claim skips a sync whose connection is busy, and a
partial unique index on running syncs makes the database refuse a second
one should two claimers race past that check.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, delete, exists, false, insert, not_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from kbridge.core import Clock, SystemClock
from kbridge.service._schedules import Schedules
from kbridge.service.db import migrate, open_engine
from kbridge.service.errors import ConflictError, LeaseLostError, NotFoundError
from kbridge.service.models import (
    ApiToken,
    AuditEntry,
    Connection,
    Job,
    JobEvent,
    PrivacyRequest,
    Schedule,
    Workspace,
)
from kbridge.service.privacy_requests import PrivacyRequestView, due_date, progress_of
from kbridge.service.views import (
    IssuedToken,
    JobEventView,
    JobView,
    ScheduleView,
    TokenIdentity,
    WorkspaceView,
    _hash_token,
    _job_view,
    _new_id,
    _schedule_view,
)

__all__ = [
    "TOKEN_PREFIX",
    "AppDatabase",
    "IssuedToken",
    "JobEventView",
    "JobView",
    "ScheduleView",
    "TokenIdentity",
    "WorkspaceView",
]

#: what a kbridge API token starts with (so a leaked one is recognisable in a scan)
TOKEN_PREFIX = "kbt_"  # noqa: S105 (a prefix, not a secret)
_TOKEN_BYTES = 32
#: a worker that has not renewed its lease for this long is taken for dead
DEFAULT_LEASE = timedelta(seconds=60)
_CLAIM_RETRIES = 8
_FINISHED = ("succeeded", "failed", "cancelled")
_T = TypeVar("_T")


class AppDatabase(Schedules):
    """The service's repository over one app database (SQLite or PostgreSQL).

    ``AppDatabase.open(url)`` migrates the database to the newest schema
    first; give an ``engine`` directly when it is known to be current.
    """

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock: Clock = clock or SystemClock()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, *, clock: Clock | None = None, upgrade: bool = True) -> AppDatabase:
        """The app database at ``url``, migrated to the newest schema unless ``upgrade=False``."""
        engine = open_engine(url)
        if upgrade:
            migrate(engine)
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Release the pooled connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        # the URL may carry a password: name the dialect only
        return f"AppDatabase({self.engine.dialect.name})"

    def _transaction(self, work: Callable[[Session], _T]) -> _T:
        with self._sessions() as session, session.begin():
            return work(session)

    # -- workspaces and tokens ---------------------------------------------------------------

    def create_workspace(self, name: str) -> WorkspaceView:
        """A new workspace called ``name`` (:class:`ConflictError` if the name is taken)."""
        row = Workspace(id=_new_id(), name=name, created_at=self._clock.now())
        try:
            self._transaction(lambda s: s.add(row))
        except IntegrityError:
            raise ConflictError(f"a workspace called {name!r} already exists") from None
        return WorkspaceView(row.id, row.name, row.created_at)

    def workspace(self, name: str) -> WorkspaceView:
        """The workspace called ``name``."""
        with self._sessions() as session:
            row = session.scalars(select(Workspace).where(Workspace.name == name)).first()
        if row is None:
            raise NotFoundError(f"no workspace called {name!r}")
        return WorkspaceView(row.id, row.name, row.created_at)

    def create_token(self, workspace_id: str, *, name: str | None = None) -> IssuedToken:
        """A new bearer token for ``workspace_id``; its plaintext is returned this once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)

        def work(session: Session) -> IssuedToken:
            if session.get(Workspace, workspace_id) is None:
                raise NotFoundError("no such workspace")
            row = ApiToken(
                id=_new_id(),
                workspace_id=workspace_id,
                name=name,
                token_hash=_hash_token(token),
                created_at=self._clock.now(),
            )
            session.add(row)
            return IssuedToken(row.id, workspace_id, token)

        return self._transaction(work)

    def authenticate(self, token: str) -> TokenIdentity | None:
        """Whom the bearer ``token`` speaks for; ``None`` for an unknown or revoked token."""
        digest = _hash_token(token)
        with self._sessions() as session:
            found = session.execute(
                select(ApiToken, Workspace.name)
                .join(Workspace, Workspace.id == ApiToken.workspace_id)
                .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            ).first()
        if found is None:
            return None
        row, workspace_name = found
        # the lookup was by hash; compare again in constant time so equality is not the index's
        if not hmac.compare_digest(bytes(row.token_hash), digest):
            return None
        return TokenIdentity(row.id, row.workspace_id, workspace_name)

    def revoke_token(self, workspace_id: str, token_id: str) -> None:
        """Make ``token_id`` fail from now on."""
        now = self._clock.now()

        def work(session: Session) -> None:
            done = session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.workspace_id == workspace_id)
                .values(revoked_at=now)
            )
            if not getattr(done, "rowcount", 0):
                raise NotFoundError("no such token in this workspace")

        self._transaction(work)

    # -- jobs ---------------------------------------------------------------------------------

    def enqueue_job(
        self,
        workspace_id: str,
        kind: str,
        params: dict[str, Any] | None = None,
        *,
        connection_id: str | None = None,
        run_after: datetime | None = None,
        max_attempts: int = 3,
    ) -> JobView:
        """A new queued job; its id is what the broker then carries."""

        def work(session: Session) -> JobView:
            return _job_view(
                self._enqueue(
                    session,
                    workspace_id,
                    kind,
                    params or {},
                    connection_id=connection_id,
                    run_after=run_after,
                    max_attempts=max_attempts,
                )
            )

        return self._transaction(work)

    def _enqueue(
        self,
        session: Session,
        workspace_id: str,
        kind: str,
        params: dict[str, Any],
        *,
        connection_id: str | None,
        run_after: datetime | None,
        max_attempts: int,
        event: str = "queued",
    ) -> Job:
        if connection_id is not None:
            owner = session.scalar(
                select(Connection.workspace_id).where(Connection.id == connection_id)
            )
            if owner != workspace_id:  # another workspace's connection does not exist for us
                raise NotFoundError("no such connection in this workspace")
        elif session.get(Workspace, workspace_id) is None:
            raise NotFoundError("no such workspace")
        now = self._clock.now()
        job = Job(
            id=_new_id(),
            workspace_id=workspace_id,
            connection_id=connection_id,
            kind=kind,
            params=params,
            state="queued",
            attempts=0,
            max_attempts=max_attempts,
            cancel_requested=False,
            run_after=run_after or now,
            created_at=now,
        )
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, at=now, event=event, detail=None))
        return job

    def job(self, workspace_id: str, job_id: str) -> JobView:
        """The job ``job_id`` of ``workspace_id`` (another workspace's jobs are not found)."""
        with self._sessions() as session:
            row = session.get(Job, job_id)
        if row is None or row.workspace_id != workspace_id:
            raise NotFoundError("no such job in this workspace")
        return _job_view(row)

    def jobs(self, workspace_id: str, *, states: Iterable[str] = ()) -> list[JobView]:
        """The workspace's jobs, newest first (only those in ``states`` if given)."""
        query = select(Job).where(Job.workspace_id == workspace_id)
        wanted = tuple(states)
        if wanted:
            query = query.where(Job.state.in_(wanted))
        with self._sessions() as session:
            rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id)).all()
        return [_job_view(row) for row in rows]

    def job_events(self, workspace_id: str, job_id: str) -> list[JobEventView]:
        """The job's timeline, oldest first."""
        self.job(workspace_id, job_id)
        with self._sessions() as session:
            rows = session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            ).all()
        return [JobEventView(row.at, row.event, row.detail) for row in rows]

    def claim_job(
        self,
        owner: str,
        *,
        lease: timedelta = DEFAULT_LEASE,
        job_id: str | None = None,
        kinds: Sequence[str] = (),
    ) -> JobView | None:
        """Take the oldest claimable job (or ``job_id`` only) for ``owner``; ``None`` if none.

        Claimable: queued and due, or running with an expired lease (its worker
        is gone) and attempts left; never a sync while another sync of the same
        connection runs. The job comes back ``running``, leased to ``owner``
        until now + ``lease``, its attempt counted.
        """
        for _ in range(_CLAIM_RETRIES):
            try:
                return self._transaction(
                    lambda s: self._claim_once(s, owner, lease=lease, job_id=job_id, kinds=kinds)
                )
            except IntegrityError:
                # another claimer started this connection's sync between our check and our
                # update: the partial unique index refused ours; look again
                continue
        return None

    def _claim_once(
        self,
        session: Session,
        owner: str,
        *,
        lease: timedelta,
        job_id: str | None,
        kinds: Sequence[str],
    ) -> JobView | None:
        now = self._clock.now()
        candidate = aliased(Job, name="candidate")
        other = aliased(Job, name="other")
        busy_connection = exists().where(
            other.kind == "sync",
            other.state == "running",
            other.connection_id == candidate.connection_id,
            other.id != candidate.id,
        )
        conditions = [
            _claimable(candidate, now),
            not_(and_(candidate.kind == "sync", busy_connection)),
        ]
        if job_id is not None:
            conditions.append(candidate.id == job_id)
        if kinds:
            conditions.append(candidate.kind.in_(tuple(kinds)))
        pick = (
            select(candidate.id)
            .where(*conditions)
            .order_by(candidate.created_at, candidate.id)
            .limit(1)
        )
        if self._postgres:
            # a job another claimer is taking is skipped, not waited for
            pick = pick.with_for_update(skip_locked=True, of=candidate)
        claimed = session.scalars(
            update(Job)
            # the outer test is re-evaluated on the row as locked: nobody else finished it meanwhile
            .where(Job.id == pick.scalar_subquery(), _claimable(Job, now))
            .values(
                state="running",
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempts=Job.attempts + 1,
                started_at=now,
                finished_at=None,
            )
            .returning(Job)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return None
        session.add(
            JobEvent(
                job_id=claimed.id,
                at=now,
                event="claimed",
                detail={"owner": owner, "attempt": claimed.attempts},
            )
        )
        return _job_view(claimed)

    def _leased(self, session: Session, job_id: str, owner: str) -> Job:
        job = session.get(Job, job_id, with_for_update=self._postgres)
        if job is None or job.state != "running" or job.lease_owner != owner:
            raise LeaseLostError(f"job {job_id} is no longer leased to this worker")
        return job

    def renew_lease(
        self,
        job_id: str,
        owner: str,
        *,
        lease: timedelta = DEFAULT_LEASE,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Extend ``owner``'s lease (and record ``progress``); False: cancel was requested.

        :class:`LeaseLostError` if the lease is no longer ``owner``'s: the
        worker must stop, someone else runs the job now.
        """
        now = self._clock.now()

        def work(session: Session) -> bool:
            job = self._leased(session, job_id, owner)
            job.lease_expires_at = now + lease
            if progress is not None:
                job.progress = progress
            return not job.cancel_requested

        return self._transaction(work)

    def finish_job(self, job_id: str, owner: str, result: dict[str, Any] | None = None) -> JobView:
        """Mark the leased job succeeded with ``result``."""
        return self._end(job_id, owner, "succeeded", result=result)

    def fail_job(
        self,
        job_id: str,
        owner: str,
        error: str,
        *,
        retry: bool = True,
        retry_after: timedelta = timedelta(0),
    ) -> JobView:
        """Record ``error``: re-queue the job if ``retry`` and attempts remain, else failed.

        ``retry=False`` is for errors that will not heal by themselves (a
        revoked key, a missing scope): the job stops with ``error`` as its line.
        """
        now = self._clock.now()

        def work(session: Session) -> JobView:
            job = self._leased(session, job_id, owner)
            job.last_error = error
            job.lease_owner = None
            job.lease_expires_at = None
            if retry and job.attempts < job.max_attempts and not job.cancel_requested:
                job.state = "queued"
                job.run_after = now + retry_after
                event = "retry"
            else:
                job.state = "failed"
                job.finished_at = now
                event = "failed"
            session.add(JobEvent(job_id=job_id, at=now, event=event, detail={"error": error}))
            return _job_view(job)

        return self._transaction(work)

    def acknowledge_cancel(self, job_id: str, owner: str) -> JobView:
        """The worker stopped a job whose cancellation was requested: it is cancelled."""
        return self._end(job_id, owner, "cancelled")

    def _end(
        self, job_id: str, owner: str, state: str, *, result: dict[str, Any] | None = None
    ) -> JobView:
        now = self._clock.now()

        def work(session: Session) -> JobView:
            job = self._leased(session, job_id, owner)
            job.state = state
            job.result = result
            job.finished_at = now
            if state == "succeeded":
                # an earlier attempt's error, or why it waited, is over (the events keep it)
                job.last_error = None
            job.lease_owner = None
            job.lease_expires_at = None
            session.add(JobEvent(job_id=job_id, at=now, event=state, detail=None))
            return _job_view(job)

        return self._transaction(work)

    def cancel_job(self, workspace_id: str, job_id: str) -> JobView:
        """Cancel: a queued job at once; a running one when its worker next renews its lease."""
        now = self._clock.now()

        def work(session: Session) -> JobView:
            job = session.get(Job, job_id, with_for_update=self._postgres)
            if job is None or job.workspace_id != workspace_id:
                raise NotFoundError("no such job in this workspace")
            if job.state in _FINISHED:
                raise ConflictError(f"job {job_id} is already {job.state}")
            if job.state == "queued":
                job.state = "cancelled"
                job.finished_at = now
                session.add(JobEvent(job_id=job_id, at=now, event="cancelled", detail=None))
            else:
                job.cancel_requested = True
                session.add(JobEvent(job_id=job_id, at=now, event="cancel_requested", detail=None))
            return _job_view(job)

        return self._transaction(work)

    def recover_jobs(self) -> list[str]:
        """On start: settle jobs whose worker died; the ids of every queued job, to re-enqueue.

        A running job whose lease expired goes back to the queue (or, with no
        attempts left, fails; with a cancel pending, is cancelled). The broker
        may have lost any message, so every queued job's id is returned.
        """
        now = self._clock.now()

        def work(session: Session) -> list[str]:
            stale = session.scalars(
                select(Job)
                .where(Job.state == "running", Job.lease_expires_at < now)
                .with_for_update(skip_locked=True)
                if self._postgres
                else select(Job).where(Job.state == "running", Job.lease_expires_at < now)
            ).all()
            for job in stale:
                lost = f"worker {job.lease_owner} stopped renewing its lease"
                job.lease_owner = None
                job.lease_expires_at = None
                if job.cancel_requested:
                    job.state, job.finished_at, event = "cancelled", now, "cancelled"
                elif job.attempts >= job.max_attempts:
                    job.state, job.finished_at, event = "failed", now, "failed"
                    job.last_error = lost
                else:
                    job.state, event = "queued", "recovered"
                session.add(JobEvent(job_id=job.id, at=now, event=event, detail={"why": lost}))
            session.flush()
            ids = session.scalars(
                select(Job.id).where(Job.state == "queued").order_by(Job.created_at, Job.id)
            ).all()
            return list(ids)

        return self._transaction(work)

    # -- audit ---------------------------------------------------------------------------------

    def audit(
        self,
        *,
        workspace_id: str | None,
        actor: str,
        action: str,
        target_kind: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit entry (who did what to which object)."""
        entry = {
            "workspace_id": workspace_id,
            "at": self._clock.now(),
            "actor": actor,
            "action": action,
            "target_kind": target_kind,
            "target_id": target_id,
            "detail": detail,
        }
        self._transaction(lambda s: s.execute(insert(AuditEntry).values(entry)))

    # -- 429s ------------------------------------------------------------------------------------

    def record_rate_limited(self, job_id: str, at: datetime, operations: dict[str, int]) -> None:
        """Klaviyo refused requests of job ``job_id`` (429) since ``at``: counts per operation,
        one ``rate_limited`` event on the job's timeline. What a connection's page counts."""
        count = sum(operations.values())
        if count <= 0:
            return
        event = JobEvent(
            job_id=job_id,
            at=at,
            event="rate_limited",
            detail={"count": count, "operations": dict(operations)},
        )
        self._transaction(lambda s: s.add(event))

    def rate_limited_since(self, connection_id: str, since: datetime) -> int:
        """The 429s Klaviyo answered the jobs of ``connection_id`` with since ``since``."""
        with self._sessions() as session:
            details = session.scalars(
                select(JobEvent.detail)
                .join(Job, Job.id == JobEvent.job_id)
                .where(
                    Job.connection_id == connection_id,
                    JobEvent.event == "rate_limited",
                    JobEvent.at >= since,
                )
            ).all()
        return sum(int((d or {}).get("count", 0)) for d in details)

    # -- the REST API's verbs (retry, schedules of a workspace) ---------------------------------

    def retry_job(self, workspace_id: str, job_id: str) -> JobView:
        """Queue a failed or cancelled job again, with its attempts afresh.

        The job keeps its id (what the API and the broker carry); its last
        error and result are cleared from the row, the timeline keeps them.
        """
        now = self._clock.now()

        def work(session: Session) -> JobView:
            job = session.get(Job, job_id, with_for_update=self._postgres)
            if job is None or job.workspace_id != workspace_id:
                raise NotFoundError("no such job in this workspace")
            if job.state not in ("failed", "cancelled"):
                raise ConflictError(
                    f"job {job_id} is {job.state}: only a failed or cancelled job can be retried"
                )
            previous = job.state
            job.state = "queued"
            job.attempts = 0
            job.cancel_requested = False
            job.run_after = now
            job.started_at = None
            job.finished_at = None
            job.last_error = None
            job.result = None
            job.progress = None
            job.lease_owner = None
            job.lease_expires_at = None
            session.add(JobEvent(job_id=job_id, at=now, event="retried", detail={"was": previous}))
            return _job_view(job)

        return self._transaction(work)

    def schedules(self, workspace_id: str) -> list[ScheduleView]:
        """The workspace's schedules, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(Schedule)
                .where(Schedule.workspace_id == workspace_id)
                .order_by(Schedule.created_at, Schedule.id)
            ).all()
        return [_schedule_view(row) for row in rows]

    def delete_schedule(self, workspace_id: str, schedule_id: str) -> None:
        """Remove ``schedule_id`` (its jobs stay; another workspace's is not found)."""

        def work(session: Session) -> None:
            done = session.execute(
                delete(Schedule).where(
                    Schedule.id == schedule_id, Schedule.workspace_id == workspace_id
                )
            )
            if not getattr(done, "rowcount", 0):
                raise NotFoundError("no such schedule in this workspace")

        self._transaction(work)

    # -- for workers ---------------------------------------------------------------------------

    def job_by_id(self, job_id: str) -> JobView | None:
        """The job ``job_id`` whatever its workspace (a worker holds only the id); None if gone."""
        with self._sessions() as session:
            row = session.get(Job, job_id)
        return None if row is None else _job_view(row)

    def expired_jobs(self) -> list[str]:
        """Ids of running jobs whose lease has expired: their worker died; any may claim them."""
        now = self._clock.now()
        with self._sessions() as session:
            ids = session.scalars(
                select(Job.id)
                .where(Job.state == "running", Job.lease_expires_at < now)
                .order_by(Job.created_at, Job.id)
            ).all()
        return list(ids)

    def due_queued_jobs(
        self, *, connection_id: str | None = None, due_before: datetime | None = None
    ) -> list[str]:
        """Queued jobs due now (of ``connection_id``; due before ``due_before``), oldest first.

        A sync refused because its connection was busy is dispatched again when
        that sync ends; one due long ago lost its message (a broker restarted).
        """
        now = self._clock.now()
        query = select(Job.id).where(
            Job.state == "queued", Job.run_after <= now, Job.cancel_requested == false()
        )
        if connection_id is not None:
            query = query.where(Job.connection_id == connection_id)
        if due_before is not None:
            query = query.where(Job.run_after < due_before)
        with self._sessions() as session:
            ids = session.scalars(query.order_by(Job.created_at, Job.id)).all()
        return list(ids)

    def sync_running(self, connection_id: str) -> bool:
        """Whether a sync of ``connection_id`` is running (a deletion waits for it to commit)."""
        with self._sessions() as session:
            found = session.scalar(
                select(Job.id).where(
                    Job.kind == "sync", Job.state == "running", Job.connection_id == connection_id
                )
            )
        return found is not None

    def postpone_job(
        self,
        job_id: str,
        owner: str,
        run_after: datetime,
        reason: str,
        *,
        note: str | None = None,
    ) -> JobView:
        """Back to the queue until ``run_after``, no attempt spent: the job is waiting, not failing.

        For a job that cannot go on yet (a deletion while its connection syncs, a
        confirmation to poll again later) and for one stopped by a worker's shutdown.
        ``note``: the job's line meanwhile (why it waits), where its error would show.
        """
        now = self._clock.now()

        def work(session: Session) -> JobView:
            job = self._leased(session, job_id, owner)
            job.state = "queued"
            job.run_after = run_after
            job.attempts = max(job.attempts - 1, 0)
            if note is not None:
                job.last_error = note
            job.lease_owner = None
            job.lease_expires_at = None
            session.add(JobEvent(job_id=job_id, at=now, event="postponed", detail={"why": reason}))
            return _job_view(job)

        return self._transaction(work)

    # -- privacy requests ----------------------------------------------------------------------

    def create_privacy_request(
        self,
        workspace_id: str,
        connection_id: str,
        *,
        action: str,
        regulation: str,
        subject_type: str,
        subject_hash: str,
        params: dict[str, Any],
    ) -> tuple[PrivacyRequestView, JobView]:
        """A received request and its queued job (``privacy_access`` / ``privacy_delete``),
        in one transaction: a request never exists without the job that answers it.

        ``params`` are the job's; the request keeps the subject only as ``subject_hash``.
        """
        now = self._clock.now()
        kind = "privacy_access" if action == "access" else "privacy_delete"

        def work(session: Session) -> tuple[PrivacyRequestView, JobView]:
            request_id = _new_id()
            job = self._enqueue(
                session,
                workspace_id,
                kind,
                {**params, "privacy_request": request_id},
                connection_id=connection_id,
                run_after=None,
                max_attempts=3,
            )
            row = PrivacyRequest(
                id=request_id,
                workspace_id=workspace_id,
                connection_id=connection_id,
                action=action,
                subject_hash=subject_hash,
                subject_type=subject_type,
                state="received",
                job_id=job.id,
                received_at=now,
                regulation=regulation,
                due_at=due_date(now, regulation),
            )
            session.add(row)
            session.flush()
            return _privacy_view(row, job.state), _job_view(job)

        return self._transaction(work)

    def privacy_request(self, workspace_id: str, request_id: str) -> PrivacyRequestView:
        """The request, its state brought up to date from its job and audit entries."""

        def work(session: Session) -> PrivacyRequestView:
            row = session.get(PrivacyRequest, request_id)
            if row is None or row.workspace_id != workspace_id:
                raise NotFoundError("no such privacy request in this workspace")
            return self._refresh_privacy(session, row)

        return self._transaction(work)

    def privacy_requests(self, workspace_id: str) -> list[PrivacyRequestView]:
        """The workspace's privacy requests, newest first, each brought up to date."""

        def work(session: Session) -> list[PrivacyRequestView]:
            rows = session.scalars(
                select(PrivacyRequest)
                .where(PrivacyRequest.workspace_id == workspace_id)
                .order_by(PrivacyRequest.received_at.desc(), PrivacyRequest.id)
            ).all()
            return [self._refresh_privacy(session, row) for row in rows]

        return self._transaction(work)

    def _refresh_privacy(self, session: Session, row: PrivacyRequest) -> PrivacyRequestView:
        job = None if row.job_id is None else session.get(Job, row.job_id)
        if job is None or row.state == "confirmed":
            # failed or cancelled may still change: its job can be retried (POST /jobs/ID/retry)
            return _privacy_view(row, None if job is None else job.state)
        audits = session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.workspace_id == row.workspace_id,
                AuditEntry.target_kind == "job",
                AuditEntry.target_id == job.id,
                AuditEntry.action == f"privacy.{row.action}",
            )
            .order_by(AuditEntry.id)
        ).all()
        entries = [
            (a.at, a.detail or {})
            for a in audits
            if (a.detail or {}).get("subject_hash") == row.subject_hash
        ]
        found = progress_of(
            job_state=job.state,
            job_error=job.last_error,
            job_finished_at=job.finished_at,
            entries=entries,
        )
        row.state = found.state
        row.requested_at = found.requested_at
        row.confirmed_at = found.confirmed_at
        row.batch_id = found.batch_id
        row.detail = found.detail
        return _privacy_view(row, job.state)

    @property
    def clock(self) -> Clock:
        """The clock every "now" of this database comes from (the dashboard's too)."""
        return self._clock


def _privacy_view(row: PrivacyRequest, job_state: str | None) -> PrivacyRequestView:
    return PrivacyRequestView(
        id=row.id,
        workspace_id=row.workspace_id,
        connection_id=row.connection_id,
        action=row.action,
        regulation=row.regulation,
        subject_type=row.subject_type,
        subject_hash=row.subject_hash,
        state=row.state,
        job_id=row.job_id,
        job_state=job_state,
        batch_id=row.batch_id,
        detail=row.detail,
        received_at=row.received_at,
        due_at=row.due_at,
        requested_at=row.requested_at,
        confirmed_at=row.confirmed_at,
    )


def _claimable(job: Any, now: datetime) -> Any:
    """The test for a job any worker may take now (``job``: the model or an alias of it)."""
    return and_(
        job.run_after <= now,
        job.cancel_requested == false(),
        or_(
            job.state == "queued",
            and_(
                job.state == "running",
                job.lease_expires_at < now,
                job.attempts < job.max_attempts,
            ),
        ),
    )
