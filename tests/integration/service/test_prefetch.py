"""A worker takes from the broker no more jobs than it can start."""

from __future__ import annotations

import threading
import time

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from kbridge.service.worker import consumer

pytestmark = pytest.mark.integration


def test_two_one_thread_workers_run_two_long_jobs_at_once(redis_url: str) -> None:
    """With Dramatiq's default prefetch (twice the threads) the first worker to poll held
    both messages and ran them one after the other while the second worker sat idle."""
    broker = RedisBroker(url=redis_url, middleware=[], namespace="kbridge-prefetch")  # type: ignore[no-untyped-call]
    running: set[str] = set()
    both = threading.Event()
    release = threading.Event()
    lock = threading.Lock()

    def long_job(name: str) -> None:
        with lock:
            running.add(threading.current_thread().name)
            if len(running) == 2:
                both.set()
        release.wait(60)

    dramatiq.Actor(long_job, broker=broker, actor_name="long_job", queue_name="default",
                   priority=0, options={})  # fmt: skip
    for name in ("a", "b"):
        broker.enqueue(dramatiq.Message(queue_name="default", actor_name="long_job",
                                        args=(name,), kwargs={}, options={}))  # fmt: skip
    workers = [consumer(broker, 1, timeout_ms=100) for _ in range(2)]
    for w in workers:
        w.start()
        time.sleep(0.5)  # the first polls alone for a while, as a busy machine would let it
    try:
        assert both.wait(30), f"only {len(running)} job(s) ran at once"
    finally:
        release.set()
        for w in workers:
            w.stop()
        broker.close()
