"""The scheduler: recovery on start, then a tick that fires due schedules and rescues lost jobs.

Every step is a call on the app database followed by a dispatch of job ids,
so any number of schedulers may run at once (each due time fires once: the
database's unique key decides) and a test drives it one :meth:`Scheduler.tick`
at a time on a :class:`~kbridge.core.ManualClock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from kbridge.core import Clock, SystemClock
from kbridge.service.appdb import AppDatabase

__all__ = ["Scheduler", "settle_expired"]

_log = logging.getLogger(__name__)


def settle_expired(db: AppDatabase, dispatch: Callable[[str], None]) -> list[str]:
    """Jobs whose worker died (lease expired): back to the queue and dispatched again.

    Those with no attempts left fail, those with a cancel pending are cancelled
    (:meth:`AppDatabase.recover_jobs` decides); the ids dispatched are returned.
    """
    expired = db.expired_jobs()
    if not expired:
        return []
    queued = set(db.recover_jobs())
    again = [job_id for job_id in expired if job_id in queued]
    for job_id in again:
        dispatch(job_id)
    return again


class Scheduler:
    """Fires due schedules and re-dispatches jobs of dead workers through ``dispatch``.

    ``fire_schedules=False`` (a ``kbridge worker``) only recovers jobs; the
    schedules are fired by ``kbridge serve``.
    """

    def __init__(
        self,
        db: AppDatabase,
        dispatch: Callable[[str], None],
        *,
        clock: Clock | None = None,
        fire_schedules: bool = True,
        requeue_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.dispatch = dispatch
        self.clock: Clock = clock or SystemClock()
        self.fire_schedules = fire_schedules
        #: a job due this long and still queued lost its message (a broker restarted):
        #: dispatched again, at most once per this interval
        self.requeue_after = requeue_after
        self._last_requeue: datetime | None = None

    def __repr__(self) -> str:
        return f"Scheduler({self.db!r}, fire_schedules={self.fire_schedules})"

    def start(self) -> list[str]:
        """On start: settle jobs left by dead processes and dispatch every queued job again.

        The broker may have lost any message while nothing ran; a duplicate
        costs one failed claim.
        """
        ids = self.db.recover_jobs()
        for job_id in ids:
            self.dispatch(job_id)
        self._last_requeue = self.clock.now()
        return ids

    def tick(self) -> list[str]:
        """One step: fire what is due now, rescue jobs of dead workers and lost messages.

        Returns the ids dispatched.
        """
        sent: list[str] = []
        if self.fire_schedules:
            for job in self.db.fire_due(self.clock.now()):
                self.dispatch(job.id)
                sent.append(job.id)
        sent.extend(settle_expired(self.db, self.dispatch))
        now = self.clock.now()
        if self._last_requeue is None or now - self._last_requeue >= self.requeue_after:
            self._last_requeue = now
            for job_id in self.db.due_queued_jobs(due_before=now - self.requeue_after):
                if job_id not in sent:
                    self.dispatch(job_id)
                    sent.append(job_id)
        return sent

    def run(self, stop: threading.Event, every: timedelta) -> None:
        """:meth:`start`, then :meth:`tick` every ``every`` until ``stop`` is set.

        A failing step (the database briefly away) is logged and tried again
        next time: the loop outlives it.
        """
        started = False
        while True:
            try:
                if not started:
                    self.start()
                    started = True
                else:
                    self.tick()
            except Exception:
                _log.warning("scheduler: a step failed; trying again", exc_info=True)
            if stop.wait(every.total_seconds()):
                return
