"""Klaviyo's ``?filter=`` language: parse, validate against the catalogue, evaluate.

Grammar (whitespace between tokens is ignored)::

    filter     := expression ("," expression)*          top-level commas AND
    expression := "and(" expression ("," expression)* ")"
                | "not(" condition ")"                   only when ``allow_not``
                | condition
    condition  := "has(" field ")"
                | operator "(" field "," value ")"
    value      := scalar | "[" [scalar ("," scalar)*] "]"
    scalar     := 'quoted' | "quoted" | datetime | number | true | false | null

``or(...)`` is refused: Klaviyo documents AND as the only combinator.

Values are typed by the field's ``x-klaviyo-filters`` entry (the catalogue's
:class:`~kbridge.catalog.FilterField`), and the types in the 2026-07-15 spec
are all handled: ``string`` (must be quoted), ``string``/``date-time``
(must *not* be quoted; Klaviyo answers "invalid filter" for a quoted
datetime), ``number`` (int or float), ``integer`` and ``boolean``; fields
without a value type take only ``has``. ``null`` is accepted as the value of
``equals`` on any field (it matches records without a value).

Every failure, whatever the input, is an
:class:`~kbridge.emulator.backend.errors.InvalidError` with
``parameter="filter"`` whose detail names the field, operator or position.

Evaluation is compiled once per request (:func:`compile_filter`) because the
backend runs it for every record of a scan.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from kbridge.catalog import FilterField, Operation
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query.model import Condition, FilterValue

__all__ = [
    "COMPARISON_OPERATORS",
    "FILTER_OPERATORS",
    "Getter",
    "Predicate",
    "compile_filter",
    "evaluate",
    "parse_datetime_literal",
    "parse_filter",
]

#: Reads one (dotted) field of a record: its value, a list of values, or None.
Getter = Callable[[str], Any]
#: A compiled filter: true when the record read through the getter matches.
Predicate = Callable[[Getter], bool]

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


# --------------------------------------------------------------------------- evaluation

_NO: Final[Any] = object()  # a record value that cannot be compared with the condition


@lru_cache(maxsize=65_536)
def _record_datetime(text: str) -> datetime | None:
    """A record's ISO timestamp string as an aware UTC datetime (cached: scans repeat)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _case_insensitive(field: str) -> bool:
    """Emails compare case-insensitively: Klaviyo stores them normalised, so a filter
    for ``Ann@X.com`` finds ``ann@x.com``. Everything else is case-sensitive."""
    return field == "email" or field.endswith(".email")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, datetime):
        return "dt"
    if isinstance(value, str):
        return "str"
    return "other"


def _coercer(kind: str, *, fold: bool) -> Callable[[Any], Any]:
    """Maps a record value into the condition's domain, or to ``_NO`` when it cannot match."""
    if kind == "str":
        if fold:
            return lambda x: x.casefold() if isinstance(x, str) else _NO
        return lambda x: x if isinstance(x, str) else _NO
    if kind == "num":
        return lambda x: x if isinstance(x, int | float) and not isinstance(x, bool) else _NO
    if kind == "bool":
        return lambda x: x if isinstance(x, bool) else _NO
    if kind == "dt":
        return _coerce_datetime
    return _tagged_coercer(fold=fold)


def _coerce_datetime(x: Any) -> Any:
    """Records may keep times as datetimes, ISO strings or epoch seconds (the backend
    stores epochs so sorting is cheap); all compare as aware UTC datetimes."""
    if isinstance(x, datetime):
        return x.astimezone(UTC) if x.tzinfo is not None else x.replace(tzinfo=UTC)
    if isinstance(x, str):
        parsed = _record_datetime(x)
        return _NO if parsed is None else parsed
    if isinstance(x, int | float) and not isinstance(x, bool):
        try:
            return datetime.fromtimestamp(x, UTC)
        except (OverflowError, OSError, ValueError):
            return _NO
    return _NO


def _tagged_coercer(*, fold: bool) -> Callable[[Any], Any]:
    """For lists mixing kinds: values become (kind, value) so 1 never equals True."""
    simple = {k: _coercer(k, fold=fold) for k in ("str", "num", "bool")}

    def coerce(x: Any) -> Any:
        kind = _kind(x)
        if kind == "dt":
            return ("dt", _coerce_datetime(x))
        if kind in simple:
            return (kind, simple[kind](x))
        return _NO

    return coerce


def _normalise_condition_value(
    value: FilterValue, fold: bool
) -> tuple[Callable[[Any], Any], Any, bool]:
    """(record coercer, normalised condition value, value-is-a-list)."""
    if isinstance(value, tuple):
        kinds = {_kind(v) for v in value}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        if kind == "dt":
            coerce = _coercer("dt", fold=fold)
        elif kind == "mixed" and any(isinstance(v, datetime) for v in value):
            tagged = _tagged_coercer(fold=fold)

            def coerce(x: Any) -> Any:
                parsed = _coerce_datetime(x) if isinstance(x, str) else _NO
                return ("dt", parsed) if parsed is not _NO else tagged(x)

        else:
            coerce = _coercer(kind, fold=fold)
        return coerce, frozenset(coerce(v) for v in value), True
    coerce = _coercer(_kind(value), fold=fold)
    return coerce, coerce(value), False


def _scalar_test(operator: str, target: Any, is_list: bool) -> Callable[[Any], bool] | None:
    """The test for one normalised record element, for element-wise operators."""
    if operator in ("equals", "any"):
        if is_list:
            return target.__contains__  # type: ignore[no-any-return]
        return lambda x: x == target
    if operator == "starts-with" and isinstance(target, str):
        return lambda x: isinstance(x, str) and x.startswith(target)
    if operator == "ends-with" and isinstance(target, str):
        return lambda x: isinstance(x, str) and x.endswith(target)
    if operator in COMPARISON_OPERATORS and not is_list:
        return _comparison(operator, target)
    return None


def _comparison(operator: str, target: Any) -> Callable[[Any], bool]:
    def safe(compare: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def test(x: Any) -> bool:
            try:
                return compare(x)
            except TypeError:
                return False

        return test

    if operator == "greater-than":
        return safe(lambda x: x > target)
    if operator == "greater-or-equal":
        return safe(lambda x: x >= target)
    if operator == "less-than":
        return safe(lambda x: x < target)
    return safe(lambda x: x <= target)


def _has(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        return len(value) > 0
    return True


def _is_null(value: Any) -> bool:
    """What ``equals(field,null)`` matches: no value, or an empty list/object."""
    return value is None or (isinstance(value, list | tuple | dict) and not value)


def _compile_condition(condition: Condition) -> Predicate:
    field, operator = condition.field, condition.operator
    if operator == "has":
        positive: Predicate = lambda get: _has(get(field))  # noqa: E731
    elif operator == "equals" and condition.value is None:
        positive = lambda get: _is_null(get(field))  # noqa: E731
    else:
        positive = _compile_valued(condition)
    if condition.negated:
        return lambda get: not positive(get)
    return positive


def _compile_valued(condition: Condition) -> Predicate:
    field, operator = condition.field, condition.operator
    coerce, target, is_list = _normalise_condition_value(condition.value, _case_insensitive(field))
    if operator in ("contains", "contains-any", "contains-all"):
        return _compile_contains(field, operator, coerce, target, is_list)
    element = _scalar_test(operator, target, is_list)
    if element is None:
        return lambda get: False

    def test(get: Getter) -> bool:
        value = get(field)
        if isinstance(value, list | tuple):
            for item in value:
                x = coerce(item)
                if x is not _NO and element(x):
                    return True
            return False
        x = coerce(value)
        return x is not _NO and element(x)

    return test


def _compile_contains(
    field: str, operator: str, coerce: Callable[[Any], Any], target: Any, is_list: bool
) -> Predicate:
    """``contains`` is a substring test on a string and membership on a list;
    ``contains-any``/``-all`` test membership of several values, a scalar
    record value counting as a one-element list (reports filter scalar
    attributes such as ``send_channel`` with ``contains-any``)."""
    wanted: tuple[Any, ...] = tuple(target) if is_list else (target,)
    need_all = operator == "contains-all"
    substring = operator == "contains"

    def test(get: Getter) -> bool:
        value = get(field)
        if isinstance(value, list | tuple):
            present = {coerce(item) for item in value}
            present.discard(_NO)
            hits = (w in present for w in wanted)
        else:
            x = coerce(value)
            if x is _NO:
                return False
            if substring:
                return isinstance(x, str) and isinstance(target, str) and target in x
            hits = (w == x for w in wanted)
        return all(hits) if need_all else any(hits)

    return test


def _always(get: Getter) -> bool:
    return True


def compile_filter(conditions: Sequence[Condition]) -> Predicate:
    """Compile ``conditions`` (ANDed) once into a predicate over a record getter.

    Semantics: ``equals``/``any`` match when the value, or any element of a
    list value, equals one of the condition's values; ``contains`` is a
    substring test on strings and element membership on lists;
    ``contains-any``/``-all`` test membership of several values in a list
    (a scalar counts as a one-element list); ``starts-with`` and
    ``ends-with`` work on strings; comparisons work on numbers and on
    datetimes (a record may hold aware or naive (UTC) datetimes, ISO
    strings or epoch seconds); ``has`` is true for a non-null, non-empty
    value and ``equals(f,null)`` is its opposite. Values of another type
    never match (``1`` is not ``true``). ``email`` fields compare
    case-insensitively. ``negated`` inverts a condition.
    """
    tests = tuple(_compile_condition(c) for c in conditions)
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]

    def all_hold(get: Getter) -> bool:
        return all(test(get) for test in tests)

    return all_hold


def evaluate(conditions: Sequence[Condition], get: Getter) -> bool:
    """Whether the record read through ``get`` satisfies every condition.

    For many records, compile once with :func:`compile_filter` instead.
    """
    return compile_filter(conditions)(get)
