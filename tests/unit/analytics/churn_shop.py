"""A hand-built account whose churners are known: 20 regulars and 20 who left.

With ``AS_OF`` 2026-06-01 and the default 90-day horizon the cutoff ``T`` is
2026-03-03. Regulars (``R00``…) are active every few days right up to ``AS_OF``;
leavers (``L00``…) were active until 100-150 days before ``AS_OF`` and never
again. So at ``T`` the classes are perfectly separated by recency, the label of
every regular is 0 and of every leaver 1, and at ``AS_OF`` every leaver should
rank above every regular. Two profiles stay out of the training set: ``NEVER``
(only received emails) and ``LATE`` (created after ``T``).
"""

from __future__ import annotations

from typing import Any

from kbridge.warehouse import Warehouse
from tests.unit.analytics.seed import Seed, ago, subscriptions

REGULARS = [f"R{i:02d}" for i in range(20)]
LEAVERS = [f"L{i:02d}" for i in range(20)]


def seed_churn_shop(seed: Seed, *, klaviyo: bool = False) -> Warehouse:
    """The account above; ``klaviyo`` adds a ``predictive_analytics.churn_probability``
    that ranks the classes the wrong way round (regulars 0.9, leavers 0.1)."""
    for i, pid in enumerate(REGULARS):
        extra: dict[str, Any] = {}
        if klaviyo:
            extra["predictive_analytics"] = {"churn_probability": 0.9}
        consent = subscriptions("SUBSCRIBED", email_ts=ago(399))
        seed.profile(pid, ago(400 + i), subscriptions=consent, **extra)
        for d in range(1 + i % 3, 300, 7 + i % 5):
            seed.event(pid, "Received Email", ago(d, hours=1))
            seed.event(pid, "Opened Email", ago(d))
        for d in range(5 + i % 4, 300, 45):
            seed.event(pid, "Placed Order", ago(d), 40.0 + i)
    for i, pid in enumerate(LEAVERS):
        extra = {"predictive_analytics": {"churn_probability": 0.1}} if klaviyo else {}
        seed.profile(pid, ago(420 + i), **extra)
        stop = 100 + (i * 5) % 50
        for d in range(stop, 400, 6 + i % 4):
            seed.event(pid, "Active on Site", ago(d))
            if i % 2:
                seed.event(pid, "Viewed Product", ago(d, hours=1))
        seed.event(pid, "Placed Order", ago(stop + 3), 25.0)
    seed.profile("NEVER", ago(300))
    seed.event("NEVER", "Received Email", ago(200))
    seed.profile("LATE", ago(20))
    seed.event("LATE", "Opened Email", ago(10))
    return seed.commit()
