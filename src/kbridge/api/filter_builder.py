"""Build Klaviyo ``filter`` text from Python values, so nobody hand-writes quoting.

    F.equals("email", "a@b.co") & F.greater_than("updated", since)
    → "and(equals(email,'a@b.co'),greater-than(updated,2026-07-01T00:00:00+00:00))"

Values are rendered the way Klaviyo's grammar wants them: strings quoted
(quotes and backslashes escaped), datetimes *unquoted* ISO 8601 (naive ones
are refused: they are ambiguous by hours), numbers and booleans bare,
``None`` as ``null``, sequences as ``[…]``. ``&`` joins with ``and(…)``;
Klaviyo documents no ``or``/``not``, so there is none. ``str(expr)`` is the
text; the client then checks it against the operation (``api/filters.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kbridge.api.validation import ValidationError, check_aware

__all__ = ["F", "FilterExpr", "render_value"]


def render_value(value: Any, field: str) -> str:
    """One filter value in Klaviyo's syntax; ``field`` names it in errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return check_aware(value, field).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, Sequence | set | frozenset):
        return "[" + ",".join(render_value(v, field) for v in value) + "]"
    raise ValidationError(field, f"cannot use a {type(value).__name__} as a filter value")


@dataclass(frozen=True, slots=True)
class FilterExpr:
    """One or more conditions; ``a & b`` is their conjunction, ``str()`` the filter text."""

    parts: tuple[str, ...]

    def __and__(self, other: FilterExpr) -> FilterExpr:
        if not isinstance(other, FilterExpr):
            return NotImplemented
        return FilterExpr(self.parts + other.parts)

    def __str__(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0]
        return "and(" + ",".join(self.parts) + ")"


def _condition(operator: str, field: str, value: Any) -> FilterExpr:
    if not field or any(c in field for c in "(),'\" "):
        raise ValidationError("filter", f"{field!r} is not a field name")
    return FilterExpr((f"{operator}({field},{render_value(value, field)})",))


class F:
    """Constructors for each operator of Klaviyo's filter grammar."""

    @staticmethod
    def equals(field: str, value: Any) -> FilterExpr:
        return _condition("equals", field, value)

    @staticmethod
    def less_than(field: str, value: Any) -> FilterExpr:
        return _condition("less-than", field, value)

    @staticmethod
    def less_or_equal(field: str, value: Any) -> FilterExpr:
        return _condition("less-or-equal", field, value)

    @staticmethod
    def greater_than(field: str, value: Any) -> FilterExpr:
        return _condition("greater-than", field, value)

    @staticmethod
    def greater_or_equal(field: str, value: Any) -> FilterExpr:
        return _condition("greater-or-equal", field, value)

    @staticmethod
    def contains(field: str, value: Any) -> FilterExpr:
        return _condition("contains", field, value)

    @staticmethod
    def contains_any(field: str, values: Sequence[Any]) -> FilterExpr:
        return _condition("contains-any", field, list(values))

    @staticmethod
    def contains_all(field: str, values: Sequence[Any]) -> FilterExpr:
        return _condition("contains-all", field, list(values))

    @staticmethod
    def starts_with(field: str, value: str) -> FilterExpr:
        return _condition("starts-with", field, value)

    @staticmethod
    def ends_with(field: str, value: str) -> FilterExpr:
        return _condition("ends-with", field, value)

    @staticmethod
    def any(field: str, values: Sequence[Any]) -> FilterExpr:
        """``any(field,[…])``: the field equals one of ``values``."""
        return _condition("any", field, list(values))

    @staticmethod
    def has(field: str) -> FilterExpr:
        """``has(field)``: the relationship or attribute is present."""
        if not field or any(c in field for c in "(),'\" "):
            raise ValidationError("filter", f"{field!r} is not a field name")
        return FilterExpr((f"has({field})",))

    @staticmethod
    def all(*exprs: FilterExpr) -> FilterExpr:
        """The conjunction of ``exprs`` (same as joining them with ``&``)."""
        if not exprs:
            raise ValidationError("filter", "F.all() needs at least one condition")
        parts: tuple[str, ...] = ()
        for e in exprs:
            parts += e.parts
        return FilterExpr(parts)
