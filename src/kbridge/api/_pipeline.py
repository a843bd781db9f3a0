"""The request pipeline under :class:`~kbridge.api.AsyncClient`: one call built from
an operation and its arguments, then sent attempt by attempt::

    rate limiter (wait for every bucket it uses) → auth header → send (httpx)
    → adapt limiter to the response → success: decode JSON:API
                                     → 401 with OAuth: refresh once, resend
                                     → error: error_from_response → retry? (retry.py)
    → one log record per attempt
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from kbridge import catalog
from kbridge.api._client_config import ClientConfig
from kbridge.api.auth import Auth
from kbridge.api.capabilities import check_operation
from kbridge.api.errors import (
    ApiError,
    ChallengeError,
    ErrorDetails,
    QuotaExhaustedError,
    RateLimitedError,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
    redact,
    request_id_from,
)
from kbridge.api.filters import validate_filter
from kbridge.api.jsonapi import Document, decode_document
from kbridge.api.ratelimit import Permit, RateLimiter
from kbridge.api.retry import Failure, RetryPolicy, is_idempotent, should_retry, sleep_time
from kbridge.catalog import Operation, UnknownOperationError
from kbridge.core import Clock, ConfigurationError
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads

__all__ = ["JSONAPI", "ApiResponse"]

logger = logging.getLogger("kbridge.api")

JSONAPI = "application/vnd.api+json"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """A successful response: status, headers, the decoded document (``None`` for 202/204)."""

    status: int
    headers: Mapping[str, str]
    document: Document | None
    request_id: str | None
    operation_id: str | None
    body: Any = field(default=None, repr=False)
    #: the body's bytes (kept only for calls that asked for them undecoded)
    content: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical request, before retries."""

    method: str
    url: str
    path_template: str
    operation: Operation | None
    params: Mapping[str, Any] | None
    limit_params: Mapping[str, Any] | None
    content: bytes | None
    idempotent: bool
    policy: RetryPolicy
    #: decode a successful body (error bodies are always decoded)
    decode: bool = True
    #: the body's media type: JSON:API, or multipart/form-data with its boundary
    content_type: str = JSONAPI


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one attempt produced: a response's parts, or a transport failure's description."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    failure: Failure | None = None
    error_text: str | None = None
    retriable_transport: bool = False


def _classify_transport(exc: httpx.TransportError) -> tuple[Failure, bool]:
    """(how it failed, whether retrying can help) for an httpx transport exception."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure.NOT_SENT, True
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return Failure.MAYBE_SENT, True
    return Failure.NOT_SENT, False  # e.g. an unsupported URL scheme: retrying cannot help


def _query_value(value: Any) -> Any:
    """Lists become Klaviyo's comma-joined form (``fields[profile]=email,phone_number``)."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class _Pipeline:
    """Building a call and running its attempts; :class:`~kbridge.api.AsyncClient` sets
    these attributes and adds the public calls."""

    _config: ClientConfig
    _auth: Auth
    _clock: Clock
    _random: Callable[[], float]
    _limiter: RateLimiter
    _base: httpx.URL
    _origin_prefix: str
    _http: httpx.AsyncClient

    # -- building a call --------------------------------------------------------
    def _call(
        self,
        op: Operation,
        path_params: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        json: Any,
        idempotent: bool | None,
        retry: RetryPolicy | None,
    ) -> _Call:
        check_operation(op.operation_id)
        params = dict(params or {})
        if "filter" in params and params["filter"] is not None:
            validate_filter(str(params["filter"]), op)
        return _Call(
            method=op.method,
            url=_render_path(op, path_params),
            path_template=op.path,
            operation=op,
            params={k: _query_value(v) for k, v in params.items() if v is not None} or None,
            limit_params=params,
            content=None if json is None else dumps(json),
            idempotent=is_idempotent(op.method, idempotent),
            policy=retry or self._config.retry,
        )

    def _check_same_origin(self, url: str, operation_id: str | None) -> None:
        """Credentials only ever go to the configured host, whatever a response links to."""
        if url.startswith(self._origin_prefix):
            return  # every page's next link: no need to parse a long cursor URL twice
        target = httpx.URL(url)
        if (target.scheme, target.host, target.port) != (
            self._base.scheme,
            self._base.host,
            self._base.port,
        ):
            raise UnexpectedResponseError(
                ErrorDetails(
                    code="foreign_link",
                    detail=f"refusing to follow a link to another host ({target.host}); "
                    f"the client only talks to {self._base.host}",
                    operation_id=operation_id,
                )
            )

    async def _document(self, call: _Call) -> Document:
        response = await self._execute(call)
        return response.document or Document(data=None)

    # -- the pipeline -----------------------------------------------------------
    async def _execute(self, call: _Call) -> ApiResponse:
        start = self._clock.monotonic()
        op_id = call.operation.operation_id if call.operation is not None else None
        attempt, refreshed, pending_wait = 0, False, 0.0
        while True:
            attempt += 1
            permit = await self._limiter.acquire(
                self._auth.account, call.operation, call.limit_params
            )
            authorization = await self._authorization(call)
            sent_at = self._clock.monotonic()
            try:
                outcome = await self._send(call, authorization)
            except BaseException:  # cancelled, or a bug below us: still release the permit
                permit.finish(None)
                raise
            duration = self._clock.monotonic() - sent_at
            permit.finish(outcome.status, outcome.headers if outcome.status is not None else None)
            body = (
                _decode(outcome.content)
                if outcome.status is not None and (call.decode or not 200 <= outcome.status < 300)
                else None
            )
            request_id = request_id_from(outcome.headers, body)
            self._log(
                call, op_id, outcome, attempt, pending_wait + permit.waited, duration, request_id
            )
            if outcome.status is not None and 200 <= outcome.status < 300:
                return self._success(call, op_id, outcome, body, request_id)
            if (
                outcome.status == 401
                and not refreshed
                and authorization is not None
                and await self._auth.refresh_after_401(authorization)
            ):
                refreshed, pending_wait = True, 0.0
                continue
            error = self._error(call, op_id, outcome, permit)
            delay = self._retry_delay(call, outcome, error, attempt, start)
            if delay is None:
                if isinstance(error, ChallengeError) and attempt > 1:
                    error = ChallengeError(error.details, attempts=attempt)
                raise error
            await self._clock.sleep(delay)
            pending_wait = delay

    async def _authorization(self, call: _Call) -> str | None:
        """The Authorization value; /client endpoints take a public key, not ours."""
        if call.operation is not None and call.operation.auth == "public":
            return None
        return await self._auth.authorization()

    async def _send(self, call: _Call, authorization: str | None) -> _Outcome:
        headers = {"authorization": authorization} if authorization else {}
        if call.content is not None:
            headers["content-type"] = call.content_type
        total = self._config.total_timeout
        try:
            # asyncio's own timeout, not anyio's: the client runs on asyncio, and anyio's
            # asyncio backend cost every command ~50 ms of start-up to import (#18 item 11)
            async with asyncio.timeout(total):
                request = self._http.build_request(
                    call.method, call.url, params=call.params, content=call.content, headers=headers
                )
                response = await self._http.send(request, stream=True)
                try:
                    # read as a stream, not response.content: httpx's response sits in a
                    # reference cycle, and a body it kept (≈1 MB an events page) would
                    # live until the next full garbage collection
                    content = b"".join([chunk async for chunk in response.aiter_bytes()])
                finally:
                    await response.aclose()
        except TimeoutError:
            # The bytes may have left: for retrying this is a read timeout, not a connect one.
            text = f"no complete response within the total timeout of {total:g}s"
            return _Outcome(failure=Failure.MAYBE_SENT, error_text=text, retriable_transport=True)
        except httpx.TransportError as exc:
            failure, retriable = _classify_transport(exc)
            # Keep a description, not the exception: it references the request and its headers.
            text = f"{type(exc).__name__}: {redact(str(exc)) or 'no detail'}"
            return _Outcome(failure=failure, error_text=text, retriable_transport=retriable)
        return _Outcome(
            status=response.status_code,
            headers=dict(response.headers.items()),
            content=content,
            failure=None if response.is_success else Failure.STATUS,
        )

    def _success(
        self, call: _Call, op_id: str | None, outcome: _Outcome, body: Any, request_id: str | None
    ) -> ApiResponse:
        assert outcome.status is not None
        if not call.decode:
            return ApiResponse(
                status=outcome.status,
                headers=outcome.headers,
                document=None,
                request_id=request_id,
                operation_id=op_id,
                content=outcome.content,
            )
        if outcome.content and body is None:
            raise UnexpectedResponseError(
                ErrorDetails(
                    status=outcome.status,
                    code="undecodable_body",
                    detail=f"expected JSON:API, got: {redact(_excerpt(outcome.content))}",
                    operation_id=op_id,
                    request_id=request_id,
                )
            )
        return ApiResponse(
            status=outcome.status,
            headers=outcome.headers,
            document=decode_document(body) if body is not None else None,
            request_id=request_id,
            operation_id=op_id,
            body=body,
        )

    def _error(self, call: _Call, op_id: str | None, outcome: _Outcome, permit: Permit) -> ApiError:
        if outcome.status is None:
            return TransportError(
                ErrorDetails(
                    code=outcome.failure.value if outcome.failure else None,
                    detail=f"{call.method} {call.path_template} failed: {outcome.error_text}",
                    operation_id=op_id,
                ),
                reached_server=outcome.failure is not Failure.NOT_SENT,
                may_have_written=call.method.upper() not in ("GET", "HEAD", "OPTIONS"),
            )
        op = call.operation
        error = error_from_response(
            outcome.status,
            outcome.headers,
            outcome.content,
            operation_id=op_id,
            scopes=op.scopes if op is not None else (),
            now=self._clock.now(),
            daily_capped=op is not None and op.rate_limit.daily is not None,
        )
        if isinstance(error, QuotaExhaustedError):
            self._limiter.quota_exhausted(permit, error.resets_at)
        return error

    def _retry_delay(
        self, call: _Call, outcome: _Outcome, error: ApiError, attempt: int, start: float
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` to raise ``error`` now."""
        if isinstance(error, QuotaExhaustedError):
            return None
        if outcome.status is None and not outcome.retriable_transport:
            return None
        failure = outcome.failure or Failure.STATUS
        if isinstance(error, ChallengeError):
            failure = Failure.CHALLENGED
        if not should_retry(
            method=call.method,
            failure=failure,
            status=outcome.status,
            idempotent=call.idempotent,
            attempt=attempt,
            policy=call.policy,
        ):
            return None
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        delay = sleep_time(
            attempt=attempt, policy=call.policy, retry_after=retry_after, random=self._random
        )
        elapsed = self._clock.monotonic() - start
        return None if elapsed + delay > call.policy.total_deadline else delay

    def _log(
        self,
        call: _Call,
        op_id: str | None,
        outcome: _Outcome,
        attempt: int,
        wait: float,
        duration: float,
        request_id: str | None,
    ) -> None:
        status: int | str = outcome.status if outcome.status is not None else "transport-error"
        logger.info(
            "%s %s -> %s (attempt %d, waited %.3fs, took %.3fs, request id %s)",
            call.method,
            call.path_template,
            status,
            attempt,
            wait,
            duration,
            request_id or "-",
            extra={
                "method": call.method,
                "path_template": call.path_template,
                "operation_id": op_id,
                "status": outcome.status,
                "attempt": attempt,
                "wait": wait,
                "duration": duration,
                "request_id": request_id,
            },
        )


def _operation(operation_id: str) -> Operation:
    try:
        return catalog.get(operation_id)
    except UnknownOperationError:
        raise ConfigurationError(
            f"unknown operation {operation_id!r}; operation ids are Klaviyo's operationId "
            "(e.g. 'get_profiles'); use raw() for paths outside the catalogue"
        ) from None


def _render_path(op: Operation, path_params: Mapping[str, Any] | None) -> str:
    """``op.path`` with each ``{name}`` replaced by its URL-escaped value."""
    given = dict(path_params or {})
    missing = [p for p in op.path_params if given.get(p) in (None, "")]
    if missing:
        raise ConfigurationError(
            f"{op.operation_id} needs path parameter(s) {', '.join(missing)} ({op.path})"
        )
    extra = sorted(set(given) - set(op.path_params))
    if extra:
        raise ConfigurationError(
            f"{op.operation_id} has no path parameter(s) {', '.join(extra)} ({op.path})"
        )
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", quote(str(given[name]), safe=""))
    return path


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return loads(content)
    except JSONDecodeError:
        return None


def _excerpt(content: bytes, limit: int = 200) -> str:
    return " ".join(content[:limit].decode("utf-8", errors="replace").split())
