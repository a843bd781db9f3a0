"""Cursor pagination: follow ``links.next`` exactly as given, one page in memory at a time.

Klaviyo's ``links.next`` is an absolute URL that already carries the cursor
and every original query parameter, so it is followed verbatim (never
rebuilt by hand) and iteration stops when it is null or absent. A server
that hands back a URL it already gave would loop forever; that is detected
and raised instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from kbridge.api.errors import ErrorDetails, UnexpectedResponseError
from kbridge.api.jsonapi import Document, Resource
from kbridge.catalog import Operation

__all__ = ["iter_pages", "iter_resources", "page_params", "remember_next"]


def page_params(operation: Operation, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` plus ``page[size]`` at the operation's maximum, unless the caller chose one.

    Fewer, larger pages mean fewer requests against the rate limit.
    """
    out = dict(params or {})
    if operation.page_size_param and operation.max_page_size and "page[size]" not in out:
        out["page[size]"] = operation.max_page_size
    return out


def remember_next(seen: set[str], next_url: str, operation_id: str | None = None) -> None:
    """Add ``next_url`` to the links a walk has followed; one seen before is a loop, raised."""
    if next_url in seen:
        raise UnexpectedResponseError(
            ErrorDetails(
                code="pagination_loop",
                detail="the server returned a links.next it had already returned; "
                "stopping instead of looping forever",
                operation_id=operation_id,
            )
        )
    seen.add(next_url)


async def iter_pages(
    first: Callable[[], Awaitable[Document]],
    follow: Callable[[str], Awaitable[Document]],
    *,
    operation_id: str | None = None,
) -> AsyncIterator[Document]:
    """Yield the first page, then each page ``links.next`` leads to.

    The previous page is released before the next is fetched, so memory is
    bounded by one page whatever the collection's size.
    """
    seen: set[str] = set()
    page: Document | None = await first()
    while page is not None:
        next_url = page.next_url
        yield page
        page = None  # drop our reference before fetching the next one
        if next_url is None:
            return
        remember_next(seen, next_url, operation_id)
        page = await follow(next_url)


async def iter_resources(pages: AsyncIterator[Document]) -> AsyncIterator[Resource]:
    """Each resource of each page, in order."""
    async for page in pages:
        for resource in page.resources:
            yield resource
