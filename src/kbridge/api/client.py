"""``AsyncClient`` (the pipeline) and ``Client`` (a blocking facade over it).

Every request takes the same road::

    resolve operation (catalogue) → validate filter / page size → render path
    → rate limiter (wait for every bucket it uses) → auth header → send (httpx)
    → adapt limiter to the response → success: decode JSON:API
                                     → 401 with OAuth: refresh once, resend
                                     → error: error_from_response → retry? (retry.py)
    → one log record per attempt

The client reads no settings from the environment; :meth:`ClientConfig.from_env`
takes the mapping the caller (the CLI) chooses to pass. The one exception is
httpx's own: proxies named in the environment (``HTTPS_PROXY``…) are honoured,
by handing the wire to httpx's transport (see :mod:`kbridge.api.transport`).
"""

from __future__ import annotations

import contextlib
import logging
import random as _random
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypedDict, TypeVar, Unpack
from urllib.parse import quote, urlsplit

import anyio
import anyio.from_thread
import httpx

from kbridge import __version__, catalog
from kbridge.api import _blocking
from kbridge.api.auth import Auth, BearerAuth, PrivateKeyAuth, TokenProvider
from kbridge.api.capabilities import check_operation
from kbridge.api.errors import (
    ApiError,
    ChallengeError,
    ErrorDetails,
    InvalidCredentialsError,
    QuotaExhaustedError,
    RateLimitedError,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
    redact,
    request_id_from,
)
from kbridge.api.filters import validate_filter
from kbridge.api.jsonapi import Document, Resource, decode_document
from kbridge.api.pagination import iter_pages, iter_resources, page_params
from kbridge.api.ratelimit import LimiterConfig, Permit, RateLimiter
from kbridge.api.resources import (
    AccountsService,
    BulkService,
    CampaignsService,
    DataPrivacyService,
    EventsService,
    FlowsService,
    ImagesService,
    ListsService,
    MetricsService,
    ProfilesService,
    ReportingService,
    SegmentsService,
    SubscriptionsService,
    TagsService,
    TemplatesService,
)
from kbridge.api.retry import Failure, RetryPolicy, is_idempotent, should_retry, sleep_time
from kbridge.api.transport import default_transport
from kbridge.catalog import Operation, UnknownOperationError
from kbridge.core import Clock, ConfigurationError, SystemClock
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "ApiResponse",
    "AsyncClient",
    "BlockingService",
    "Client",
    "ClientConfig",
    "ClientOptions",
]

logger = logging.getLogger("kbridge.api")

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
#: seconds one attempt may take end to end: httpx's read timeout restarts with every
#: chunk, so a server dripping bytes (or a proxy holding the line) would never trip it
DEFAULT_TOTAL_TIMEOUT = 120.0
JSONAPI = "application/vnd.api+json"
T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """Everything configurable about a client, frozen; ``api_key`` is never in its repr."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    revision: str = catalog.REVISION
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    #: seconds per attempt, whatever the phase (``None``: only httpx's per-phase timeouts)
    total_timeout: float | None = DEFAULT_TOTAL_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: LimiterConfig = field(default_factory=LimiterConfig)
    user_agent: str = f"kbridge/{__version__}"
    #: the wire under httpx: ``"asyncio"``, kbridge's lean HTTP/1.1 transport (httpx's
    #: own is still used behind an environment proxy), or ``"httpx"``, httpx's default
    http_transport: Literal["asyncio", "httpx"] = "asyncio"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> ClientConfig:
        """A config from ``KLAVIYO_API_KEY``/``KLAVIYO_BASE_URL`` in ``env`` (CLI: os.environ)."""
        values: dict[str, Any] = {}
        if env.get("KLAVIYO_API_KEY"):
            values["api_key"] = env["KLAVIYO_API_KEY"]
        if env.get("KLAVIYO_BASE_URL"):
            values["base_url"] = env["KLAVIYO_BASE_URL"]
        values.update(overrides)
        return cls(**values)


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


class AsyncClient:
    """The Klaviyo client. Use ``async with AsyncClient(api_key) as client: ...``.

    Pass exactly one credential: ``api_key`` (a private key, checked for
    shape at once) or ``token_provider`` (OAuth). Everything else about the
    client is its ``config`` (:class:`ClientConfig`); ``api_key`` and
    ``base_url`` may be given here or there, never differently in both.
    ``clock``, ``transport``, ``random`` and ``rate_limiter`` are injection
    points for tests and for sharing one limiter between clients of the same
    account. ``revision``, ``retry``, ``timeout`` and ``total_timeout`` are
    deprecated: set them on the config.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        token_provider: TokenProvider | None = None,
        installation_id: str | None = None,
        config: ClientConfig | None = None,
        base_url: str | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        random: Callable[[], float] | None = None,
        revision: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        total_timeout: float | None = None,
    ) -> None:
        cfg = _configure(
            config,
            api_key=api_key,
            base_url=base_url,
            deprecated={
                "revision": revision,
                "retry": retry,
                "timeout": timeout,
                "total_timeout": total_timeout,
            },
        )
        self._config = cfg
        self._auth = _make_auth(cfg.api_key, token_provider, installation_id)
        self._clock: Clock = clock or SystemClock()
        self._random = random or _random.Random().random
        self._limiter = rate_limiter or RateLimiter(clock=self._clock, config=cfg.limiter)
        self._base = httpx.URL(cfg.base_url.rstrip("/") + "/")
        #: a link starting with this is on the configured origin without parsing it
        self._origin_prefix = str(self._base.copy_with(path="/", query=None, fragment=None))
        if transport is None and cfg.http_transport == "asyncio":
            transport = default_transport(cfg.base_url)
        self._http = httpx.AsyncClient(
            base_url=cfg.base_url,
            timeout=cfg.timeout,
            transport=transport,
            headers={
                "accept": JSONAPI,
                "revision": cfg.revision,
                "user-agent": cfg.user_agent,
            },
            follow_redirects=False,
        )
        self._attach_services()

    def _attach_services(self) -> None:
        """``client.profiles`` and friends: typed actions per Klaviyo tag (see api/resources)."""
        self.accounts = AccountsService(self)
        self.bulk = BulkService(self)
        self.campaigns = CampaignsService(self)
        self.data_privacy = DataPrivacyService(self)
        self.events = EventsService(self)
        self.flows = FlowsService(self)
        self.images = ImagesService(self)
        self.lists = ListsService(self)
        self.metrics = MetricsService(self)
        self.profiles = ProfilesService(self)
        self.reporting = ReportingService(self)
        self.segments = SegmentsService(self)
        self.subscriptions = SubscriptionsService(self)
        self.tags = TagsService(self)
        self.templates = TemplatesService(self)

    # -- lifecycle ------------------------------------------------------------
    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def account(self) -> str:
        """The account fingerprint that keys rate limits (safe to log)."""
        return self._auth.account

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncClient(base_url={self._config.base_url!r}, "
            f"revision={self._config.revision!r}, auth={self._auth!r})"
        )

    # -- public calls -----------------------------------------------------------
    async def request(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> ApiResponse:
        """Call a catalogued operation by its ``operationId`` (e.g. ``"get_profiles"``)."""
        op = _operation(operation_id)
        return await self._execute(self._call(op, path_params, params, json, idempotent, retry))

    async def upload(
        self,
        operation_id: str,
        *,
        fields: Mapping[str, str],
        files: Mapping[str, tuple[str, bytes, str]],
    ) -> Document:
        """Send a ``multipart/form-data`` body (``files`` maps a field to name, bytes, media type)
        to a catalogued operation that takes one, such as ``upload_image_from_file``."""
        op = _operation(operation_id)
        # httpx's encoder writes the parts and the boundary; the pipeline sends the bytes
        encoded = httpx.Request(op.method, "http://multipart.invalid/", data=fields, files=files)
        call = replace(
            self._call(op, None, None, None, None, None),
            content=encoded.read(),
            content_type=encoded.headers["content-type"],
        )
        response = await self._execute(call)
        return response.document or Document(data=None)

    async def get_document(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Document:
        """Like :meth:`request`, returning just the decoded document (empty for 202/204)."""
        response = await self.request(
            operation_id,
            path_params=path_params,
            params=params,
            json=json,
            idempotent=idempotent,
        )
        return response.document or Document(data=None)

    def iter_pages(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> AsyncIterator[Document]:
        """Each page of a paginated operation; ``page[size]`` defaults to the maximum."""
        op = _operation(operation_id)
        first = self._call(op, path_params, page_params(op, params), json, None, None)

        async def fetch_first() -> Document:
            return await self._document(first)

        async def follow(url: str) -> Document:
            self._check_same_origin(url, op.operation_id)
            call = replace(first, url=url, params=None)
            return await self._document(call)

        return iter_pages(fetch_first, follow, operation_id=op.operation_id)

    async def get_page_bytes(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        url: str | None = None,
    ) -> bytes:
        """One page of a paginated operation as the body's bytes, undecoded: the first
        (``page[size]`` defaults to the maximum), or the ``links.next`` URL ``url`` that
        an earlier page gave (pass the same ``params``: they choose its rate limit).

        For readers that hand the JSON to something faster than building Python objects
        (the sync's DuckDB path); :meth:`decode_page` turns it into a :class:`Document`.
        Pacing, retries and errors are those of every other call.
        """
        op = _operation(operation_id)
        call = self._call(op, path_params, page_params(op, params), None, None, None)
        if url is not None:
            self._check_same_origin(url, op.operation_id)
            call = replace(call, url=url, params=None)
        response = await self._execute(replace(call, decode=False))
        return response.content

    @staticmethod
    def decode_page(content: bytes, operation_id: str | None = None) -> Document:
        """A body :meth:`get_page_bytes` returned, decoded as any response would be."""
        body = _decode(content)
        if body is None:
            raise UnexpectedResponseError(
                ErrorDetails(
                    status=200,
                    code="undecodable_body",
                    detail=f"expected JSON:API, got: {redact(_excerpt(content))}",
                    operation_id=operation_id,
                )
            )
        return decode_document(body)

    def paginate(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> AsyncIterator[Resource]:
        """Every resource of a paginated operation, fetched page by page as you iterate."""
        return iter_resources(
            self.iter_pages(operation_id, path_params=path_params, params=params, json=json)
        )

    async def raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        retries: RetryPolicy | None = None,
    ) -> ApiResponse:
        """Any method and path (or absolute URL on the base host), still paced and retried.

        Limits come from the catalogue operation the path matches; an unknown
        path shares one conservative bucket (1/s, 15/m). ``retry`` as for
        :meth:`request` (``retries`` is its deprecated old name).
        """
        retry = _renamed_retry(retry, retries)
        method = method.upper()
        path_only = urlsplit(path).path if "://" in path else path
        if "://" in path:
            self._check_same_origin(path, None)
        try:
            op: Operation | None = catalog.match(method, path_only)[0]
        except UnknownOperationError:
            op = None
        if op is not None:
            check_operation(op.operation_id)
        call = _Call(
            method=method,
            url=path,
            path_template=op.path if op is not None else path_only,
            operation=op,
            params={k: _query_value(v) for k, v in (params or {}).items()} or None,
            limit_params=params,
            content=None if json is None else dumps(json),
            idempotent=is_idempotent(method, idempotent),
            policy=retry or self._config.retry,
        )
        return await self._execute(call)

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
            with anyio.fail_after(total):
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


def _configure(
    config: ClientConfig | None,
    *,
    api_key: str | None,
    base_url: str | None,
    deprecated: Mapping[str, Any],
) -> ClientConfig:
    """The one config a client runs on: ``config``, plus the credential and host if given.

    A setting given twice with two values is refused rather than one silently
    winning; the old per-setting keywords still apply, with a warning.
    """
    cfg = config or ClientConfig()
    if api_key is not None:
        if cfg.api_key is not None and cfg.api_key != api_key:
            raise ConfigurationError("two different API keys: pass api_key or config.api_key")
        cfg = replace(cfg, api_key=api_key)
    if base_url is not None:
        if config is not None and cfg.base_url not in (DEFAULT_BASE_URL, base_url):
            raise ConfigurationError(
                f"two base URLs: base_url={base_url!r} and config.base_url={cfg.base_url!r}"
            )
        cfg = replace(cfg, base_url=base_url)
    given = {name: value for name, value in deprecated.items() if value is not None}
    if given:
        names = ", ".join(f"{name}=…" for name in given)
        warnings.warn(
            f"AsyncClient({names}) is deprecated; pass config=ClientConfig({names})",
            DeprecationWarning,
            stacklevel=3,
        )
        cfg = replace(cfg, **given)
    if cfg.total_timeout is not None and cfg.total_timeout <= 0:
        raise ConfigurationError("total_timeout must be positive seconds (or None)")
    return cfg


def _renamed_retry(retry: RetryPolicy | None, retries: RetryPolicy | None) -> RetryPolicy | None:
    """``retry`` is the one name for a call's retry policy; ``retries`` still works, warned."""
    if retries is None:
        return retry
    if retry is not None:
        raise ConfigurationError("pass retry=…, not also its deprecated name retries=…")
    warnings.warn("raw(retries=…) is deprecated; pass retry=…", DeprecationWarning, stacklevel=3)
    return retries


def _make_auth(
    api_key: str | None, token_provider: TokenProvider | None, installation_id: str | None
) -> Auth:
    if api_key is not None and token_provider is not None:
        raise InvalidCredentialsError("pass either api_key or token_provider, not both")
    if token_provider is not None:
        return BearerAuth(token_provider, installation_id=installation_id)
    if api_key is None:
        raise InvalidCredentialsError(
            "no credentials: pass api_key='pk_…' (a private key) or token_provider=… (OAuth)"
        )
    return PrivateKeyAuth(api_key)


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


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of :class:`AsyncClient`, which :class:`Client` passes on."""

    token_provider: TokenProvider | None
    installation_id: str | None
    config: ClientConfig | None
    base_url: str | None
    clock: Clock | None
    transport: httpx.AsyncBaseTransport | None
    rate_limiter: RateLimiter | None
    random: Callable[[], float] | None
    #: deprecated: set them on ``config``
    revision: str | None
    retry: RetryPolicy | None
    timeout: httpx.Timeout | None
    total_timeout: float | None


class Client:
    """A blocking facade: the same calls as :class:`AsyncClient`, run on a private event loop.

    ``with Client(api_key) as client: client.request("get_profiles")``.
    The constructor takes the same keyword arguments as :class:`AsyncClient`
    (the client is built on the loop thread). ``paginate`` returns an ordinary
    iterator that fetches pages lazily.
    """

    def __init__(self, api_key: str | None = None, **options: Unpack[ClientOptions]) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self._portal = self._portal_cm.__enter__()
        self._closed = False
        try:
            self._async: AsyncClient = self._portal.call(lambda: AsyncClient(api_key, **options))
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            self._closed = True
            raise
        a = self._async
        # typed twins generated from the async services (scripts/gen_blocking.py)
        self.accounts = _blocking.BlockingAccountsService(self, a.accounts)
        self.bulk = _blocking.BlockingBulkService(self, a.bulk)
        self.campaigns = _blocking.BlockingCampaignsService(self, a.campaigns)
        self.data_privacy = _blocking.BlockingDataPrivacyService(self, a.data_privacy)
        self.events = _blocking.BlockingEventsService(self, a.events)
        self.flows = _blocking.BlockingFlowsService(self, a.flows)
        self.images = _blocking.BlockingImagesService(self, a.images)
        self.lists = _blocking.BlockingListsService(self, a.lists)
        self.metrics = _blocking.BlockingMetricsService(self, a.metrics)
        self.profiles = _blocking.BlockingProfilesService(self, a.profiles)
        self.reporting = _blocking.BlockingReportingService(self, a.reporting)
        self.segments = _blocking.BlockingSegmentsService(self, a.segments)
        self.subscriptions = _blocking.BlockingSubscriptionsService(self, a.subscriptions)
        self.tags = _blocking.BlockingTagsService(self, a.tags)
        self.templates = _blocking.BlockingTemplatesService(self, a.templates)

    @property
    def async_client(self) -> AsyncClient:
        return self._async

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._async.rate_limiter

    @property
    def account(self) -> str:
        return self._async.account

    def request(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> ApiResponse:
        """See :meth:`AsyncClient.request`."""
        return self._portal.call(
            lambda: self._async.request(
                operation_id,
                path_params=path_params,
                params=params,
                json=json,
                idempotent=idempotent,
                retry=retry,
            )
        )

    def get_document(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Document:
        """See :meth:`AsyncClient.get_document`."""
        return self._portal.call(
            lambda: self._async.get_document(
                operation_id,
                path_params=path_params,
                params=params,
                json=json,
                idempotent=idempotent,
            )
        )

    def raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        retries: RetryPolicy | None = None,
    ) -> ApiResponse:
        """See :meth:`AsyncClient.raw`."""
        retry = _renamed_retry(retry, retries)
        return self._portal.call(
            lambda: self._async.raw(
                method, path, params=params, json=json, idempotent=idempotent, retry=retry
            )
        )

    def iter_pages(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Iterator[Document]:
        """See :meth:`AsyncClient.iter_pages`; a lazy blocking iterator."""
        return self._drain(
            self._async.iter_pages(operation_id, path_params=path_params, params=params, json=json)
        )

    def paginate(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Iterator[Resource]:
        """See :meth:`AsyncClient.paginate`; a lazy blocking iterator."""
        return self._drain(
            self._async.paginate(operation_id, path_params=path_params, params=params, json=json)
        )

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``await fn()`` on the client's loop and return its result (for async helpers)."""
        return self._portal.call(fn)

    def _drain(self, agen: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> tuple[bool, T | None]:
            try:
                return True, await anext(agen)
            except StopAsyncIteration:
                return False, None

        async def close() -> None:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                more, item = self._portal.call(step)
                if not more:
                    return
                yield item  # type: ignore[misc]
        finally:
            if not self._closed:
                # RuntimeError: collected on the loop thread, or mid-shutdown.
                with contextlib.suppress(RuntimeError):
                    self._portal.call(close)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self._async.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._async!r})"


class BlockingService(Generic[S]):
    """Any service of :class:`AsyncClient` called from blocking code, untyped (``Any``).

    Kept for code that wraps a service of its own; :class:`Client`'s services
    are the typed classes of :mod:`kbridge.api._blocking`, generated from the
    async services, so a misspelt method fails type checking.

    Each coroutine method runs on the client's loop and returns its result;
    each ``iter_…`` method returns an ordinary lazy iterator. The methods
    and their parameters are exactly those of the async service ``S``.
    """

    def __init__(self, client: Client, service: S) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> S:
        """The underlying async service."""
        return self._service

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if name.startswith("_") or not callable(attr):
            return attr
        if name.startswith("iter_"):

            def iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return self._client._drain(attr(*args, **kwargs))

            return iterate

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._client.run(lambda: attr(*args, **kwargs))

        return call

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._service)) | {"service"})

    def __repr__(self) -> str:
        return f"BlockingService({type(self._service).__name__})"
