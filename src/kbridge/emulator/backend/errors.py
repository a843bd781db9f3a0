"""What the backend raises; http/ maps each to Klaviyo's JSON:API error format.

EmulatorBackendError
├── NotFoundError        404 not_found
├── ConflictError        409 (``code``: duplicate_profile, ``meta``: duplicate_profile_id)
├── InvalidError         400 invalid, with ``pointer`` (body) or ``parameter`` (query)
└── NotImplementedOperationError   501: a spec operation the emulator does not serve yet
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "EmulatorBackendError",
    "InvalidError",
    "NotFoundError",
    "NotImplementedOperationError",
]


class EmulatorBackendError(Exception):
    status = 500
    code = "error"
    title = "A server error occurred."

    def __init__(
        self,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        code: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        if code is not None:
            self.code = code
        self.meta: dict[str, Any] = meta or {}


class NotFoundError(EmulatorBackendError):
    status = 404
    code = "not_found"
    title = "Not found."


class ConflictError(EmulatorBackendError):
    status = 409
    code = "conflict"
    title = "Conflict."


class InvalidError(EmulatorBackendError):
    status = 400
    code = "invalid"
    title = "Invalid input."


class NotImplementedOperationError(EmulatorBackendError):
    status = 501
    code = "not_implemented"
    title = "Not implemented by the emulator."
