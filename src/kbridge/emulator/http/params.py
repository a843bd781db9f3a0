"""Query parameters → a validated :class:`~kbridge.emulator.query.Query`.

Every JSON:API parameter Klaviyo's spec gives an operation is checked
against the catalogue: ``filter`` (fields and operators from
``x-klaviyo-filters``), ``sort``, ``page[size]``, ``page[cursor]``,
``fields[type]``, ``include`` and ``additional-fields[type]``. Anything that
looks like one of these but is not offered by the operation (``fields[x]``
for a type it does not return, ``page[…]`` on an unpaginated list) is a 400
naming the parameter, because silently ignoring it would hand the caller a
different answer than they asked for. Other parameters (``company_id``,
report options, cache busters) are left to whoever needs them.

Errors are :class:`~kbridge.emulator.backend.errors.InvalidError` with
``source.parameter`` set to the offending parameter.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote

from kbridge.catalog import Operation
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.http._spectables import PLAIN_PARAMS
from kbridge.emulator.query import Condition, InvalidCursorError, Query, Sort, decode_cursor
from kbridge.emulator.query.filters import parse_filter

__all__ = ["PageSizePolicy", "extract_cursor", "parse_query", "uses_page_cursor_parameter"]

PageSizePolicy = Literal["reject", "clamp"]

_BRACKETED: Final = re.compile(r"(fields|additional-fields|page)\[([^\]]*)\]")
_LISTED_CHOICES: Final = 25


def uses_page_cursor_parameter(operation: Operation) -> bool:
    """Reporting POSTs page with ``?page_cursor=`` instead of ``page[cursor]``."""
    return operation.paginated and operation.method == "POST"


def extract_cursor(value: str) -> str | None:
    """The bare cursor from a ``page[cursor]`` value, or None when it is empty.

    Accepts the bare cursor, a full ``links.next`` URL (the official SDK
    documents passing one), and the ``=cursor`` form the official Python SDK
    actually sends after splitting such a URL on ``page[cursor]``. Our
    cursors are base64url without padding, so a leading ``=`` is never part
    of one.
    """
    text = value.strip()
    if "?" in text:  # a links.next URL, absolute or relative, or just its query string
        for key, item in parse_qsl(text.split("?", 1)[1], keep_blank_values=True):
            if key in ("page[cursor]", "page_cursor"):
                text = item.strip()
                break
        else:
            raise InvalidError(
                "page[cursor] is a URL without a page[cursor] query parameter.",
                parameter="page[cursor]",
            )
    text = text.lstrip("=")
    if "%" in text:
        text = unquote(text)
    return text or None


def _invalid(detail: str, parameter: str) -> InvalidError:
    return InvalidError(detail, parameter=parameter)


def _choices(values: Sequence[str]) -> str:
    """A readable list of allowed values, cut short when there are many."""
    if not values:
        return "none"
    if len(values) <= _LISTED_CHOICES:
        return ", ".join(values)
    shown = ", ".join(values[:_LISTED_CHOICES])
    return f"{shown}, … ({len(values) - _LISTED_CHOICES} more)"


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _split_list(name: str, raw: str) -> tuple[str, ...]:
    """``a,b`` → ``("a", "b")``, without duplicates; an empty item is an error."""
    items: list[str] = []
    for part in raw.split(","):
        item = part.strip()
        if not item:
            raise _invalid(f"{name} has an empty value in {raw!r}.", name)
        if item not in items:
            items.append(item)
    return tuple(items)


class _QueryBuilder:
    def __init__(
        self, operation: Operation, *, allow_not: bool, page_size_policy: PageSizePolicy
    ) -> None:
        self.op = operation
        self.allow_not = allow_not
        self.page_size_policy = page_size_policy
        self.seen: set[str] = set()
        self.conditions: tuple[Condition, ...] = ()
        self.sort: Sort | None = None
        self.include: tuple[str, ...] = ()
        self.fields: dict[str, tuple[str, ...]] = {}
        self.additional: dict[str, tuple[str, ...]] = {}
        self.page_size: int | None = None
        self.cursor: str | None = None
        self.params: dict[str, str] = {}

    def once(self, name: str) -> None:
        if name in self.seen:
            raise _invalid(f"{name} is given more than once; give it once.", name)
        self.seen.add(name)

    def add(self, name: str, value: str) -> None:
        if name == "filter":
            self.once(name)
            self.conditions = parse_filter(value, self.op, allow_not=self.allow_not)
        elif name == "sort":
            self.once(name)
            self.sort = self._sort(value)
        elif name == "include":
            self.once(name)
            self.include = self._include(value)
        elif name == "page_cursor":
            self.once(name)
            self.cursor = self._page_cursor(value)
        else:
            m = _BRACKETED.fullmatch(name)
            if m is None:
                # not a JSON:API parameter: the operation's own (kept for the backend,
                # which checks its values) or one that Klaviyo ignores
                if name in PLAIN_PARAMS.get(self.op.operation_id, ()):
                    self.once(name)
                    self.params[name] = value
                return
            self.once(name)
            family, key = m.group(1), m.group(2)
            if family == "fields":
                self.fields[key] = self._fields(name, key, value)
            elif family == "additional-fields":
                self.additional[key] = self._additional(name, key, value)
            elif key == "size":
                self.page_size = self._page_size(value)
            elif key == "cursor":
                self.cursor = self._cursor(value)
            else:
                raise _invalid(
                    f"{name} is not a valid parameter; pagination uses page[cursor]"
                    + (" and page[size]." if self.op.page_size_param else "."),
                    name,
                )

    def build(self) -> Query:
        page_size = self.page_size
        if page_size is None and self.op.paginated:
            page_size = self.op.default_page_size
        return Query(
            conditions=self.conditions,
            sort=self.sort,
            page_size=page_size,
            cursor=self.cursor,
            fields=self.fields,
            include=self.include,
            additional_fields=self.additional,
            params=self.params,
        )

    # ---------------------------------------------------------------- each parameter

    def _sort(self, value: str) -> Sort:
        allowed = self.op.sort
        if not allowed:
            raise _invalid(f"Sorting is not supported for this endpoint ({self.op.key}).", "sort")
        text = value.strip()
        if text not in allowed:
            raise _invalid(
                f"{text!r} is not a valid sort value for this endpoint; "
                f"allowed: {_choices(allowed)}.{_suggest(text, allowed)}",
                "sort",
            )
        return Sort.parse(text)

    def _include(self, value: str) -> tuple[str, ...]:
        items = _split_list("include", value)
        for item in items:
            if item not in self.op.include:
                raise _invalid(
                    f"'{item}' is not an allowed include parameter for this resource.", "include"
                )
        return items

    def _fields(self, name: str, resource_type: str, value: str) -> tuple[str, ...]:
        offered = self.op.fields.get(resource_type)
        if offered is None:
            types = [f"fields[{t}]" for t in self.op.fields]
            raise _invalid(
                f"{name} is not a valid parameter for this endpoint; allowed: {_choices(types)}.",
                name,
            )
        items = _split_list(name, value)
        for item in items:
            if item not in offered:
                raise _invalid(
                    f"'{item}' is not a valid field for {name}.{_suggest(item, offered)}", name
                )
        return items

    def _additional(self, name: str, resource_type: str, value: str) -> tuple[str, ...]:
        offered = self.op.additional_fields.get(resource_type)
        if offered is None:
            types = [f"additional-fields[{t}]" for t in self.op.additional_fields]
            raise _invalid(
                f"{name} is not a valid parameter for this endpoint; allowed: {_choices(types)}.",
                name,
            )
        items = _split_list(name, value)
        for item in items:
            if item not in offered:
                raise _invalid(
                    f"'{item}' is not a valid value for {name}; allowed: {_choices(offered)}.",
                    name,
                )
        return items

    def _page_size(self, value: str) -> int:
        name = "page[size]"
        if not self.op.page_size_param:
            raise _invalid(f"{name} is not supported by this endpoint ({self.op.key}).", name)
        text = value.strip()
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
            raise _invalid(f"{name} must be an integer, not {value!r}.", name)
        size = int(text)
        low, high = 1, self.op.max_page_size or size
        if low <= size <= high:
            return size
        if self.page_size_policy == "clamp":
            return min(max(size, low), high)
        raise _invalid(f"{name} must be between {low} and {high}, not {size}.", name)

    def _cursor(self, value: str) -> str | None:
        name = "page[cursor]"
        if not self.op.paginated or uses_page_cursor_parameter(self.op):
            hint = " (reports page with page_cursor)" if self.op.paginated else ""
            raise _invalid(f"{name} is not supported by this endpoint{hint}.", name)
        return self._checked_cursor(value, name)

    def _page_cursor(self, value: str) -> str | None:
        name = "page_cursor"
        if not uses_page_cursor_parameter(self.op):
            hint = "; use page[cursor]" if self.op.paginated else ""
            raise _invalid(f"{name} is not supported by this endpoint{hint}.", name)
        return self._checked_cursor(value, name)

    @staticmethod
    def _checked_cursor(value: str, name: str) -> str | None:
        try:
            cursor = extract_cursor(value)
        except InvalidError as exc:
            raise _invalid(exc.detail.replace("page[cursor]", name, 1), name) from None
        if cursor is None:
            return None
        try:
            decode_cursor(cursor)
        except InvalidCursorError:
            raise _invalid(
                f"{name} {cursor[:40]!r} is not a cursor from this server; "
                "follow links.next as given.",
                name,
            ) from None
        return cursor


def parse_query(
    operation: Operation,
    params: Sequence[tuple[str, str]],
    *,
    allow_not: bool = True,
    page_size_policy: PageSizePolicy = "reject",
) -> Query:
    """Validate the (URL-decoded, possibly repeated) query items of one request.

    ``page_size_policy`` decides what an out-of-range ``page[size]`` does:
    ``"reject"`` (400, the default) or ``"clamp"`` into the allowed range;
    Klaviyo's actual behaviour is unverified. Each parameter may be given
    once; a repeat is a 400 rather than a silent pick of one of them.
    """
    builder = _QueryBuilder(operation, allow_not=allow_not, page_size_policy=page_size_policy)
    for name, value in params:
        builder.add(name, value)
    return builder.build()
