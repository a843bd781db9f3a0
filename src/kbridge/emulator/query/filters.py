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

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from kbridge.emulator.query._filter_parse import (
    COMPARISON_OPERATORS,
    FILTER_OPERATORS,
    parse_datetime_literal,
    parse_filter,
)
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
