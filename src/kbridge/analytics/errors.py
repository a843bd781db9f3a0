"""Errors of the analytics layer.

::

    KbridgeError
    └── AnalyticsError          the warehouse cannot answer (no data for the account, …)
"""

from __future__ import annotations

from kbridge.core.errors import KbridgeError

__all__ = ["AnalyticsError"]


class AnalyticsError(KbridgeError):
    """An analysis cannot run on this warehouse (e.g. nothing synced for the account)."""
