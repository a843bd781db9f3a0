"""How http/ asks the backend to perform an operation, and what it gets back.

http/ resolves the route with the catalogue, authenticates, rate-limits and
validates the query into a :class:`~kbridge.emulator.query.Query`, then calls
``backend.dispatch(Call(...))``. The backend answers with an :class:`Outcome`
that http/ serialises generically (JSON:API document, links, sparse
fieldsets, status code). The backend never sees HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kbridge.catalog import Operation
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page, Query

__all__ = ["Backend", "Call", "Outcome"]


@dataclass(frozen=True, slots=True)
class Call:
    operation: Operation
    path_params: dict[str, str]
    query: Query
    #: the decoded request body (JSON document, or form fields for multipart), or None
    body: Any = None
    #: the scopes of the caller (some operations filter what they show by scope)
    scopes: frozenset[str] = frozenset()
    #: the implemented revision answering the call ("" = the spec's); http/ translates
    #: shapes, the backend only reads it where behaviour differs (get_campaigns' filter)
    revision: str = ""
    #: the decoded body's length in bytes as sent (uncompressed), when http/ knows it
    body_bytes: int | None = None


@dataclass(slots=True)
class Outcome:
    """What an operation produced.

    ``data`` is a single :class:`Resource`, a list of them, a :class:`Page`
    (serialised with ``links.next``/``prev`` built from its cursors), or
    ``None`` (204/202 without body, or ``{"data": null}`` when
    ``null_data`` is set). ``identifiers_only`` serialises resources as
    ``{type, id}`` (relationship endpoints). ``status`` defaults to the
    operation's success status from the catalogue.
    """

    data: Resource | list[Resource] | Page[Resource] | None = None
    status: int | None = None
    included: list[Resource] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    identifiers_only: bool = False
    null_data: bool = False
    #: a non-JSON:API body (e.g. reports keep JSON:API; OAuth does not use this path)
    raw_body: bytes | None = None


class Backend(Protocol):
    """The backend as http/ sees it."""

    @property
    def account_id(self) -> str: ...

    @property
    def implemented(self) -> frozenset[str]:
        """Operation ids this backend serves; every other spec operation answers 501."""
        ...

    def dispatch(self, call: Call) -> Outcome:
        """Perform ``call``; raises ``EmulatorBackendError`` subclasses on failure
        (``NotImplementedOperationError`` for operations not emulated yet)."""
        ...

    def run_due(self, *, complete_imports: bool = True) -> None:
        """Complete jobs and scheduled work that are due at the simulated clock's now
        (with ``complete_imports=False``, a due bulk import and the jobs due after it
        stay for ``work()`` and the next call)."""
        ...

    def work(self, rows: int) -> float | None:
        """Do up to ``rows`` rows of queued work ahead of its due time (bulk imports):
        ``0.0`` when more is ready, else seconds until some is, ``None`` when idle."""
        ...

    def truth(self) -> dict[str, Any]:
        """The synthetic account's ground truth (for ``GET /_emulator/truth``)."""
        ...

    def reset(self) -> None:
        """Back to the freshly generated account (same seed, same data)."""
        ...
