"""Confirming deletions for a whole batch with as few searches as possible.

Each subject whose deletion was requested waits on one shared
:class:`Confirmer`, which searches for every outstanding profile id at once
(``any(id,[…])``, up to 100 ids a request) instead of one search per subject:
a thousand pending subjects cost ten requests a round, and waiting does not
hold a concurrency slot that the next request could use.

Rounds follow the :class:`PollPolicy` backoff on the injected clock: a check
at once, then after ``first_delay``, growing by ``factor`` to ``max_delay``
(the backoff starts over when new subjects arrive). A subject still found
``timeout`` seconds after it began waiting is answered ``False`` (pending).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from kbridge.api import ApiError, AsyncClient, AuthenticationError, PermissionDeniedError
from kbridge.core import Clock
from kbridge.privacy.lookup import remaining_profiles

__all__ = ["Confirmer", "PollPolicy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PollPolicy:
    """How long and how often to look for deleted profiles (seconds on the injected clock).

    Checks at once, then after ``first_delay``, growing by ``factor`` up to
    ``max_delay``, until ``timeout`` has passed for a subject.
    """

    first_delay: float = 5.0
    factor: float = 2.0
    max_delay: float = 60.0
    timeout: float = 600.0

    def __post_init__(self) -> None:
        if self.first_delay <= 0 or self.factor < 1 or self.max_delay <= 0 or self.timeout < 0:
            raise ValueError("PollPolicy: delays must be positive, factor >= 1, timeout >= 0")


@dataclass(eq=False, slots=True)
class _Waiter:
    ids: frozenset[str]
    deadline: float
    answer: asyncio.Future[bool] = field(repr=False)


class Confirmer:
    """Answers "are these profiles gone?" for many subjects with shared searches.

    Use as ``async with Confirmer(client, clock=…, poll=…) as c: gone = await c.wait(ids)``;
    leaving the block stops the rounds.
    """

    def __init__(self, client: AsyncClient, *, clock: Clock, poll: PollPolicy) -> None:
        self._client = client
        self._clock = clock
        self._poll = poll
        self._waiting: list[_Waiter] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Confirmer:
        self._task = asyncio.create_task(self._rounds())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            # its error (if it died) already reached every waiter; collect it, do not re-raise
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for waiter in self._waiting:  # leaving early: nobody is left to answer them
            if not waiter.answer.done():
                waiter.answer.cancel()

    async def wait(self, profile_ids: Sequence[str]) -> bool:
        """``True`` once none of ``profile_ids`` is found; ``False`` at the timeout."""
        if not profile_ids:
            return True
        if self._task is not None and self._task.done():
            self._task.result()  # the rounds died: raise their error here too
        waiter = _Waiter(
            frozenset(profile_ids),
            self._clock.monotonic() + self._poll.timeout,
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(waiter)
        self._arrived.set()
        return await waiter.answer

    async def _rounds(self) -> None:
        delay = self._poll.first_delay
        try:
            while True:
                if not self._waiting:
                    await self._arrived.wait()
                if self._arrived.is_set():
                    self._arrived.clear()
                    delay = self._poll.first_delay
                await self._round()
                if not self._waiting:
                    continue
                now = self._clock.monotonic()
                soonest = min(w.deadline for w in self._waiting)
                await self._clock.sleep(max(0.0, min(delay, soonest - now)))
                delay = min(delay * self._poll.factor, self._poll.max_delay)
        except Exception as exc:  # fatal (auth, scope): every waiter hears it
            for waiter in self._waiting:
                if not waiter.answer.done():
                    waiter.answer.set_exception(exc)
            self._waiting.clear()
            raise

    async def _round(self) -> None:
        waiting = list(self._waiting)
        wanted = sorted({pid for w in waiting for pid in w.ids})
        try:
            left = set(await remaining_profiles(self._client, wanted))
        except ApiError as exc:
            if isinstance(exc, AuthenticationError | PermissionDeniedError):
                raise
            return  # a failed search proves nothing: look again next round
        now = self._clock.monotonic()
        for waiter in waiting:
            if not waiter.ids & left:
                waiter.answer.set_result(True)
            elif now >= waiter.deadline:
                waiter.answer.set_result(False)
            else:
                continue
            self._waiting.remove(waiter)
