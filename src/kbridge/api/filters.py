"""Klaviyo's ``filter`` grammar, parsed and checked on the client before sending.

The grammar (from Klaviyo's docs and the spec's ``x-klaviyo-filters``)::

    filter     := expression ("," expression)*          top-level commas mean AND
    expression := "and(" filter ")" | operator "(" field ["," value] ")"
    value      := 'text' | "text" | [value, ...] | datetime | number | true | false | null

Datetimes, numbers and booleans are *unquoted* (a quoted datetime is
refused by Klaviyo); strings are quoted with either quote. ``has(field)``
takes no value. ``or``/``not`` are not documented and are refused.

:func:`validate_filter` checks every field/operator pair against the
operation's catalogue facts and raises :class:`FilterError` naming the field
and the operators it allows, so a typo costs no request (and no rate-limit
token). The emulator has its own, independent parser on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from kbridge.api.errors import FilterError
from kbridge.catalog import FilterField, Operation

__all__ = ["Condition", "FilterError", "parse_filter", "validate_filter"]

ValueKind = Literal["single", "list", "none"]

_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_FIELD = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$-]*$")
_PUNCT = "(),[]"
_STOP = _PUNCT + "'\""


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator(field, value)`` of a filter; ``kind`` says how many values it took."""

    operator: str
    field: str
    value: Any = None
    kind: ValueKind = "single"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["punct", "string", "bare"]
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(_Token("punct", ch, i))
            i += 1
        elif ch in "'\"":
            end = i + 1
            chars: list[str] = []
            while end < n and text[end] != ch:
                if text[end] == "\\" and end + 1 < n:
                    end += 1
                chars.append(text[end])
                end += 1
            if end >= n:
                raise FilterError(f"filter: the string starting at position {i} is not closed")
            tokens.append(_Token("string", "".join(chars), i))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _STOP:
                i += 1
            tokens.append(_Token("bare", text[start:i], start))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> _Token:
        tok = self.peek()
        if tok is None:
            raise FilterError(f"filter: expected {what} but the expression ended")
        self.i += 1
        return tok

    def expect(self, punct: str) -> None:
        tok = self.next(repr(punct))
        if tok.kind != "punct" or tok.text != punct:
            raise FilterError(f"filter: expected {punct!r} at position {tok.pos}, got {tok.text!r}")

    def at(self, punct: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == punct

    def parse(self) -> list[Condition]:
        if not self.tokens:
            raise FilterError("filter: the expression is empty")
        conditions = self.expressions()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"filter: unexpected {tok.text!r} at position {tok.pos}")
        return conditions

    def expressions(self) -> list[Condition]:
        conditions = self.expression()
        while self.at(","):
            self.i += 1
            conditions.extend(self.expression())
        return conditions

    def expression(self) -> list[Condition]:
        tok = self.next("an operator such as equals(...)")
        if tok.kind != "bare":
            raise FilterError(
                f"filter: expected an operator at position {tok.pos}, got {tok.text!r}"
            )
        name = tok.text
        self.expect("(")
        if name == "and":
            inner = self.expressions()
            self.expect(")")
            return inner
        if name in ("or", "not"):
            raise FilterError(
                f"filter: {name}() is not supported by Klaviyo; combine conditions with and() "
                "or top-level commas"
            )
        field_tok = self.next("a field name")
        if field_tok.kind != "bare" or not _FIELD.match(field_tok.text):
            raise FilterError(
                f"filter: {name}() needs a field name first, got {field_tok.text!r} "
                f"at position {field_tok.pos}"
            )
        if self.at(")"):
            self.i += 1
            return [Condition(name, field_tok.text, None, "none")]
        self.expect(",")
        if self.at("["):
            value: Any = self.list_value()
            kind: ValueKind = "list"
        else:
            value, kind = self.scalar(), "single"
        self.expect(")")
        return [Condition(name, field_tok.text, value, kind)]

    def list_value(self) -> list[Any]:
        self.expect("[")
        values: list[Any] = []
        if self.at("]"):
            raise FilterError("filter: an empty list [] matches nothing; give at least one value")
        values.append(self.scalar())
        while self.at(","):
            self.i += 1
            values.append(self.scalar())
        self.expect("]")
        return values

    def scalar(self) -> Any:
        tok = self.next("a value")
        if tok.kind == "string":
            return tok.text
        if tok.kind == "punct":
            raise FilterError(f"filter: expected a value at position {tok.pos}, got {tok.text!r}")
        return _bare_value(tok)


def _bare_value(tok: _Token) -> Any:
    text = tok.text
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _NUMBER.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    if _DATETIME.match(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise FilterError(
        f"filter: {text!r} at position {tok.pos} is not a datetime, number or boolean; "
        "quote strings with ' or \""
    )


def parse_filter(text: str) -> tuple[Condition, ...]:
    """Every condition of ``text`` (ANDed), or :class:`FilterError` saying where it broke."""
    return tuple(_Parser(text).parse())


def _allowed(field: FilterField) -> str:
    parts = []
    if field.single:
        parts.append(f"{', '.join(field.single)} (one value)")
    if field.list:
        parts.append(f"{', '.join(field.list)} (a [list])")
    if field.none:
        parts.append(f"{', '.join(field.none)} (no value)")
    return "; ".join(parts) or "none"


def _check_value(cond: Condition, field: FilterField, op_id: str) -> None:
    values = cond.value if cond.kind == "list" else [cond.value] if cond.kind == "single" else []
    for value in values:
        problem = _value_problem(value, field)
        if problem:
            raise FilterError(
                f"filter: {cond.operator}({cond.field}, …) on {op_id}: {problem}",
                field=cond.field,
                operation_id=op_id,
            )


def _value_problem(value: Any, field: FilterField) -> str | None:
    if value is None:
        return None  # null is how Klaviyo filters on "not set"
    if field.value_format == "date-time":
        if isinstance(value, str) and _DATETIME.match(value):
            return "datetimes must not be quoted (write 2024-01-01T00:00:00Z without quotes)"
        if not isinstance(value, datetime | date):
            return f"expected an unquoted datetime, got {value!r}"
        return None
    kind = field.value_type
    if kind == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    if kind in ("integer", "number") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return f"expected an unquoted number, got {value!r}"
    if kind == "integer" and isinstance(value, float):
        return f"expected a whole number, got {value!r}"
    if kind == "string" and not isinstance(value, str):
        return f"expected a quoted string, got {value!r}"
    return None


def validate_filter(text: str, operation: Operation) -> tuple[Condition, ...]:
    """Parse ``text`` and check it against what ``operation`` accepts.

    Raises :class:`FilterError` naming the field and the operators allowed
    on it, before anything is sent.
    """
    op_id = operation.operation_id
    if not operation.filters:
        raise FilterError(f"filter: {op_id} accepts no filter parameter", operation_id=op_id)
    conditions = parse_filter(text)
    for cond in conditions:
        field = operation.filter_field(cond.field)
        if field is None:
            names = ", ".join(f.name for f in operation.filters)
            raise FilterError(
                f"filter: {op_id} cannot filter on {cond.field!r}; filterable fields: {names}",
                field=cond.field,
                operation_id=op_id,
            )
        allowed = {"single": field.single, "list": field.list, "none": field.none}[cond.kind]
        if cond.operator not in allowed:
            example = _example(cond, field)
            raise FilterError(
                f"filter: {cond.operator}() with {_describe(cond.kind)} is not allowed on "
                f"{cond.field!r} for {op_id}; allowed: {_allowed(field)}"
                + (f"; write {example}" if example else ""),
                field=cond.field,
                operation_id=op_id,
            )
        _check_value(cond, field, op_id)
    return conditions


def _render(value: Any) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _example(cond: Condition, field: FilterField) -> str | None:
    """The refused condition rewritten in a form ``field`` documents, with the caller's values.

    The spec documents some operators only with a list (``equals(name,['x'])`` on
    lists): the same value in brackets is the working form, not a made-up one.
    """
    values = cond.value if cond.kind == "list" else [cond.value] if cond.kind == "single" else []
    name = cond.field
    if cond.kind == "single" and field.list:
        operator = cond.operator if cond.operator in field.list else field.list[0]
        return f"{operator}({name},[{_render(cond.value)}])"
    if cond.kind == "list" and field.single and len(values) == 1:
        operator = cond.operator if cond.operator in field.single else field.single[0]
        return f"{operator}({name},{_render(values[0])})"
    if cond.kind == "single" and field.single:
        return f"{field.single[0]}({name},{_render(cond.value)})"
    if field.none:
        return f"{field.none[0]}({name})"
    return None


def _describe(kind: ValueKind) -> str:
    return {"single": "one value", "list": "a [list]", "none": "no value"}[kind]
