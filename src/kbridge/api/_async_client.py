"""``AsyncClient``: the public calls over the request pipeline (:mod:`kbridge.api._pipeline`)."""

from __future__ import annotations

import random as _random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from kbridge import catalog
from kbridge.api._client_config import ClientConfig, _configure, _make_auth, _renamed_retry
from kbridge.api._pipeline import (
    JSONAPI,
    ApiResponse,
    _Call,
    _decode,
    _excerpt,
    _operation,
    _Pipeline,
    _query_value,
)
from kbridge.api.auth import TokenProvider
from kbridge.api.capabilities import check_operation
from kbridge.api.errors import ErrorDetails, UnexpectedResponseError, redact
from kbridge.api.jsonapi import Document, Resource, decode_document
from kbridge.api.pagination import iter_pages, iter_resources, page_params
from kbridge.api.ratelimit import RateLimiter
from kbridge.api.resources import (
    AccountsService,
    BulkService,
    CampaignsService,
    CatalogsService,
    CouponsService,
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
from kbridge.api.retry import RetryPolicy, is_idempotent
from kbridge.api.transport import default_transport
from kbridge.catalog import Operation, UnknownOperationError
from kbridge.core import Clock, SystemClock
from kbridge.core.jsoncodec import dumps

__all__ = ["AsyncClient"]


class AsyncClient(_Pipeline):
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
        self.catalogs = CatalogsService(self)
        self.coupons = CouponsService(self)
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
