"""Property tests for the filter language on real catalogue operations.

- round trip: random valid condition sets, rendered with random spacing,
  quoting, grouping and datetime spellings, parse back to the same conditions;
- robustness: any text raises nothing but InvalidError;
- evaluation: the compiled evaluator agrees with a naive reference.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbridge import catalog
from kbridge.catalog import FilterField, Operation
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query import Condition
from kbridge.emulator.query.filters import evaluate, parse_filter

pytestmark = pytest.mark.unit

OPERATIONS = [
    catalog.get(name)
    for name in (
        "get_profiles",
        "get_events",
        "get_campaigns",
        "get_profiles_for_list",
        "get_reviews",  # integer and boolean fields
        "get_images",  # starts-with / ends-with
    )
]
CMP = ("greater-than", "greater-or-equal", "less-than", "less-or-equal")
#: Every value type and operator family on few fields, so evaluation cases hit each often.
DENSE = catalog.Operation(
    method="GET",
    path="/api/test-records",
    operation_id="get_test_records",
    tag="Test",
    rate_limit=catalog.RateLimit(1, 1),
    scopes=(),
    success_status=200,
    revision="2026-07-15",
    filters=(
        FilterField("email", single=("equals",), list=("any", "equals"), value_type="string"),
        FilterField(
            "name",
            single=("contains", "starts-with", "ends-with", "equals"),
            list=("any",),
            value_type="string",
        ),
        FilterField("created", single=CMP, value_type="string", value_format="date-time"),
        FilterField("score", single=(*CMP, "equals"), value_type="number"),
        FilterField("rating", single=(*CMP, "equals"), list=("any",), value_type="integer"),
        FilterField("archived", single=("equals",), list=("any",), value_type="boolean"),
        FilterField("profile", none=("has",)),
        FilterField("tags", single=("contains",), list=("contains-any", "contains-all")),
    ),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ values


def is_datetime_field(field: FilterField) -> bool:
    return field.value_format == "date-time"


def wide_values(field: FilterField) -> st.SearchStrategy[Any]:
    if is_datetime_field(field):
        return st.datetimes(
            min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
            max_value=datetime(2090, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    if field.value_type == "boolean":
        return st.booleans()
    if field.value_type == "integer":
        return st.integers(-(10**12), 10**12)
    if field.value_type == "number":
        return st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    return st.text(max_size=12)


JAN1 = datetime(2024, 1, 1, tzinfo=UTC)
SMALL_DATETIMES = [JAN1 + timedelta(seconds=s) for s in (-3600, -1, 0, 1, 86400)]


def small_values(field: FilterField) -> st.SearchStrategy[Any]:
    """Few distinct values, so conditions and records collide often."""
    if is_datetime_field(field):
        return st.sampled_from(SMALL_DATETIMES)
    if field.value_type == "boolean":
        return st.booleans()
    if field.value_type == "integer":
        return st.sampled_from([0, 1, 2, 5])
    if field.value_type == "number":
        return st.sampled_from([0, 1, 1.5, 2, -1])
    if field.name == "email":
        return st.sampled_from(["a@x.com", "A@x.COM", "b@x.com", "ß@x.com", "SS@x.com"])
    return st.sampled_from(["a", "A", "ab", "ba", "b", ""])


@st.composite
def conditions(
    draw: st.DrawFn,
    operation: Operation,
    values: Callable[[FilterField], st.SearchStrategy[Any]],
) -> Condition:
    field = draw(st.sampled_from(operation.filters))
    kinds = [k for k in ("single", "list", "none") if getattr(field, k)]
    kind = draw(st.sampled_from(kinds))
    op = draw(st.sampled_from(getattr(field, kind)))
    value: Any
    if kind == "none":
        value = None
    elif kind == "list":
        least = 1 if op.startswith("contains-") else 0
        value = tuple(draw(st.lists(values(field), min_size=least, max_size=4)))
    elif op == "equals" and draw(st.integers(0, 9)) == 0:
        value = None  # equals(field,null)
    else:
        value = draw(values(field))
    return Condition(op, field.name, value, negated=draw(st.booleans()))


# ------------------------------------------------------------------ rendering

SPACE = st.sampled_from(["", "", " ", "  ", "\t", "\n "])


def render_string(draw: st.DrawFn, text: str) -> str:
    quote = draw(st.sampled_from(["'", '"']))
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return f"{quote}{escaped}{quote}"


def render_datetime(draw: st.DrawFn, when: datetime) -> str:
    minutes = draw(st.sampled_from([0, 0, 60, -300, 330, 14 * 60]))
    local = when.astimezone(timezone(timedelta(minutes=minutes)))
    text = local.isoformat()
    if minutes == 0 and draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    if local.time() == datetime.min.time() and minutes == 0 and draw(st.booleans()):
        text = text[:10]  # a date alone means midnight UTC
    return text


def render_scalar(draw: st.DrawFn, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return render_datetime(draw, value)
    return render_string(draw, value)


def render_condition(draw: st.DrawFn, c: Condition) -> str:
    def sp() -> str:
        return draw(SPACE)

    args = f"{sp()}{c.field}{sp()}"
    if c.operator != "has":
        if isinstance(c.value, tuple):
            items = ",".join(f"{sp()}{render_scalar(draw, v)}{sp()}" for v in c.value)
            value = f"[{items or sp()}]"
        else:
            value = render_scalar(draw, c.value)
        args += f",{sp()}{value}{sp()}"
    text = f"{c.operator}{sp()}({args})"
    return f"not{sp()}({sp()}{text}{sp()})" if c.negated else text


def render_group(draw: st.DrawFn, group: list[Condition], depth: int) -> str:
    """Conditions in order, grouped into random (nested) and(...) calls."""
    parts: list[str] = []
    i = 0
    while i < len(group):
        size = draw(st.integers(1, len(group) - i))
        chunk = group[i : i + size]
        i += size
        if size == 1 and (depth > 2 or draw(st.booleans())):
            parts.append(render_condition(draw, chunk[0]))
        else:
            inner = render_group(draw, chunk, depth + 1)
            parts.append(f"and{draw(SPACE)}({inner})")
    return f"{draw(SPACE)},{draw(SPACE)}".join(parts)


@st.composite
def filter_cases(draw: st.DrawFn) -> tuple[Operation, tuple[Condition, ...], str]:
    operation = draw(st.sampled_from(OPERATIONS))
    conds = draw(st.lists(conditions(operation, wide_values), min_size=1, max_size=5))
    text = draw(SPACE) + render_group(draw, conds, 0) + draw(SPACE)
    return operation, tuple(conds), text


@given(filter_cases())
@SETTINGS
def test_rendered_conditions_parse_back(case: tuple[Operation, tuple[Condition, ...], str]) -> None:
    operation, expected, text = case
    assert parse_filter(text, operation) == expected


# ------------------------------------------------------------------ robustness

TOKENS = [
    "equals",
    "any",
    "has",
    "and",
    "or",
    "not",
    "greater-than",
    "contains",
    "email",
    "created",
    "id",
    "(",
    ")",
    ",",
    "[",
    "]",
    '"',
    "'",
    "\\",
    " ",
    "null",
    "true",
    "1",
    "-1.5e3",
    "2024-01-01T00:00:00Z",
    "2024-13-45",
    '"a"',
    "'b'",
    "\x00",
    "é",
]


def assert_only_invalid_error(text: str) -> None:
    for operation in OPERATIONS:
        for allow_not in (True, False):
            error: InvalidError | None = None
            try:
                result = parse_filter(text, operation, allow_not=allow_not)
            except InvalidError as exc:
                error = exc
            if error is not None:
                assert error.parameter == "filter"
                assert error.detail
            else:
                assert isinstance(result, tuple)
                assert all(isinstance(c, Condition) for c in result)


@given(st.text(max_size=200))
@SETTINGS
def test_any_text_raises_only_invalid_error(text: str) -> None:
    assert_only_invalid_error(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
@SETTINGS
def test_token_soup_raises_only_invalid_error(text: str) -> None:
    assert_only_invalid_error(text)


# ------------------------------------------------------------------ evaluation


def reference_positive(c: Condition, value: Any) -> bool:
    """A deliberately naive statement of the documented semantics."""
    if c.operator == "has":
        return value is not None and value not in ("", [], {})
    if c.operator == "equals" and c.value is None:
        return value is None or value == [] or value == {}
    fold = c.field == "email"

    def norm(x: Any) -> Any:
        if isinstance(c.value, datetime) or (
            isinstance(c.value, tuple) and any(isinstance(v, datetime) for v in c.value)
        ):
            if isinstance(x, str):
                try:
                    x = datetime.fromisoformat(x)
                except ValueError:
                    return None
            elif isinstance(x, int | float) and not isinstance(x, bool):
                x = datetime.fromtimestamp(x, UTC)  # epoch seconds
            if isinstance(x, datetime) and x.tzinfo is None:
                x = x.replace(tzinfo=UTC)
        if fold and isinstance(x, str):
            return x.casefold()
        return x

    def same(a: Any, b: Any) -> bool:
        def kind(v: Any) -> str:
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, int | float):
                return "number"
            return type(v).__name__

        return kind(a) == kind(b)

    def one(x: Any) -> bool:
        x = norm(x)
        targets = [norm(v) for v in c.value] if isinstance(c.value, tuple) else [norm(c.value)]
        if c.operator in ("equals", "any"):
            return any(same(x, t) and x == t for t in targets)
        (t,) = targets
        if c.operator == "starts-with":
            return isinstance(x, str) and x.startswith(t)
        if c.operator == "ends-with":
            return isinstance(x, str) and x.endswith(t)
        if c.operator == "contains":
            return isinstance(x, str) and t in x
        compare = {
            "greater-than": operator.gt,
            "greater-or-equal": operator.ge,
            "less-than": operator.lt,
            "less-or-equal": operator.le,
        }[c.operator]
        return x is not None and same(x, t) and compare(x, t)

    if c.operator == "contains" and isinstance(value, list):
        return any(norm(x) == norm(c.value) and same(x, c.value) for x in value)
    if c.operator in ("contains-any", "contains-all"):
        assert isinstance(c.value, tuple)
        present = value if isinstance(value, list) else [value]

        def member(v: Any) -> bool:
            return any(same(x, v) and norm(x) == norm(v) for x in present)

        check = any if c.operator == "contains-any" else all
        return check(member(v) for v in c.value)
    items = value if isinstance(value, list) else [value]
    return any(one(x) for x in items)


def reference(conds: tuple[Condition, ...], rec: dict[str, Any]) -> bool:
    return all(reference_positive(c, rec.get(c.field)) != c.negated for c in conds)


def record_value(field: FilterField) -> st.SearchStrategy[Any]:
    typed = small_values(field)
    wrong_type = st.sampled_from([1, True, "1", 1.5, {"k": 1}])
    options = [st.none(), typed, wrong_type, st.lists(typed, max_size=3)]
    if is_datetime_field(field):
        options.append(typed.map(lambda d: d.isoformat()))
        options.append(typed.map(lambda d: d.astimezone(timezone(timedelta(hours=2))).isoformat()))
        options.append(typed.map(lambda d: d.replace(tzinfo=None)))
        options.append(typed.map(lambda d: d.timestamp()))
    return st.one_of(options)


@st.composite
def evaluation_cases(
    draw: st.DrawFn,
) -> tuple[tuple[Condition, ...], list[dict[str, Any]]]:
    operation = draw(st.sampled_from([DENSE, DENSE, DENSE, *OPERATIONS]))
    conds = tuple(draw(st.lists(conditions(operation, small_values), min_size=1, max_size=3)))
    records = []
    for _ in range(draw(st.integers(1, 6))):
        rec: dict[str, Any] = {}
        for field in operation.filters:
            if draw(st.booleans()):
                rec[field.name] = draw(record_value(field))
        records.append(rec)
    return conds, records


@given(evaluation_cases())
@settings(SETTINGS, max_examples=400)
def test_evaluate_matches_reference(
    case: tuple[tuple[Condition, ...], list[dict[str, Any]]],
) -> None:
    conds, records = case
    for rec in records:
        assert evaluate(conds, rec.get) == reference(conds, rec), (conds, rec)
