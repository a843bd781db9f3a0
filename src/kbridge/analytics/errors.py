"""Errors of the analytics layer.

::

    KbridgeError
    └── AnalyticsError          the warehouse cannot answer (no data for the account, …)
        └── MissingTableError   a table the analysis reads was never synced
"""

from __future__ import annotations

from kbridge.core.errors import KbridgeError

__all__ = ["AnalyticsError", "MissingTableError"]


class AnalyticsError(KbridgeError):
    """An analysis cannot run on this warehouse (e.g. nothing synced for the account)."""


#: the stream that writes a table, where the two names differ
_STREAM_OF = {"campaign_messages": "campaigns", "flow_actions": "flows"}


class MissingTableError(AnalyticsError):
    """Tables an analysis reads are not in the warehouse (synced with ``--streams``
    leaving them out); the message names them and the sync that adds them."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tuple(tables)
        streams = ",".join(sorted({_STREAM_OF.get(t, t) for t in tables}))
        quoted = [f"`{t}`" for t in tables]
        names = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        super().__init__(
            f"the warehouse has no {names} table: run "
            f"`kbridge sync --streams {streams} --to <this warehouse>` and try again"
        )
