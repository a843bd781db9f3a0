"""The shared confirmer against a scripted Klaviyo: shared searches, backoff, deadlines,
transient and fatal errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from kbridge.api import AsyncClient, ClientConfig, PermissionDeniedError, RetryPolicy
from kbridge.core import ManualClock
from kbridge.privacy import Confirmer, PollPolicy

pytestmark = pytest.mark.unit


KEY = "pk_" + "a" * 34


class FakeKlaviyo:
    """``GET /api/profiles?filter=any(id,[…])``: the ids still alive at the clock's time."""

    def __init__(self, clock: ManualClock, deleted_at: dict[str, float]) -> None:
        self.clock = clock
        self.deleted_at = deleted_at
        self.searches: list[list[str]] = []
        self.fail_next: list[int] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.fail_next:
            status = self.fail_next.pop(0)
            return httpx.Response(status, json={"errors": [{"status": status, "code": "x"}]})
        ids = re.findall(r"'([^']+)'", request.url.params["filter"])
        self.searches.append(ids)
        now = self.clock.monotonic()
        alive = [i for i in ids if now < self.deleted_at.get(i, float("inf"))]
        data = [{"type": "profile", "id": i, "attributes": {}} for i in alive]
        return httpx.Response(200, json={"data": data, "links": {"next": None}})


def with_confirmer(
    fake: FakeKlaviyo,
    clock: ManualClock,
    poll: PollPolicy,
    body: Callable[[Confirmer], Awaitable[object]],
) -> object:
    async def go() -> object:
        async with (
            AsyncClient(
                KEY,
                base_url="https://a.klaviyo.test",
                clock=ManualClock(),
                transport=httpx.MockTransport(fake.handle),
                config=ClientConfig(retry=RetryPolicy(max_attempts=1)),
            ) as client,
            Confirmer(client, clock=clock, poll=poll) as confirmer,
        ):
            return await body(confirmer)

    return asyncio.run(go())


def test_many_subjects_share_each_search_and_follow_the_backoff() -> None:
    clock = ManualClock()
    deleted = {f"p{i}": 60.0 for i in range(150)} | {"late": 200.0, "never": float("inf")}
    fake = FakeKlaviyo(clock, deleted)
    poll = PollPolicy(first_delay=5, factor=2, max_delay=40, timeout=300)

    async def body(c: Confirmer) -> list[bool]:
        waits = [c.wait([f"p{i}"]) for i in range(150)]
        return await asyncio.gather(*waits, c.wait(["late", "p0"]), c.wait(["never"]), c.wait([]))

    answers = with_confirmer(fake, clock, poll, body)
    assert answers == [True] * 150 + [True, False, True]
    # rounds at 0, 5, 15, 35, 75 (all 150 gone), 115, 155, 195, 235 (late gone), 275, 300
    assert clock.slept == [5, 10, 20, 40, 40, 40, 40, 40, 40, 25]
    assert len(fake.searches[0]) == 100  # one search covers up to 100 ids
    assert sum(len(s) for s in fake.searches[:2]) == 152  # round one: every outstanding id
    assert fake.searches[-1] == ["never"]


def test_a_failed_search_is_retried_next_round_and_a_fatal_one_reaches_every_waiter() -> None:
    clock = ManualClock()
    fake = FakeKlaviyo(clock, {"a": 0.0})
    fake.fail_next = [500]

    async def one(c: Confirmer) -> bool:
        return await c.wait(["a"])

    assert with_confirmer(fake, clock, PollPolicy(), one) is True
    assert clock.slept == [5]  # the 500 proved nothing; the next round found it gone

    denied = FakeKlaviyo(ManualClock(), {})
    denied.fail_next = [403]

    async def two(c: Confirmer) -> list[bool]:
        return await asyncio.gather(c.wait(["a"]), c.wait(["b"]))

    with pytest.raises(PermissionDeniedError):
        with_confirmer(denied, denied.clock, PollPolicy(), two)


def test_poll_policy_refuses_nonsense() -> None:
    assert PollPolicy().timeout == 600
    for bad in ({"first_delay": 0}, {"factor": 0.5}, {"timeout": -1}, {"max_delay": 0}):
        with pytest.raises(ValueError, match="PollPolicy"):
            PollPolicy(**bad)  # type: ignore[arg-type]
