"""``Client``: a blocking facade over :class:`~kbridge.api.AsyncClient`, run on a
private event loop, and :class:`BlockingService` for services of one's own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, Unpack

from kbridge.api import _blocking
from kbridge.api._async_client import AsyncClient
from kbridge.api._client_config import ClientOptions, _renamed_retry
from kbridge.api._pipeline import ApiResponse
from kbridge.api.jsonapi import Document, Resource
from kbridge.api.ratelimit import RateLimiter
from kbridge.api.retry import RetryPolicy

__all__ = ["BlockingService", "Client"]

T = TypeVar("T")
S = TypeVar("S")


class Client:
    """A blocking facade: the same calls as :class:`AsyncClient`, run on a private event loop.

    ``with Client(api_key) as client: client.request("get_profiles")``.
    The constructor takes the same keyword arguments as :class:`AsyncClient`
    (the client is built on the loop thread). ``paginate`` returns an ordinary
    iterator that fetches pages lazily.
    """

    def __init__(self, api_key: str | None = None, **options: Unpack[ClientOptions]) -> None:
        # imported here: anyio's thread portal (and the subprocess module it pulls in) cost
        # every AsyncClient user, the CLI included, ~20 ms at import for a facade they never use
        import anyio.from_thread

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
        self.catalogs = _blocking.BlockingCatalogsService(self, a.catalogs)
        self.coupons = _blocking.BlockingCouponsService(self, a.coupons)
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
