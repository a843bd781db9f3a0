"""The app database's schedules: due times that fire exactly once, whoever fires them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from kbridge.core import Clock
from kbridge.service.errors import ConflictError, InvalidScheduleError, NotFoundError
from kbridge.service.models import Connection, Job, Schedule, ScheduleFire
from kbridge.service.schedule_times import latest_due, next_due_after, validate_schedule
from kbridge.service.views import JobView, ScheduleView, _job_view, _new_id, _schedule_view

__all__ = ["Schedules"]

_T = TypeVar("_T")


class Schedules:
    """The schedule verbs of :class:`~kbridge.service.appdb.AppDatabase` (a base class of it)."""

    _clock: Clock
    _sessions: sessionmaker[Session]
    _postgres: bool

    def _transaction(self, work: Callable[[Session], _T]) -> _T:
        raise NotImplementedError

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
        raise NotImplementedError

    def create_schedule(
        self,
        workspace_id: str,
        connection_id: str,
        kind: str,
        *,
        daily_at: str | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        params: dict[str, Any] | None = None,
        next_due: datetime | None = None,
    ) -> ScheduleView:
        """A schedule for ``connection_id``: ``daily_at`` (``HH:MM``, ``timezone``) or ``cron``."""
        if (daily_at is None) == (cron is None):
            raise ConflictError("a schedule needs exactly one of daily_at or cron")
        validate_schedule(daily_at=daily_at, cron=cron, timezone=timezone)
        if next_due is None:
            next_due = next_due_after(
                self._clock.now(), daily_at=daily_at, cron=cron, timezone=timezone
            )

        def work(session: Session) -> ScheduleView:
            owner = session.scalar(
                select(Connection.workspace_id).where(Connection.id == connection_id)
            )
            if owner != workspace_id:
                raise NotFoundError("no such connection in this workspace")
            row = Schedule(
                id=_new_id(),
                workspace_id=workspace_id,
                connection_id=connection_id,
                kind=kind,
                params=params or {},
                schedule="daily" if daily_at is not None else "cron",
                daily_at=daily_at,
                cron=cron,
                timezone=timezone,
                enabled=True,
                next_due=next_due,
                created_at=self._clock.now(),
            )
            session.add(row)
            return _schedule_view(row)

        return self._transaction(work)

    def due_schedules(self) -> list[ScheduleView]:
        """Enabled schedules whose next due time has come."""
        now = self._clock.now()
        with self._sessions() as session:
            rows = session.scalars(
                select(Schedule)
                .where(Schedule.enabled, Schedule.next_due <= now)
                .order_by(Schedule.next_due, Schedule.id)
            ).all()
        return [_schedule_view(row) for row in rows]

    def fire_schedule(
        self, schedule_id: str, due_at: datetime, *, next_due: datetime | None = None
    ) -> JobView | None:
        """Enqueue the schedule's job for ``due_at``, once: ``None`` if that time already fired.

        The fire, its job and the schedule's ``next_due`` are one transaction,
        and ``(schedule_id, due_at)`` is unique: however many schedulers try,
        each due time makes one job. Without ``next_due``, it is the
        schedule's first due time after ``due_at``.
        """
        now = self._clock.now()

        def work(session: Session) -> JobView | None:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None:
                raise NotFoundError("no such schedule")
            values = {"schedule_id": schedule_id, "due_at": due_at, "fired_at": now}
            # ON CONFLICT DO NOTHING: a racing scheduler's insert waits for ours, then skips
            if self._postgres:
                pg = pg_insert(ScheduleFire).values(values).on_conflict_do_nothing()
                fire_id = session.scalar(pg.returning(ScheduleFire.id))
            else:
                lite = sqlite_insert(ScheduleFire).values(values).on_conflict_do_nothing()
                fire_id = session.scalar(lite.returning(ScheduleFire.id))
            if fire_id is None:
                return None
            job = self._enqueue(
                session,
                schedule.workspace_id,
                schedule.kind,
                dict(schedule.params),
                connection_id=schedule.connection_id,
                run_after=None,
                max_attempts=3,
                event="scheduled",
            )
            session.execute(
                update(ScheduleFire).where(ScheduleFire.id == fire_id).values(job_id=job.id)
            )
            schedule.next_due = (
                next_due
                if next_due is not None
                else next_due_after(
                    due_at,
                    daily_at=schedule.daily_at,
                    cron=schedule.cron,
                    timezone=schedule.timezone,
                )
            )
            return _job_view(job)

        return self._transaction(work)

    def fire_due(self, now: datetime | None = None) -> list[JobView]:
        """Fire every due schedule once, for its latest due time up to ``now`` (the clock's).

        A schedule missed for days (everything was down) runs once, not once per
        missed time, and its next due time is the first after ``now``. Racing
        callers compute the same due time, so the unique fire key lets one win.
        A stored schedule whose times no longer make sense (a timezone the tz
        database has dropped) stays due and is skipped: it holds up no other.
        """
        at = self._clock.now() if now is None else now
        with self._sessions() as session:
            rows = session.scalars(
                select(Schedule)
                .where(Schedule.enabled, Schedule.next_due <= at)
                .order_by(Schedule.next_due, Schedule.id)
            ).all()
            due = [(r.id, r.next_due, r.daily_at, r.cron, r.timezone) for r in rows]
        jobs: list[JobView] = []
        for schedule_id, stored_due, daily_at, cron, timezone in due:
            try:
                latest = latest_due(at, daily_at=daily_at, cron=cron, timezone=timezone)
            except InvalidScheduleError:
                continue
            # a next_due set by hand (not on the schedule's times) still fires, once
            due_at = latest if stored_due is None or latest >= stored_due else stored_due
            following = next_due_after(at, daily_at=daily_at, cron=cron, timezone=timezone)
            job = self.fire_schedule(schedule_id, due_at, next_due=following)
            if job is not None:
                jobs.append(job)
        return jobs

    def schedule_fires(self, schedule_id: str) -> list[tuple[datetime, str | None]]:
        """``(due_at, job_id)`` of every fire of ``schedule_id``, oldest first."""
        with self._sessions() as session:
            rows = session.execute(
                select(ScheduleFire.due_at, ScheduleFire.job_id)
                .where(ScheduleFire.schedule_id == schedule_id)
                .order_by(ScheduleFire.due_at)
            ).all()
        return [(row[0], row[1]) for row in rows]
