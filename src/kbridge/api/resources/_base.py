"""What every resource service shares: query building checked against the catalogue,
and the three shapes of call (one resource, a page iterator, a write with no body).

Services are thin: they turn typed keyword arguments into a JSON:API body
or query and call :class:`~kbridge.api.AsyncClient`. Query parameters are
checked against the operation's catalogue facts (sort keys, includes, sparse
fieldsets, additional fields), so a typo fails here naming the parameter,
before a request or a rate-limit token is spent.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import anyio

from kbridge import catalog
from kbridge.api.errors import ErrorDetails, UnexpectedResponseError
from kbridge.api.filter_builder import FilterExpr
from kbridge.api.jsonapi import Document, Resource
from kbridge.api.validation import ValidationError

if TYPE_CHECKING:
    from kbridge.api.client import AsyncClient

__all__ = [
    "FilterArg",
    "ListQuery",
    "Progress",
    "Service",
    "chunked",
    "list_params",
    "shared_args",
]

FilterArg = str | FilterExpr | None
"""A filter as text or built with :class:`~kbridge.api.filter_builder.F`."""

FieldsArg = Mapping[str, str | Sequence[str]]
"""Resource type → attribute names, e.g. ``{"profile": ["email", "first_name"]}``."""


class ListQuery(TypedDict, total=False):
    """The query options of a list action (each checked against what the operation allows)."""

    filter: FilterArg
    sort: str | None
    fields: FieldsArg | None
    include: str | Sequence[str] | None
    additional_fields: FieldsArg | None
    page_size: int | None


Progress = Callable[[int], None]
"""Called with the number of items each finished chunk carried (for a progress bar)."""

#: how many chunk requests of one bulk call are in flight at once; the limiter paces them
BULK_CONCURRENCY = 4


def _names(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [v.strip() for v in values.split(",") if v.strip()]
    return list(values)


def _check_subset(given: list[str], allowed: Iterable[str], param: str, op_id: str) -> None:
    allowed_set = set(allowed)
    unknown = [v for v in given if v not in allowed_set]
    if unknown:
        shown = ", ".join(sorted(allowed_set)[:20]) or "(none)"
        raise ValidationError(
            param, f"{', '.join(unknown)} not allowed by {op_id}; choose from {shown}"
        )


def list_params(
    operation_id: str,
    *,
    filter: FilterArg = None,
    sort: str | None = None,
    fields: Mapping[str, str | Sequence[str]] | None = None,
    include: str | Sequence[str] | None = None,
    additional_fields: Mapping[str, str | Sequence[str]] | None = None,
    page_size: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Query parameters for ``operation_id``, each checked against what it accepts.

    ``fields`` and ``additional_fields`` map a resource type to attribute
    names: ``fields={"profile": ["email"]}`` → ``fields[profile]=email``.
    """
    op = catalog.get(operation_id)
    out: dict[str, Any] = dict(extra or {})
    if filter is not None and str(filter):
        out["filter"] = str(filter)
    if sort:
        _check_subset([sort], op.sort, "sort", operation_id)
        out["sort"] = sort
    incl = _names(include)
    if incl:
        _check_subset(incl, op.include, "include", operation_id)
        out["include"] = incl
    for rtype, names in (fields or {}).items():
        if rtype not in op.fields:
            _check_subset([rtype], op.fields, "fields", operation_id)
        wanted = _names(names)
        _check_subset(wanted, op.fields[rtype], f"fields[{rtype}]", operation_id)
        out[f"fields[{rtype}]"] = wanted
    for rtype, names in (additional_fields or {}).items():
        allowed = op.additional_fields.get(rtype, ())
        wanted = _names(names)
        _check_subset(wanted, allowed, f"additional_fields[{rtype}]", operation_id)
        out[f"additional-fields[{rtype}]"] = wanted
    if page_size is not None:
        if not op.page_size_param or not op.max_page_size:
            raise ValidationError("page_size", f"{operation_id} does not take a page size")
        if not 1 <= page_size <= op.max_page_size:
            raise ValidationError(
                "page_size", f"{page_size} is outside 1–{op.max_page_size} for {operation_id}"
            )
        out["page[size]"] = page_size
    return out


_F = TypeVar("_F", bound=Callable[..., Any])


def shared_args(args: str) -> Callable[[_F], _F]:
    """Append ``args`` (an ``Args:`` section) to the decorated method's docstring.

    For methods taking the same options: what each option means is written once, and
    the command line and the agent, which read their help from the docstring's
    ``Args:`` (``api/_action_derive.py``), still find it on every method.
    """

    def decorate(method: _F) -> _F:
        method.__doc__ = f"{inspect.cleandoc(method.__doc__ or '')}\n\n{inspect.cleandoc(args)}"
        return method

    return decorate


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Service:
    """Base of every ``client.<resource>`` service; holds the async client."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _doc(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Document:
        return await self._client.get_document(
            operation_id, path_params=path_params, params=params, json=json
        )

    async def _one(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Resource:
        """The single resource a call returns; a success without one is unexpected."""
        doc = await self._doc(operation_id, path_params=path_params, params=params, json=json)
        return _first(doc, operation_id)

    async def _upload(
        self,
        operation_id: str,
        *,
        fields: Mapping[str, str],
        files: Mapping[str, tuple[str, bytes, str]],
    ) -> Resource:
        """The single resource a ``multipart/form-data`` upload returns."""
        doc = await self._client.upload(operation_id, fields=fields, files=files)
        return _first(doc, operation_id)

    async def _send(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> None:
        """A write Klaviyo answers with 202/204 and no body."""
        await self._client.request(operation_id, path_params=path_params, json=json)

    async def _page(
        self,
        operation_id: str,
        query: ListQuery,
        *,
        path_params: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[Resource]:
        """The first page of a list operation."""
        params = list_params(operation_id, extra=extra, **query)
        doc = await self._doc(operation_id, path_params=path_params, params=params)
        return list(doc.resources)

    def _all(
        self,
        operation_id: str,
        query: ListQuery,
        *,
        path_params: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Resource]:
        """Every resource of a list operation, page by page (checked before the first request)."""
        params = list_params(operation_id, extra=extra, **query)
        return self._iter(operation_id, path_params=path_params, params=params)

    def _iter(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Resource]:
        return self._client.paginate(operation_id, path_params=path_params, params=params)

    async def _run_chunks(
        self,
        chunks: Sequence[Sequence[Any]],
        send: Callable[[Sequence[Any]], Awaitable[Any]],
        progress: Progress | None,
        *,
        weights: Sequence[int] | None = None,
    ) -> list[Any]:
        """Send each chunk, a few at a time (the client's limiter paces them); results in order.

        ``progress`` hears of each finished chunk with its weight (default:
        its length). A failure cancels the chunks not yet sent and is raised
        as itself, not wrapped in an exception group.
        """
        results: list[Any] = [None] * len(chunks)
        limiter = anyio.CapacityLimiter(BULK_CONCURRENCY)

        async def one(index: int, chunk: Sequence[Any]) -> None:
            async with limiter:
                results[index] = await send(chunk)
            if progress is not None:
                progress(weights[index] if weights is not None else len(chunk))

        try:
            async with anyio.create_task_group() as tg:
                for i, chunk in enumerate(chunks):
                    tg.start_soon(one, i, chunk)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from None
        return results


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _first(doc: Document, operation_id: str) -> Resource:
    """The single resource of a response; a success without one is unexpected."""
    if doc.first is None:
        raise UnexpectedResponseError(
            ErrorDetails(
                code="empty_response",
                detail=f"{operation_id} succeeded but returned no resource",
                operation_id=operation_id,
            )
        )
    return doc.first
