"""Klaviyo's JSON:API error documents, and the one place http/ turns a failure into one.

Every error the emulator answers has the shape Klaviyo sends (digest §6)::

    {"errors": [{"id": <uuid4>, "status": <int>, "code", "title", "detail",
                 "source": {"pointer" | "parameter"}, "meta": {}}]}

served as ``application/vnd.api+json`` — never an HTML page, not even for a bug.

Errors raised inside http/::

    HttpProblem                 an answer decided by the HTTP layer (route, auth,
    │                           revision, scopes, rate limit, body); carries status,
    │                           code, title, detail, source and extra headers
    └── (backend errors)        ``kbridge.emulator.backend.errors.EmulatorBackendError``
                                subclasses are mapped by :func:`backend_error_response`
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from kbridge.core import dumps
from kbridge.emulator.backend.errors import EmulatorBackendError

__all__ = [
    "JSONAPI_CONTENT_TYPE",
    "TITLES",
    "HttpProblem",
    "backend_error_response",
    "error_document",
    "error_response",
]

JSONAPI_CONTENT_TYPE = "application/vnd.api+json"

#: Titles Klaviyo uses per code (``invalid``, ``not_authenticated``, ``throttled`` and
#: ``duplicate_profile`` are observed; the others follow the same DRF conventions).
TITLES: dict[str, str] = {
    "invalid": "Invalid input.",
    "not_authenticated": "Authentication credentials were not provided.",
    "permission_denied": "You do not have permission to perform this action.",
    "not_found": "Not found.",
    "method_not_allowed": "Method not allowed.",
    "conflict": "Conflict.",
    "gone": "Gone.",
    "request_too_large": "Request entity too large.",
    "unsupported_media_type": "Unsupported media type.",
    "throttled": "Request was throttled.",
    "error": "A server error occurred.",
    "not_implemented": "Not implemented by the emulator.",
}


class HttpProblem(Exception):
    """An error answer decided by the HTTP layer; raise it to stop handling a request."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        pointer: str | None = None,
        parameter: str | None = None,
        meta: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title or TITLES.get(code, "Error.")
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.meta: dict[str, Any] = dict(meta or {})
        self.headers: dict[str, str] = dict(headers or {})

    def response(self) -> Response:
        return error_response(
            self.status,
            self.code,
            self.detail,
            title=self.title,
            pointer=self.pointer,
            parameter=self.parameter,
            meta=self.meta,
            headers=self.headers,
        )


def error_document(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One JSON:API error document; ``source`` names the parameter or the body pointer.

    Klaviyo sends ``source.pointer: "/data/"`` when nothing more precise applies
    (e.g. its 401 and 429 bodies), so that is the default.
    """
    source: dict[str, str]
    if parameter is not None:
        source = {"parameter": parameter}
    else:
        source = {"pointer": pointer if pointer is not None else "/data/"}
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": title or TITLES.get(code, "Error."),
                "detail": detail,
                "source": source,
                "meta": dict(meta or {}),
            }
        ]
    }


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
    meta: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    document = error_document(
        status, code, detail, title=title, pointer=pointer, parameter=parameter, meta=meta
    )
    return Response(
        dumps(document),
        status_code=status,
        media_type=JSONAPI_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def backend_error_response(exc: EmulatorBackendError) -> Response:
    """The backend's error, keeping its status, code, title, pointer/parameter and meta."""
    return error_response(
        exc.status,
        exc.code,
        exc.detail,
        title=exc.title,
        pointer=exc.pointer,
        parameter=exc.parameter,
        meta=exc.meta,
    )
