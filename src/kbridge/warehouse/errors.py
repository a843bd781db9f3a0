"""Errors of the warehouse layer.

::

    KbridgeError
    └── WarehouseError              anything the destination database refused
        ├── DestinationURLError     the ``--to`` URL cannot be understood (fatal; fix the URL)
        ├── DestinationUnavailableError  cannot open/connect (retriable once fixed)
        │   └── DestinationLockedError   another process has the DuckDB file open (wait for it)
        ├── DestinationBusyError    another sync holds the same account's streams (retriable later)
        ├── SchemaError             a table exists with a shape kbridge cannot migrate (fatal)
        └── PageShapeError          a page body the dialect cannot read as rows (read it in Python)
"""

from __future__ import annotations

from collections.abc import Sequence

from kbridge.core.errors import ConfigurationError, KbridgeError

__all__ = [
    "DestinationBusyError",
    "DestinationLockedError",
    "DestinationURLError",
    "DestinationUnavailableError",
    "PageShapeError",
    "SchemaError",
    "WarehouseError",
]


class WarehouseError(KbridgeError):
    """The destination database refused or failed an operation."""


class DestinationURLError(WarehouseError, ConfigurationError):
    """A destination URL kbridge does not understand; the message says what it expects."""


class DestinationUnavailableError(WarehouseError):
    """The destination could not be opened or reached."""


class DestinationLockedError(DestinationUnavailableError):
    """Another process holds the DuckDB file open for writing (DuckDB allows one): a
    ``kbridge sync`` beside the service, say. It will be free once that process ends.

    ``holder``: the process as DuckDB names it (``PID 1234``), or ``None`` when unknown.
    """

    def __init__(self, path: str, holder: str | None = None) -> None:
        who = f"another process ({holder})" if holder else "another kbridge process"
        super().__init__(f"cannot open DuckDB file {path!r}: {who} has it open")
        self.path = path
        self.holder = holder


class DestinationBusyError(WarehouseError):
    """Another live run holds streams this run wants (same account, same database); the
    message names them. Nothing was written: run again once the other has finished."""

    def __init__(self, account_id: str, streams: Sequence[str]) -> None:
        super().__init__(
            f"another kbridge sync is writing {', '.join(streams)} of account {account_id} "
            "into this database; run again when it has finished"
        )
        self.account_id = account_id
        self.streams = tuple(streams)


class SchemaError(WarehouseError):
    """An existing table does not match what kbridge needs and cannot be migrated."""


class PageShapeError(WarehouseError):
    """A page body that does not fit the shape the dialect reads natively (not JSON,
    or a value of an unexpected type). Nothing was written: the caller reads the page
    the general way instead."""
