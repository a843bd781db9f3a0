"""Evaluate validated ``filter`` conditions against records.

http/ has already checked each condition's field and operator against the
catalogue; here a per-resource *getter* table says how to read a field from a
record. Datetimes are compared as epoch seconds (records store them so). A
getter may return a list (e.g. a profile's suppression reasons): the
condition then holds when any element satisfies it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query import Condition

__all__ = ["Getter", "compile_conditions", "condition_value", "range_bounds"]

R = TypeVar("R")
Getter = Callable[[R], Any]


def condition_value(value: Any) -> Any:
    """A filter literal in record terms: datetimes become epoch seconds, tuples stay tuples."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, tuple):
        return tuple(condition_value(v) for v in value)
    return value


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "has":
        return have is not None
    if have is None:
        return False
    try:
        if op == "equals" and isinstance(want, tuple):
            # the spec documents equals with a [list] on many fields (e.g. equals(name,['x'])
            # on lists): it matches any of the values, like any()
            return have in want
        if op == "equals":
            return bool(have == want)
        if op == "any":
            return have in want
        if op == "greater-than":
            return bool(have > want)
        if op == "greater-or-equal":
            return bool(have >= want)
        if op == "less-than":
            return bool(have < want)
        if op == "less-or-equal":
            return bool(have <= want)
        if op == "contains":
            return want in have
        if op == "starts-with":
            return str(have).startswith(str(want))
        if op == "ends-with":
            return str(have).endswith(str(want))
    except TypeError:
        return False
    raise InvalidError(f"filter operator {op!r} is not supported here", parameter="filter")


def _one(cond: Condition, getter: Callable[[R], Any]) -> Callable[[R], bool]:
    op, want, negated = cond.operator, condition_value(cond.value), cond.negated

    def check(record: R) -> bool:
        have = getter(record)
        if op in ("contains-any", "contains-all"):
            # membership of several values; a scalar counts as a one-element list (reports
            # filter campaign_id and send_channel this way)
            present = set(have) if isinstance(have, list | tuple) else {have}
            hits = [w in present for w in want]
            return (all(hits) if op == "contains-all" else any(hits)) != negated
        if isinstance(have, list) and op != "contains":
            ok = any(_compare(op, h, want) for h in have)
        else:
            ok = _compare(op, have, want)
        return ok != negated

    return check


def compile_conditions(
    conditions: Iterable[Condition],
    getters: Mapping[str, Callable[[R], Any]],
) -> Callable[[R], bool] | None:
    """One predicate ANDing ``conditions`` (``None`` when there are none).

    A field without a getter is a programming error in the emulator (the
    catalogue allowed it but the backend forgot it), reported as a 400 that
    names the field rather than silently matching everything.
    """
    checks: list[Callable[[R], bool]] = []
    for cond in conditions:
        getter = getters.get(cond.field)
        if getter is None:
            raise InvalidError(
                f"filtering on {cond.field!r} is not supported by the emulator",
                parameter="filter",
            )
        checks.append(_one(cond, getter))
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def all_of(record: R) -> bool:
        return all(c(record) for c in checks)

    return all_of


def range_bounds(
    conditions: Iterable[Condition], field: str
) -> tuple[float | None, bool, float | None, bool]:
    """The tightest ``(low, low_inclusive, high, high_inclusive)`` on ``field`` (non-negated)."""
    low: float | None = None
    high: float | None = None
    low_inc = high_inc = False
    for c in conditions:
        if c.field != field or c.negated:
            continue
        v = condition_value(c.value)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if c.operator in ("greater-than", "greater-or-equal"):
            inc = c.operator == "greater-or-equal"
            if low is None or v > low or (v == low and not inc):
                low, low_inc = float(v), inc
        elif c.operator in ("less-than", "less-or-equal"):
            inc = c.operator == "less-or-equal"
            if high is None or v < high or (v == high and not inc):
                high, high_inc = float(v), inc
    return low, low_inc, high, high_inc
