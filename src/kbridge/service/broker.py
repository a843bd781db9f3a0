"""The broker: how a job id reaches a worker, on Redis or inside this process.

A message carries a job id and nothing else; the app database is the truth
about the job. A lost message costs a delay (the job is found again in the
database), a duplicate costs one failed claim. So the broker needs no
retries, results or time limits of its own, and gets none of Dramatiq's
default middleware: a time limit would kill an hour-long sync, and retries
are the app database's (attempts, ``run_after``).

- ``redis://…`` (or ``rediss://``, ``unix://``): Dramatiq's Redis broker, shared
  by every ``kbridge worker`` and ``kbridge serve`` given the same URL; a dead
  worker's unacknowledged messages are re-queued by its missing heartbeat.
- none: Dramatiq's stub broker, consumed by a worker thread in this process,
  running the very same actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import dramatiq
import redis.exceptions
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from kbridge.core import ConfigurationError

__all__ = [
    "ACTOR_NAME",
    "QUEUE",
    "REDIS_SCHEMES",
    "Dispatch",
    "JobQueue",
    "is_redis_url",
    "make_broker",
]

_log = logging.getLogger(__name__)

#: the one queue every job id goes through (the job's kind is in the app database)
QUEUE = "kbridge-jobs"
#: the one actor: it claims the job named by the message and runs it
ACTOR_NAME = "kbridge_run_job"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: Dramatiq refuses delays of a week or more; a job due later is re-sent on the way
_MAX_DELAY = timedelta(days=6)

#: ``dispatch(job_id)``: wake a worker for a job already queued in the app database
Dispatch = Callable[[str], None]


def is_redis_url(url: str | None) -> bool:
    """Whether ``url`` names a Redis server (a shared broker and shared rate budgets)."""
    return url is not None and url.startswith(REDIS_SCHEMES)


def make_broker(url: str | None, *, heartbeat_timeout: timedelta | None = None) -> dramatiq.Broker:
    """The broker at ``url`` (Redis), or an in-process stub broker when ``url`` is None.

    ``heartbeat_timeout``: how long a Redis worker may be silent before its
    unacknowledged messages go to another (Dramatiq's default: a minute).
    """
    if url is None:
        return StubBroker(middleware=[])
    if not is_redis_url(url):
        raise ConfigurationError(
            "--broker: give a Redis URL such as redis://127.0.0.1:6379/0 "
            "(or none, for the in-process broker)"
        )
    options: dict[str, object] = {}
    if heartbeat_timeout is not None:
        options["heartbeat_timeout"] = int(heartbeat_timeout.total_seconds() * 1000)
    broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=url, middleware=[], namespace="kbridge", **options
    )
    return broker


class JobQueue:
    """Sends job ids to ``broker``'s queue: the dispatch the API and the scheduler call.

    ``enqueue(job_id)`` after :meth:`AppDatabase.enqueue_job`; ``delay`` holds
    the message back (a retry's ``run_after``). A broker that cannot be reached
    is logged, not raised: the job is queued in the app database, where
    recovery finds it again.
    """

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        broker.declare_queue(QUEUE)

    def __repr__(self) -> str:
        return f"JobQueue({type(self.broker).__name__})"

    def enqueue(self, job_id: str, *, delay: timedelta | None = None) -> None:
        """Wake a worker for ``job_id`` now, or after ``delay``."""
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=QUEUE, actor_name=ACTOR_NAME, args=(job_id,), kwargs={}, options={}
        )
        millis = None
        if delay is not None and delay > timedelta(0):
            millis = int(min(delay, _MAX_DELAY).total_seconds() * 1000)
        try:
            self.broker.enqueue(message, delay=millis)
        except (redis.exceptions.RedisError, dramatiq.errors.ConnectionError) as exc:
            _log.warning("broker unreachable, job %s stays queued for recovery: %s", job_id, exc)

    def __call__(self, job_id: str) -> None:
        self.enqueue(job_id)
