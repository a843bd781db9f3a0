"""Query, filter conditions and pages: the contract between http/ and backend/."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["Condition", "FilterValue", "Page", "Query", "Sort"]

T = TypeVar("T")

#: A literal in a filter: a string, number, boolean, aware datetime, null, or a list of those.
FilterValue = (
    str | int | float | bool | datetime | None | tuple[str | int | float | bool | datetime, ...]
)


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition, e.g. ``greater-than(updated,2024-01-01T00:00:00Z)``.

    ``operator`` is Klaviyo's spelling (``equals``, ``any``, ``greater-than``,
    ``has``, …); ``field`` the dotted field name as written in the filter;
    ``value`` is ``None`` for ``has``. ``negated`` is set by ``not(…)``.
    """

    operator: str
    field: str
    value: FilterValue
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    field: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> Sort:
        return cls(text[1:], True) if text.startswith("-") else cls(text, False)

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


@dataclass(frozen=True, slots=True)
class Query:
    """A validated list/get request. All ``conditions`` must hold (Klaviyo ANDs them)."""

    conditions: tuple[Condition, ...] = ()
    sort: Sort | None = None
    page_size: int | None = None
    cursor: str | None = None
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    additional_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the operation's own plain parameters as the spec names them (a client report's
    #: ``statistics``, ``group_by``, ``timeframe``); their values are the backend's to check
    params: Mapping[str, str] = field(default_factory=dict)

    def condition(self, field_name: str, operator: str | None = None) -> Condition | None:
        """The first condition on ``field_name`` (and ``operator``, if given)."""
        for c in self.conditions:
            if c.field == field_name and (operator is None or c.operator == operator):
                return c
        return None

    def wants(self, resource_type: str, extra_field: str) -> bool:
        """Whether ``additional-fields[resource_type]`` asks for ``extra_field``."""
        return extra_field in self.additional_fields.get(resource_type, ())


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; cursors are opaque strings or ``None`` at the ends.

    ``items`` may be a lazy sequence (events come as ``KeptResources``).
    """

    items: Sequence[T]
    next_cursor: str | None = None
    prev_cursor: str | None = None
