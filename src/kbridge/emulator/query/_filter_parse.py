"""Parsing and validating a ``?filter=`` value against the catalogue (the grammar and the
typing rules are in :mod:`kbridge.emulator.query.filters`)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from kbridge.catalog import FilterField, Operation
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query.model import Condition, FilterValue

COMPARISON_OPERATORS: Final = frozenset(
    {"greater-than", "greater-or-equal", "less-than", "less-or-equal"}
)

#: Every condition operator Klaviyo's filter language knows (``not``/``and`` are combinators).
FILTER_OPERATORS: Final = frozenset(
    {
        "equals",
        "any",
        "contains",
        "contains-any",
        "contains-all",
        "starts-with",
        "ends-with",
        "has",
        *COMPARISON_OPERATORS,
    }
)

_MAX_LENGTH: Final = 20_000

_MAX_DEPTH: Final = 32

_PARAMETER: Final = "filter"

_NAME_RE: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$\-]*")

_BARE_RE: Final = re.compile(r"[^\s(),\[\]\"']+")

_WS_RE: Final = re.compile(r"\s*")

_INT_RE: Final = re.compile(r"[-+]?\d{1,30}")

_FLOAT_RE: Final = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

_DATETIME_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
)


# --------------------------------------------------------------------------- literals


def parse_datetime_literal(text: str) -> datetime | None:
    """``text`` as an aware datetime, or None if it is not an ISO 8601 datetime/date.

    Accepts ``2024-01-01T00:00:00Z``, ``…+00:00``, fractional seconds and a
    bare date. A value without an offset is taken as UTC, as Klaviyo does for
    unqualified filter datetimes.
    """
    if not _DATETIME_RE.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Scalar:
    """A literal as written: its text and whether it was quoted (types come later,
    from the field: the same ``1`` is an integer for one field and an error for another)."""

    __slots__ = ("quoted", "text")

    def __init__(self, text: str, *, quoted: bool) -> None:
        self.text = text
        self.quoted = quoted


class _ListLiteral:
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Scalar, ...]) -> None:
        self.items = items


_RawValue = _Scalar | _ListLiteral | None


class _RawCondition:
    __slots__ = ("field", "negated", "operator", "value")

    def __init__(self, operator: str, field: str, value: _RawValue) -> None:
        self.operator = operator
        self.field = field
        self.value = value
        self.negated = False


# --------------------------------------------------------------------------- syntax


class _Parser:
    """Recursive descent over the filter text; produces raw (untyped) conditions."""

    def __init__(self, text: str, *, allow_not: bool) -> None:
        self.text = text
        self.pos = 0
        self.allow_not = allow_not

    def fail(self, message: str, pos: int | None = None) -> InvalidError:
        at = self.pos if pos is None else pos
        if at >= len(self.text):
            where = "at the end of the filter"
        else:
            where = f"at position {at} (near {self.text[at : at + 20]!r})"
        return InvalidError(f"Invalid filter provided: {message} {where}.", parameter=_PARAMETER)

    def skip_ws(self) -> None:
        m = _WS_RE.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str, context: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r} {context}")
        self.pos += 1

    def name(self, what: str) -> tuple[str, int]:
        self.skip_ws()
        m = _NAME_RE.match(self.text, self.pos)
        if not m:
            raise self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group(), m.start()

    def parse(self) -> list[_RawCondition]:
        if not self.text.strip():
            raise InvalidError(
                "Invalid filter provided: the filter is empty.", parameter=_PARAMETER
            )
        conditions = self.expression(0)
        while self.peek() == ",":
            self.pos += 1
            conditions.extend(self.expression(0))
        if self.peek():
            raise self.fail("expected ',' or the end of the filter")
        return conditions

    def expression(self, depth: int) -> list[_RawCondition]:
        if depth > _MAX_DEPTH:
            raise self.fail(f"expressions nest more than {_MAX_DEPTH} levels deep")
        word, start = self.name("a filter operator such as equals(...)")
        self.expect("(", f"after {word!r}")
        if word == "and":
            items = self.expression(depth + 1)
            while self.peek() == ",":
                self.pos += 1
                items.extend(self.expression(depth + 1))
            self.expect(")", "to close and(...)")
            return items
        if word == "or":
            raise self.fail(
                "or(...) is not supported; Klaviyo filters combine conditions with AND only"
                " (use any(field,[...]) for alternatives on one field)",
                start,
            )
        if word == "not":
            if not self.allow_not:
                raise self.fail("not(...) is not supported", start)
            inner, inner_start = self.name("a condition inside not(...)")
            if inner in ("and", "or", "not"):
                raise self.fail("not(...) must wrap exactly one condition", inner_start)
            self.expect("(", f"after {inner!r}")
            condition = self.condition(inner, inner_start)
            self.expect(")", "to close not(...)")
            condition.negated = True
            return [condition]
        return [self.condition(word, start)]

    def condition(self, operator: str, start: int) -> _RawCondition:
        if operator not in FILTER_OPERATORS:
            known = ", ".join(sorted(FILTER_OPERATORS | {"and", "not"}))
            raise self.fail(f"unknown operator {operator!r} (known: {known})", start)
        field, _ = self.name(f"a field name as the first argument of {operator}(...)")
        value: _RawValue = None
        if self.peek() == ",":
            self.pos += 1
            value = self.value()
        self.expect(")", f"to close {operator}(...)")
        return _RawCondition(operator, field, value)

    def value(self) -> _Scalar | _ListLiteral:
        if self.peek() == "[":
            self.pos += 1
            items: list[_Scalar] = []
            if self.peek() == "]":
                self.pos += 1
                return _ListLiteral(())
            items.append(self.scalar())
            while self.peek() == ",":
                self.pos += 1
                items.append(self.scalar())
            self.expect("]", "to close the list")
            return _ListLiteral(tuple(items))
        return self.scalar()

    def scalar(self) -> _Scalar:
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted(char)
        if char == "[":
            raise self.fail("lists cannot be nested")
        m = _BARE_RE.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a value")
        self.pos = m.end()
        token = m.group()
        if _DATETIME_RE.fullmatch(token) and self.peek()[:1].isdigit():
            raise self.fail(
                f"unexpected text after the datetime {token!r} (a '+' in a timezone offset"
                " must be URL-encoded as %2B, or it arrives as a space)"
            )
        return _Scalar(token, quoted=False)

    def quoted(self, quote: str) -> _Scalar:
        start = self.pos
        text = self.text
        i = start + 1
        out: list[str] = []
        while i < len(text):
            char = text[i]
            if char == "\\":
                if i + 1 >= len(text):
                    break
                out.append(text[i + 1])
                i += 2
                continue
            if char == quote:
                self.pos = i + 1
                return _Scalar("".join(out), quoted=True)
            out.append(char)
            i += 1
        raise self.fail("unterminated string", start)


# --------------------------------------------------------------------------- validation


def _invalid(message: str) -> InvalidError:
    return InvalidError(message, parameter=_PARAMETER)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _field_for(allowed: Sequence[FilterField], where: str, raw: _RawCondition) -> FilterField:
    for spec in allowed:
        if spec.name == raw.field:
            return spec
    names = [f.name for f in allowed]
    raise _invalid(
        f"{raw.field!r} is not a valid filter field for {where}; "
        f"allowed: {', '.join(names)}.{_suggest(raw.field, names)}"
    )


def _check_operator(spec: FilterField, raw: _RawCondition) -> None:
    op, value = raw.operator, raw.value
    if op not in spec.operators():
        allowed = ", ".join(sorted(spec.operators()))
        raise _invalid(
            f"Operator {op!r} is not allowed for field {spec.name!r}; allowed: {allowed}."
        )
    if value is None and op not in spec.none:
        raise _invalid(f"Operator {op!r} on field {spec.name!r} needs a value.")
    if value is not None and op in spec.none and op not in spec.single + spec.list:
        raise _invalid(f"Operator {op!r} on field {spec.name!r} takes no value: {op}({spec.name}).")
    if isinstance(value, _ListLiteral) and op not in spec.list:
        example = ""
        if len(value.items) == 1:
            example = f", e.g. {op}({spec.name},{_literal(value.items[0])})"
        raise _invalid(
            f"Operator {op!r} on field {spec.name!r} takes a single value, not a list{example}."
        )
    if isinstance(value, _Scalar) and op not in spec.single:
        is_null = not value.quoted and value.text == "null"
        if not (is_null and op == "equals"):
            # the caller's own value in brackets: an example that works when pasted
            raise _invalid(
                f"Operator {op!r} on field {spec.name!r} takes a list value, "
                f"e.g. {op}({spec.name},[{_literal(value)}])."
            )


def _literal(value: _Scalar) -> str:
    """``value`` written back as filter text."""
    if not value.quoted:
        return value.text
    escaped = value.text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _typed(spec: FilterField, raw: _Scalar, operator: str) -> str | int | float | bool | datetime:
    """Convert one literal to the field's value type, or explain why it does not fit."""
    field, text = spec.name, raw.text
    shown = repr(text) if not raw.quoted else f"the quoted value {text!r}"
    if spec.value_format == "date-time":
        if raw.quoted:
            raise _invalid(
                f"Invalid filter provided: datetime values must not be quoted; "
                f"write {operator}({field},{text}) for field {field!r}."
            )
        when = parse_datetime_literal(text)
        if when is None:
            raise _invalid(
                f"Invalid filter provided: field {field!r} takes a datetime"
                f" such as 2024-01-01T00:00:00Z, not {shown}."
            )
        return when
    kind = spec.value_type
    if kind == "string" or kind is None:
        if raw.quoted:
            return text
        if kind is None:
            return _untyped_bare(field, text)
        raise _invalid(
            f"Invalid filter provided: field {field!r} takes a quoted string;"
            f" write {operator}({field},'{text}')."
        )
    if raw.quoted:
        raise _invalid(
            f"Invalid filter provided: field {field!r} takes an unquoted {kind}, not {shown}."
        )
    if kind == "boolean":
        if text in ("true", "false"):
            return text == "true"
        raise _invalid(
            f"Invalid filter provided: field {field!r} takes true or false, not {shown}."
        )
    if kind == "integer":
        if _INT_RE.fullmatch(text):
            return int(text)
        raise _invalid(f"Invalid filter provided: field {field!r} takes an integer, not {shown}.")
    if kind == "number":
        if _INT_RE.fullmatch(text):
            return int(text)
        number = _finite_float(text)
        if number is not None:
            return number
        raise _invalid(f"Invalid filter provided: field {field!r} takes a number, not {shown}.")
    return _untyped_bare(field, text)


def _finite_float(text: str) -> float | None:
    if not _FLOAT_RE.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _untyped_bare(field: str, text: str) -> str | int | float | bool | datetime:
    """A bare literal for a field whose type the spec does not state: infer it."""
    if text in ("true", "false"):
        return text == "true"
    if _INT_RE.fullmatch(text):
        return int(text)
    number = _finite_float(text)
    if number is not None:
        return number
    when = parse_datetime_literal(text)
    if when is not None:
        return when
    raise _invalid(f"Invalid filter provided: {text!r} for field {field!r}; quote strings.")


def _condition(allowed: Sequence[FilterField], where: str, raw: _RawCondition) -> Condition:
    spec = _field_for(allowed, where, raw)
    _check_operator(spec, raw)
    value: FilterValue
    if raw.value is None:
        value = None
    elif isinstance(raw.value, _ListLiteral):
        if not raw.value.items and raw.operator in ("contains-any", "contains-all"):
            raise _invalid(f"{raw.operator}({spec.name},[...]) needs at least one value.")
        items = []
        for item in raw.value.items:
            if not item.quoted and item.text == "null":
                raise _invalid(f"Lists cannot contain null (field {spec.name!r}).")
            items.append(_typed(spec, item, raw.operator))
        value = tuple(items)
    elif not raw.value.quoted and raw.value.text == "null":
        if raw.operator != "equals":
            raise _invalid(f"null can only be compared with equals (field {spec.name!r}).")
        value = None
    else:
        value = _typed(spec, raw.value, raw.operator)
    return Condition(raw.operator, raw.field, value, raw.negated)


def parse_filter(
    text: str,
    operation: Operation,
    *,
    allow_not: bool = True,
    fields: Sequence[FilterField] | None = None,
    pointer: str | None = None,
) -> tuple[Condition, ...]:
    """Parse ``text`` and check it against ``operation``'s allowed fields and operators.

    Nested ``and(...)`` and top-level commas are flattened into one tuple,
    all of which must hold. Raises ``InvalidError`` and nothing else, for any
    input: with ``parameter="filter"``, or with ``pointer`` when given.

    Filters in request bodies (reports' ``attributes.filter``) are not in
    ``x-klaviyo-filters``: pass their ``fields`` (from the body schema's
    description) and the body ``pointer`` instead.
    """
    allowed = operation.filters if fields is None else tuple(fields)
    try:
        if not allowed:
            raise _invalid(f"Filtering is not supported for this endpoint ({operation.key}).")
        if len(text) > _MAX_LENGTH:
            raise _invalid(f"Invalid filter provided: longer than {_MAX_LENGTH} characters.")
        raw = _Parser(text, allow_not=allow_not).parse()
        where = operation.key if fields is None else f"{operation.key} (body filter)"
        return tuple(_condition(allowed, where, r) for r in raw)
    except InvalidError as exc:
        if pointer is None:
            raise
        raise InvalidError(exc.detail, pointer=pointer) from None
