"""The bounded LRU map behind the served-events cache."""

from __future__ import annotations

import pytest

from kbridge.emulator.backend.cache import BoundedCache

pytestmark = pytest.mark.unit


def test_adding_past_capacity_evicts_the_least_recently_used() -> None:
    cache: BoundedCache[int, str] = BoundedCache(2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1) == "a"  # 1 is now the most recently used
    cache.put(3, "c")
    assert (1 in cache, 2 in cache, 3 in cache) == (True, False, True)
    assert len(cache) == 2


def test_discard_forgets_and_tolerates_absent_keys() -> None:
    cache: BoundedCache[str, int] = BoundedCache(4)
    cache.put("x", 1)
    cache.discard("x")
    cache.discard("never there")
    assert cache.get("x") is None
    assert len(cache) == 0


def test_capacity_zero_keeps_nothing_and_negative_is_refused() -> None:
    cache: BoundedCache[int, int] = BoundedCache(0)
    cache.put(1, 1)
    assert cache.get(1) is None
    with pytest.raises(ValueError, match="capacity"):
        BoundedCache(-1)
