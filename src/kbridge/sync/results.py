"""What a sync run reports: one :class:`StreamResult` per stream, in a :class:`SyncResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StreamResult", "SyncResult"]


@dataclass(slots=True)
class StreamResult:
    stream: str
    records: int = 0
    pages: int = 0
    seconds: float = 0.0
    #: what ended the stream, as raised (its type and attributes kept for callers that
    #: decide by them); :attr:`error` is its one-line text
    exception: BaseException | None = None
    #: the most the client's pacing let the stream send, for "% of rate budget": requests
    #: a second, and at once (None when it did not pace)
    budget_rate: float | None = None
    budget_burst: int = 0
    #: the most requests the client's pacing allowed in ``seconds`` (its windows' count);
    #: when set, "% of rate budget" is measured against it instead of the rate and burst
    budget_allowed: float | None = None
    #: not an error, but the user should know: e.g. a report stream that stopped at its
    #: daily quota and resumes on a later run
    note: str | None = None
    #: of ``records``, those read again by the lookback (report streams: rows of days
    #: before the run's first new day); the rest are new
    reread: int = 0

    @property
    def error(self) -> str | None:
        """``"TypeName: message"`` of :attr:`exception`, None when the stream succeeded."""
        exc = self.exception
        return None if exc is None else f"{type(exc).__name__}: {exc}"

    @property
    def budget_used(self) -> float | None:
        """Requests as a share of the most the client's pacing let the stream send in its
        time (1.0: the rate limits, not the client or the server, set the pace).

        Measured against ``budget_allowed`` (what the limiter's windows allowed in the
        time) when known, else ``budget_burst + budget_rate × seconds``, so a stream
        that ran at the ceiling reads near 100 % however short it was. None for runs
        under a second or of fewer than three requests (too few to say), and when the
        client did not pace.
        """
        if not self.budget_rate or self.seconds < 1.0 or self.pages < 3:
            return None
        if self.budget_allowed:
            return self.pages / self.budget_allowed
        return self.pages / (self.budget_burst + self.budget_rate * self.seconds)

    def to_dict(self) -> dict[str, Any]:
        rate = self.records / self.seconds if self.seconds > 0 else None
        budget = self.budget_used
        return {
            "stream": self.stream,
            "records": self.records,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "records_per_second": None if rate is None else round(rate, 1),
            "rate_budget_pct": None if budget is None else round(100 * budget, 1),
            "error": self.error,
            "note": self.note,
            "reread": self.reread,
        }


@dataclass(slots=True)
class SyncResult:
    account_id: str
    streams: dict[str, StreamResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.exception is None for r in self.streams.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "ok": self.ok,
            "streams": [r.to_dict() for r in self.streams.values()],
        }
