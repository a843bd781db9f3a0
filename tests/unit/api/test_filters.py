"""The client-side filter parser and its check against the catalogue."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbridge.api import Condition, FilterError, parse_filter, validate_filter
from kbridge.catalog import get

pytestmark = pytest.mark.unit

PROFILES = get("get_profiles")
EVENTS = get("get_events")
NAIVE_MIN = datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # hypothesis wants naive bounds
NAIVE_MAX = datetime(2030, 1, 1, tzinfo=UTC).replace(tzinfo=None)


def test_parses_functions_lists_datetimes_and_top_level_commas() -> None:
    parsed = parse_filter(
        "any(email,['a@x.co',\"b@x.co\"]), and(greater-than(updated,2023-04-19T00:00:00Z),"
        "less-than(updated,2023-04-26T00:00:00+00:00)),has(profile),equals(n,12.5),equals(b,true)"
    )
    assert parsed == (
        Condition("any", "email", ["a@x.co", "b@x.co"], "list"),
        Condition("greater-than", "updated", datetime(2023, 4, 19, tzinfo=UTC)),
        Condition("less-than", "updated", datetime(2023, 4, 26, tzinfo=UTC)),
        Condition("has", "profile", None, "none"),
        Condition("equals", "n", 12.5),
        Condition("equals", "b", True),
    )


def test_quotes_may_hold_commas_parens_and_escapes() -> None:
    (cond,) = parse_filter(r"equals(name,'a, (b) \'c\'')")
    assert cond.value == "a, (b) 'c'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("equals(email,'a'", "ended"),
        ("equals(email,'a)", "not closed"),
        ("equals(email,bare-word)", "quote strings"),
        ("or(equals(email,'a'),equals(email,'b'))", r"or\(\) is not supported"),
        ("equals(email,'a'))", "unexpected"),
        ("equals('email','a')", "field name"),
        ("any(email,[])", "empty list"),
    ],
)
def test_syntax_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


def test_valid_filters_pass_the_catalogue() -> None:
    validate_filter("equals(email,'a@x.co')", PROFILES)
    validate_filter("any(id,['1','2']),greater-than(created,2024-01-01T00:00:00Z)", PROFILES)
    validate_filter("has(profile),greater-or-equal(timestamp,1700000000)", EVENTS)


def test_unknown_field_lists_the_filterable_ones() -> None:
    with pytest.raises(FilterError, match="cannot filter on 'first_name'") as caught:
        validate_filter("equals(first_name,'Sam')", PROFILES)
    assert "email" in str(caught.value)
    assert caught.value.field == "first_name"
    assert caught.value.operation_id == "get_profiles"


def test_wrong_operator_names_the_allowed_ones() -> None:
    with pytest.raises(FilterError) as caught:
        validate_filter("equals(created,2024-01-01T00:00:00Z)", PROFILES)
    text = str(caught.value)
    assert "'created'" in text
    assert "greater-than, less-than" in text


def test_operator_must_match_value_kind() -> None:
    with pytest.raises(FilterError, match="a \\[list\\]"):
        validate_filter("any(_kx,['a'])", PROFILES)
    with pytest.raises(FilterError, match="no value"):
        validate_filter("has(email)", PROFILES)


def test_value_types_are_checked() -> None:
    with pytest.raises(FilterError, match="must not be quoted"):
        validate_filter("greater-than(created,'2024-01-01T00:00:00Z')", PROFILES)
    with pytest.raises(FilterError, match="quoted string"):
        validate_filter("equals(email,42)", PROFILES)
    with pytest.raises(FilterError, match="number"):
        validate_filter("greater-than(timestamp,'soon')", EVENTS)
    with pytest.raises(FilterError, match="true or false"):
        validate_filter("equals(archived,'yes')", get("get_campaigns"))


def test_operation_without_filters_refuses_any() -> None:
    with pytest.raises(FilterError, match="accepts no filter"):
        validate_filter("equals(id,'1')", get("get_accounts"))


def _literal(value_type: str | None, value_format: str | None) -> st.SearchStrategy[str]:
    if value_format == "date-time":
        naive = st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX)
        return naive.map(lambda d: d.replace(microsecond=0).isoformat() + "Z")
    if value_type == "boolean":
        return st.sampled_from(["true", "false"])
    if value_type in ("integer", "number"):
        return st.integers(-(10**9), 10**9).map(str)
    text = st.text(st.characters(codec="ascii", exclude_characters="'\\"), max_size=12)
    return text.map(lambda s: f"'{s}'")


@st.composite
def valid_filter(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from([o for o in (PROFILES, EVENTS, get("get_campaigns")) if o.filters]))
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(op.filters))
        kinds = [k for k in ("single", "list", "none") if getattr(field, k)]
        kind = draw(st.sampled_from(kinds))
        operator = draw(st.sampled_from(getattr(field, kind)))
        literal = _literal(field.value_type, field.value_format)
        if kind == "none":
            parts.append(f"{operator}({field.name})")
        elif kind == "list":
            items = draw(st.lists(literal, min_size=1, max_size=3))
            parts.append(f"{operator}({field.name},[{','.join(items)}])")
        else:
            parts.append(f"{operator}({field.name},{draw(literal)})")
    text = ",".join(parts) if draw(st.booleans()) else f"and({','.join(parts)})"
    return f"{op.operation_id}|{text}"


@given(valid_filter())
def test_generated_valid_filters_are_accepted(case: str) -> None:
    op_id, text = case.split("|", 1)
    conditions = validate_filter(text, get(op_id))
    assert conditions


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_filter_error(text: str) -> None:
    with contextlib.suppress(FilterError):
        validate_filter(text, PROFILES)


@pytest.mark.parametrize(
    ("operation_id", "refused", "example"),
    [
        ("get_lists", r"equals(name,'Mum\'s list')", r"equals(name,['Mum\'s list'])"),
        ("get_lists", "any(name,'VIP')", "any(name,['VIP'])"),
        ("get_profiles_for_list", "equals(email,'a@x.co')", "equals(email,['a@x.co'])"),
        ("get_profiles", "any(email,'a@x.co')", "any(email,['a@x.co'])"),
    ],
)
def test_a_refused_form_names_the_form_that_works(
    operation_id: str, refused: str, example: str
) -> None:
    # issue 18: "use a list value" alone left users guessing (and guessing wrong)
    operation = get(operation_id)
    with pytest.raises(FilterError) as caught:
        validate_filter(refused, operation)
    assert str(caught.value).endswith(f"; write {example}")
    assert validate_filter(example, operation)
