"""Bulk import rows processed between requests, on the served emulator's event loop.

Without it a job's rows are imported when the job falls due, by ``run_due()`` at
the start of whichever request comes next: a push of 10,000-profile jobs at the
tier's pace (one every 0.1 s) had each POST wait ~0.4 s for the job before it.
The runner imports them (``backend.work()``, a few hundred rows at a time) from
when a job leaves its queue; ``run_due()`` still completes whatever is left when
a request that reads jobs arrives after the job's due time, so a job is complete
at the same simulated time either way (tests on a manual clock see the same
answers).

It is a task on the server's own loop, not a thread: the backend is
single-threaded by design and the loop runs one thing at a time, so no lock is
needed. A request's work from its body to its answer runs in one step of the
loop, and while any request is between its head and its answer's end the runner
waits (a 5 MB upload arrives in many reads, and a part imported in each of their
waits held it); only a request that stalls for seconds lets a part through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from kbridge.emulator.backend.call import Backend

__all__ = ["JobRunner"]

log = logging.getLogger("kbridge.emulator")

#: rows imported before the loop looks for requests again (~3 ms of CPU)
CHUNK = 250
#: the longest sleep while a job waits in the queue: the simulated clock can be moved
_POLL = 1.0
#: how long a request in flight holds the runner back before it imports a part anyway
_STALLED = 2.0


class JobRunner:
    """Runs ``work()`` of every built account's backend while there is some to do."""

    def __init__(self, backends: Callable[[], Iterable[Backend]], rows: int = CHUNK) -> None:
        self._backends = backends
        self._rows = rows
        self._poke: asyncio.Event | None = None
        #: whether :meth:`run` is running (on the server's loop)
        self.running = False
        #: requests between their head and their answer's end
        self.in_flight = 0

    def request_started(self) -> None:
        """A request is being read or answered: its waits are not the runner's to take."""
        self.in_flight += 1

    def request_ended(self) -> None:
        """A request may have queued a job, or moved the clock: look again."""
        self.in_flight = max(0, self.in_flight - 1)
        if self._poke is not None:
            self._poke.set()

    def step(self) -> float | None:
        """One part of one job: 0.0 when more is ready, else seconds until a job leaves
        its queue, or ``None`` when there is nothing to do."""
        wait: float | None = None
        for backend in self._backends():
            left = backend.work(self._rows)
            if left == 0.0:
                return 0.0
            if left is not None:
                wait = left if wait is None else min(wait, left)
        return wait

    async def run(self) -> None:
        """Until cancelled (the server stopping)."""
        poke = self._poke = asyncio.Event()
        self.running = True
        try:
            await self._loop(poke)
        finally:
            self.running = False

    async def _loop(self, poke: asyncio.Event) -> None:
        while True:
            if self.in_flight:
                # requests first: a part imported in every wait of a 5 MB upload held
                # the POST of the next job for tens of milliseconds each; one that
                # stalls (a slow client) lets a part through every _STALLED seconds
                poke.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), _STALLED)
                if self.in_flight and poke.is_set():
                    continue
            try:
                wait = self.step()
            except Exception:  # a bug in one job must not stop the others' runner
                log.exception("importing a bulk job's rows failed; run_due will retry")
                wait = _POLL
            if wait == 0.0:
                await asyncio.sleep(0)  # the loop serves what has arrived meanwhile
                continue
            poke.clear()
            timeout = None if wait is None else min(wait, _POLL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poke.wait(), timeout)
