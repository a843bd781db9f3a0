"""What can go wrong in the service layer, grouped by what the caller should do::

    KbridgeError                              (kbridge.core)
    └── ServiceError                          anything in kbridge.service
        ├── AppDatabaseError                  the app database cannot be opened or migrated
        ├── NotFoundError                     no such workspace, job, schedule (in this workspace)
        ├── ConflictError                     a name already taken, a job not in a state to do that
        ├── LeaseLostError                    this worker no longer holds the job's lease: stop
        └── InvalidScheduleError              a schedule's daily_at, timezone or cron is malformed

Messages never contain a token, key or secret.
"""

from __future__ import annotations

from kbridge.core import KbridgeError

__all__ = [
    "AppDatabaseError",
    "ConflictError",
    "InvalidScheduleError",
    "LeaseLostError",
    "NotFoundError",
    "ServiceError",
]


class ServiceError(KbridgeError):
    """Root of the service layer's errors."""


class AppDatabaseError(ServiceError):
    """The app database is unreachable, or its schema cannot be brought up to date."""


class NotFoundError(ServiceError):
    """No such object (in the caller's workspace: another workspace's objects do not exist)."""


class ConflictError(ServiceError):
    """The request contradicts what is stored: a duplicate name, a job already finished."""


class LeaseLostError(ServiceError):
    """The job's lease expired and another worker took it (or it was finished): stop working."""


class InvalidScheduleError(ServiceError):
    """A schedule's ``field`` (``daily_at``, ``timezone`` or ``cron``) cannot be understood."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
