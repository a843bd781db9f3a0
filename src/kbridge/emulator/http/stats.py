"""Per-operation request statistics for ``GET /_emulator/stats``.

Counts requests, responses by status and 429s, and keeps the most recent
server-side latencies (a bounded window, so memory stays flat under a
benchmark) for p50/p95. Benchmarks read it to check that a client paced
itself: zero 429s at the ceiling is the goal.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OperationStats", "Stats"]

_LATENCY_WINDOW = 4096


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(slots=True)
class OperationStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p50 = _percentile(ordered, 0.50) if ordered else None
        p95 = _percentile(ordered, 0.95) if ordered else None
        return {
            "requests": self.requests,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "throttled": self.statuses.get(429, 0),
            "latency_ms": {
                "p50": None if p50 is None else round(p50 * 1000, 3),
                "p95": None if p95 is None else round(p95 * 1000, 3),
            },
        }


class Stats:
    """Thread-safe: the control plane may read while requests are recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, OperationStats] = {}

    def record(self, operation_id: str, status: int, seconds: float) -> None:
        with self._lock:
            ops = self._ops.get(operation_id)
            if ops is None:
                ops = self._ops[operation_id] = OperationStats()
            ops.requests += 1
            ops.statuses[status] += 1
            ops.latencies.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            operations = {op_id: s.snapshot() for op_id, s in sorted(self._ops.items())}
        return {
            "requests": sum(s["requests"] for s in operations.values()),
            "throttled": sum(s["throttled"] for s in operations.values()),
            "operations": operations,
        }

    def clear(self) -> None:
        with self._lock:
            self._ops.clear()
