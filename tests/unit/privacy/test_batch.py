"""run_each: bounded concurrency, results in order, failures raised as themselves."""

from __future__ import annotations

import asyncio

import pytest

from kbridge.privacy import run_each

pytestmark = pytest.mark.unit


def test_results_keep_input_order_and_concurrency_stays_bounded() -> None:
    running = 0
    peak = 0
    done: list[int] = []

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(n % 3 + 1):  # uneven, so completion order differs from input order
            await asyncio.sleep(0)
        running -= 1
        return n * 10

    results = asyncio.run(run_each(list(range(20)), work, concurrency=4, on_done=done.append))
    assert results == [n * 10 for n in range(20)]
    assert peak == 4
    assert sorted(done) == results
    assert done != results


def test_a_failure_is_raised_as_itself() -> None:
    async def work(n: int) -> int:
        await asyncio.sleep(0)
        if n == 3:
            raise KeyError("three")
        return n

    with pytest.raises(KeyError, match="three"):
        asyncio.run(run_each(list(range(6)), work, concurrency=2))
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(run_each([1], work, concurrency=0))
