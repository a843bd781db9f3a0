"""Running one coroutine per subject, many at once, reporting each as it finishes.

The client's rate limiter does the pacing (deletion jobs sit in Klaviyo's
smallest tier, 3/s and 60/min); the concurrency bound only keeps thousands of
subjects from holding thousands of open requests and pollers at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

__all__ = ["DEFAULT_CONCURRENCY", "run_each"]

T = TypeVar("T")
R = TypeVar("R")

#: subjects in flight at once
DEFAULT_CONCURRENCY = 16


async def run_each(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[R], None] | None = None,
) -> list[R]:
    """``work(item)`` for every item, at most ``concurrency`` at once; results in input order.

    ``work`` is expected to turn foreseeable failures into its result; anything
    it raises cancels the rest and propagates (an interrupted batch resumes
    from what was recorded).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    results: list[R | None] = [None] * len(items)

    async def one(index: int, item: T) -> None:
        async with gate:
            result = await work(item)
        results[index] = result
        if on_done is not None:
            on_done(result)

    try:
        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                group.create_task(one(index, item))
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None
    return cast(list[R], results)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
