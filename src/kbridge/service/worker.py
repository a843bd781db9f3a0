"""The worker: one Dramatiq actor that claims a job in the app database and runs it.

The message names a job; :class:`JobRunner` claims it with a lease
(:meth:`AppDatabase.claim_job`), renews the lease from a thread while the
executor runs on an event loop of its own, stops the executor when a cancel
is requested or the lease is lost, and ends the job: succeeded, failed (one
line; retried with backoff when it may heal), postponed or cancelled. The
same actor runs under ``kbridge worker`` on the Redis broker and inside
``kbridge serve`` on the stub broker (:func:`start_in_process`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dramatiq

from kbridge.core import Clock, SystemClock
from kbridge.service.appdb import AppDatabase
from kbridge.service.broker import ACTOR_NAME, QUEUE, JobQueue, make_broker
from kbridge.service.errors import LeaseLostError
from kbridge.service.jobs import (
    EXECUTORS,
    Executor,
    Failure,
    JobContext,
    Postpone,
    WorkerSettings,
    backoff,
    classify,
    wait_for_held_warehouse,
)
from kbridge.service.scheduler import Scheduler, settle_expired
from kbridge.service.views import JobView
from kbridge.warehouse import DestinationLockedError

__all__ = ["InProcessService", "JobRunner", "register_actor", "start_in_process"]

_log = logging.getLogger(__name__)
_FINISHED = ("succeeded", "failed", "cancelled")
#: a stopping worker hands messages back this late, so it does not fetch them again at once
_STOPPING_DELAY = timedelta(seconds=1)


@dataclass(slots=True)
class _Running:
    """One job in progress: how the renewal thread stops it, and why."""

    job: JobView
    owner: str
    ctx: JobContext
    done: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[dict[str, Any]] | None = None
    #: ``cancel`` (asked by a user), ``lost`` (the lease is someone else's), ``shutdown``
    reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, reason: str) -> None:
        with self.lock:
            if self.reason is None:
                self.reason = reason
            if self.loop is not None and self.task is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)


class _Stopped:
    pass


_STOPPED = _Stopped()


class JobRunner:
    """Runs jobs named by id: the body of the actor, whatever the broker."""

    def __init__(
        self,
        db: AppDatabase,
        settings: WorkerSettings,
        queue: JobQueue,
        *,
        clock: Clock | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.queue = queue
        self.clock: Clock = clock or SystemClock()
        self.executors = dict(EXECUTORS if executors is None else executors)
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._host = f"{socket.gethostname()[:64]}:{os.getpid()}"

    def __repr__(self) -> str:
        return f"JobRunner({self.db!r}, running={len(self._running)})"

    def run(self, job_id: str) -> None:
        """Claim ``job_id`` and run it to an end; a job not claimable now is looked at later."""
        if self._stopping.is_set():
            # this worker is going away: the message goes back for another (or, in-process,
            # the job stays queued in the app database for the next start)
            self.queue.enqueue(job_id, delay=_STOPPING_DELAY)
            return
        owner = f"{self._host}:{uuid.uuid4().hex[:12]}"
        try:
            job = self.db.claim_job(owner, lease=self.settings.lease, job_id=job_id)
        except Exception:
            _log.warning("cannot claim job %s now; trying again later", job_id, exc_info=True)
            self.queue.enqueue(job_id, delay=self.settings.busy_retry)
            return
        if job is None:
            self._not_claimed(job_id)
            return
        self._execute(job, owner)

    def stop(self) -> None:
        """Stop every job this runner is working on; each goes back to the queue as it was."""
        self._stopping.set()
        with self._guard:
            running = list(self._running.values())
        for state in running:
            state.stop("shutdown")

    # -- a message that finds its job not claimable --------------------------------------------

    def _not_claimed(self, job_id: str) -> None:
        job = self.db.job_by_id(job_id)
        if job is None or job.state in _FINISHED:
            return  # a duplicate or stale message: nothing to do
        now = self.clock.now()
        if job.state == "queued":
            if job.cancel_requested:
                return
            if job.run_after > now:
                self.queue.enqueue(job_id, delay=job.run_after - now)
            # due but refused: a sync of the same connection runs, and dispatches the
            # connection's queued jobs again when it ends
            return
        # running under another worker's live lease: that worker finishes it, or its lease
        # lapses and the recovery sweep dispatches it again. A lapsed lease here has no
        # attempts left (or a cancel pending): settle it.
        if job.lease_expires_at is not None and job.lease_expires_at < now:
            settle_expired(self.db, self.queue.enqueue)

    # -- running one job ------------------------------------------------------------------------

    def _execute(self, job: JobView, owner: str) -> None:
        ctx = JobContext(job, self.db, self.settings, self.clock)
        executor = self.executors.get(job.kind)
        if executor is None:
            self._end(
                lambda: self.db.fail_job(
                    job.id, owner, f"no worker can run jobs of kind {job.kind!r}", retry=False
                )
            )
            return
        state = _Running(job, owner, ctx)
        with self._guard:
            self._running[job.id] = state
        renewal = threading.Thread(
            target=self._renew, args=(state,), name=f"kbridge-lease-{job.id[:8]}", daemon=True
        )
        renewal.start()
        outcome: dict[str, Any] | _Stopped | BaseException
        try:
            outcome = asyncio.run(self._main(executor, state))
        except Exception as exc:
            outcome = exc
        finally:
            state.done.set()
            renewal.join()
            with self._guard:
                self._running.pop(job.id, None)
        self._conclude(state, outcome)

    async def _main(self, executor: Executor, state: _Running) -> dict[str, Any] | _Stopped:
        task = asyncio.ensure_future(executor(state.ctx))
        with state.lock:
            state.loop = asyncio.get_running_loop()
            state.task = task
            if state.reason is not None:
                task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            if state.reason is not None:
                return _STOPPED
            raise

    def _renew(self, state: _Running) -> None:
        every = self.settings.renew_every.total_seconds()
        while not state.done.wait(every):
            try:
                going_on = self.db.renew_lease(
                    state.job.id,
                    state.owner,
                    lease=self.settings.lease,
                    progress=state.ctx.progress,
                )
            except LeaseLostError:
                state.stop("lost")
                return
            except Exception:
                _log.warning("cannot renew the lease of job %s", state.job.id, exc_info=True)
                continue
            if not going_on:
                state.stop("cancel")
                return

    def _conclude(
        self, state: _Running, outcome: dict[str, Any] | _Stopped | BaseException
    ) -> None:
        self._end_job(state, outcome)
        if state.job.kind == "sync" and state.job.connection_id is not None:
            # jobs the claim refused while this sync ran: their turn now
            try:
                waiting = self.db.due_queued_jobs(connection_id=state.job.connection_id)
            except Exception:
                _log.warning("cannot list jobs waiting for the sync", exc_info=True)
                return
            for job_id in waiting:
                if job_id != state.job.id:
                    self.queue.enqueue(job_id)

    def _end_job(self, state: _Running, outcome: dict[str, Any] | _Stopped | BaseException) -> None:
        job, owner = state.job, state.owner
        now = self.clock.now()
        if isinstance(outcome, _Stopped):
            if state.reason == "cancel":
                self._end(lambda: self.db.acknowledge_cancel(job.id, owner))
            elif state.reason == "shutdown":
                self._end(lambda: self.db.postpone_job(job.id, owner, now, "the worker stopped"))
                self.queue.enqueue(job.id)
            # "lost": another worker runs the job now; nothing of ours to write
            return
        if isinstance(outcome, DestinationLockedError):
            # another process (a CLI sync beside the service) has the DuckDB file: that
            # heals when it ends, so the job waits without spending its attempts
            verdict = wait_for_held_warehouse(outcome, job, self.settings, now)
            if isinstance(verdict, Failure):
                line = verdict.line
                self._end(lambda: self.db.fail_job(job.id, owner, line, retry=False))
                return
            outcome = verdict
        if isinstance(outcome, Postpone):
            delay, note = outcome.delay, outcome.reason if outcome.shown else None
            self._end(
                lambda: self.db.postpone_job(job.id, owner, now + delay, outcome.reason, note=note)
            )
            self.queue.enqueue(job.id, delay=delay)
            return
        if isinstance(outcome, BaseException):
            connection = None
            if job.connection_id is not None:
                connection = state.ctx.connection_name
            failure = classify(outcome, kind=job.kind, connection=connection, now=now)
            wait = failure.retry_after or backoff(self.settings, job.attempts)
            _log.info("job %s (%s) failed: %s", job.id, job.kind, failure.line)
            ended = self._end(
                lambda: self.db.fail_job(
                    job.id, owner, failure.line, retry=failure.retry, retry_after=wait
                )
            )
            if ended is not None and ended.state == "queued":
                self.queue.enqueue(job.id, delay=wait)
            return
        result = outcome
        self._end(lambda: self.db.finish_job(job.id, owner, result))

    def _end(self, write: Any) -> JobView | None:
        try:
            view: JobView = write()
        except LeaseLostError:
            _log.info("a job's lease was lost before it ended; its new worker carries on")
            return None
        return view


def register_actor(broker: dramatiq.Broker, runner: JobRunner) -> dramatiq.Actor[[str], None]:
    """Declare the one actor on ``broker``, running ``runner``."""
    return dramatiq.Actor(
        runner.run,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=QUEUE,
        priority=0,
        options={},
    )


class InProcessService:
    """A worker and a scheduler running in threads of this process; :meth:`stop` ends them.

    ``queue`` is the dispatch the REST API calls after enqueueing a job.
    """

    def __init__(
        self,
        queue: JobQueue,
        runner: JobRunner | None,
        worker: dramatiq.Worker | None,
        scheduler: Scheduler,
        scheduler_thread: threading.Thread,
        stopping: threading.Event,
    ) -> None:
        self.queue = queue
        self.runner = runner
        self.scheduler = scheduler
        self._worker = worker
        self._scheduler_thread = scheduler_thread
        self._stopping = stopping

    def __repr__(self) -> str:
        return f"InProcessService(worker={self._worker is not None})"

    def stop(self) -> None:
        """Stop the scheduler, put running jobs back in the queue, stop the worker threads."""
        self._stopping.set()
        self._scheduler_thread.join()
        if self.runner is not None:
            self.runner.stop()
        if self._worker is not None:
            self._worker.stop()


def consumer(broker: dramatiq.Broker, threads: int, *, timeout_ms: int) -> dramatiq.Worker:
    """Dramatiq's worker for ``broker`` with ``threads`` threads, prefetching no more jobs
    than it can start: with Dramatiq's default (twice the threads) a worker busy with hour-long
    syncs held messages it could not run while other workers sat idle."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=timeout_ms)
    worker.queue_prefetch = threads
    return worker


def start_in_process(
    db: AppDatabase,
    settings: WorkerSettings,
    *,
    broker: dramatiq.Broker | None = None,
    threads: int = 1,
    run_worker: bool = True,
    fire_schedules: bool = True,
    tick_every: timedelta = timedelta(seconds=5),
    clock: Clock | None = None,
) -> InProcessService:
    """Start the scheduler (and, unless ``run_worker=False``, a worker) for ``db`` in threads.

    ``broker``: default the broker of ``settings.broker_url`` (the stub broker
    when there is none: then the worker always runs, as nothing else would).
    What ``kbridge serve`` composes with the REST API.
    """
    if broker is None:
        broker = make_broker(settings.broker_url, heartbeat_timeout=settings.lease)
    queue = JobQueue(broker)
    runner: JobRunner | None = None
    worker: dramatiq.Worker | None = None
    if run_worker or settings.broker_url is None:
        runner = JobRunner(db, settings, queue, clock=clock)
        register_actor(broker, runner)
        worker = consumer(broker, threads, timeout_ms=200)
        worker.start()
    scheduler = Scheduler(db, queue, clock=clock, fire_schedules=fire_schedules)
    stopping = threading.Event()
    thread = threading.Thread(
        target=scheduler.run, args=(stopping, tick_every), name="kbridge-scheduler", daemon=True
    )
    thread.start()
    return InProcessService(queue, runner, worker, scheduler, thread, stopping)
