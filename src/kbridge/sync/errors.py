"""Errors of the sync layer.

::

    KbridgeError
    ├── SyncError           one or more streams failed; ``result`` holds every stream's
    │                       outcome (what was committed stays committed: run again to resume)
    └── ConfigurationError
        └── UnknownStreamError  a stream name that does not exist (the message lists them)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbridge.core.errors import ConfigurationError, KbridgeError

if TYPE_CHECKING:
    from kbridge.sync.results import SyncResult

__all__ = ["SyncError", "UnknownStreamError"]


class SyncError(KbridgeError):
    """Some streams failed. Everything committed before the failure is kept, with its
    bookmark, so running the sync again resumes where each stream stopped."""

    def __init__(self, message: str, result: SyncResult) -> None:
        super().__init__(message)
        self.result = result


class UnknownStreamError(ConfigurationError, KeyError):
    """No stream has this name; the message lists the streams there are."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
