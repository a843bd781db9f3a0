"""Every error the API answers, in one JSON shape, and never a traceback.

``{"error": {"status": 422, "field": "api_key", "message": "api_key: …"}}``:
``field`` names what to fix (a body field, dotted into nested objects, or a
query parameter), ``message`` is one line that starts with it. FastAPI's own
validation errors are rewritten into this shape without the ``input`` pydantic
echoes, which could be an API key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kbridge.core import KbridgeError

__all__ = ["ApiProblem", "install_problem_handlers", "invalid", "problem_body"]

_log = logging.getLogger("kbridge.web")
_LOCATIONS = frozenset({"query", "path", "header", "cookie"})
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})
#: FastAPI's 400 for a body its JSON parser gave up on (nested past the recursion limit)
_UNPARSED = "There was an error parsing the body"


class ApiProblem(Exception):
    """An answer other than success: ``status``, one line, and the ``field`` at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def invalid(field: str, message: str) -> ApiProblem:
    """A 422 naming ``field``; the message is prefixed with it."""
    return ApiProblem(422, f"{field}: {message}", field=field)


def problem_body(
    status: int,
    message: str,
    *,
    field: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The JSON every error response carries."""
    error: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        error["field"] = field
    if errors:
        error["errors"] = list(errors)
    return {"error": error}


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if not parts:
        return "body"
    if parts[0] in _LOCATIONS and len(parts) > 1:
        return parts[1]  # a list-valued query parameter's index is not the user's word
    if parts[0] == "body" and len(parts) > 1:
        return ".".join(parts[1:])
    return parts[0]


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        why = (error.get("ctx") or {}).get("error")
        return f"the body is not valid JSON ({why})" if why else "the body is not valid JSON"
    if tuple(error.get("loc", ())) == ("body",) and kind in _NOT_AN_OBJECT:
        # also what FastAPI reports for JSON sent without its content type
        return "must be a JSON object, sent with Content-Type: application/json"
    text = str(error.get("msg", "invalid"))
    # a validator's ValueError reads "Value error, <our line>": the prefix says nothing
    return text.removeprefix("Value error, ")


def _validation(errors: Sequence[Any]) -> list[dict[str, str]]:
    found = []
    for error in errors:
        loc = error.get("loc", ())
        field = "body" if error.get("type") == "json_invalid" else _field(loc)
        found.append({"field": field, "message": f"{field}: {_message(error)}"})
    return found


def _json(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Any:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every failure of ``app`` in the one shape."""

    async def on_problem(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, ApiProblem)
        body = problem_body(exc.status, exc.message, field=exc.field)
        return _json(exc.status, body, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        found = _validation(exc.errors())
        first = found[0] if found else {"field": "body", "message": "body: invalid"}
        body = problem_body(422, first["message"], field=first["field"], errors=found)
        return _json(422, body)

    async def on_http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _UNPARSED:
            body = problem_body(422, "body: the body is not valid JSON", field="body")
            return _json(422, body)
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return _json(exc.status_code, problem_body(exc.status_code, message), exc.headers)

    async def on_kbridge(request: Request, exc: Exception) -> Any:
        # a foreseeable failure the routes do not map (the master key does not open the
        # app database, the database is unreachable): its one line, which carries no secret
        _log.error("cannot answer %s %s: %s", request.method, request.url.path, exc)
        return _json(500, problem_body(500, str(exc)))

    async def on_crash(request: Request, exc: Exception) -> Any:
        # the operator's log keeps the type; the caller gets one line and no traceback
        _log.error(
            "internal error answering %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return _json(500, problem_body(500, "internal error; the server log has the details"))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(KbridgeError, on_kbridge)
    app.add_exception_handler(Exception, on_crash)
