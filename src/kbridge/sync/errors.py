"""Errors of the sync layer.

::

    KbridgeError
    └── SyncError           one or more streams failed; ``result`` holds every stream's
                            outcome (what was committed stays committed: run again to resume)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbridge.core.errors import KbridgeError

if TYPE_CHECKING:
    from kbridge.sync.engine import SyncResult

__all__ = ["SyncError"]


class SyncError(KbridgeError):
    """Some streams failed. Everything committed before the failure is kept, with its
    bookmark, so running the sync again resumes where each stream stopped."""

    def __init__(self, message: str, result: SyncResult) -> None:
        super().__init__(message)
        self.result = result
