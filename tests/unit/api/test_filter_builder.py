"""F builds filter text Klaviyo (and our own validator) accept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from kbridge import catalog
from kbridge.api.filter_builder import F, render_value
from kbridge.api.filters import parse_filter, validate_filter
from kbridge.api.validation import ValidationError

pytestmark = pytest.mark.unit

NAIVE = datetime.fromisoformat("2026-01-01T00:00:00")  # no offset: ambiguous by hours


def test_equals_and_greater_than_join_with_and() -> None:
    since = datetime(2026, 7, 1, tzinfo=UTC)
    expr = F.equals("email", "a@b.co") & F.greater_than("updated", since)
    text = str(expr)
    assert text == "and(equals(email,'a@b.co'),greater-than(updated,2026-07-01T00:00:00+00:00))"
    conditions = validate_filter(text, catalog.get("get_profiles"))
    assert [(c.operator, c.field) for c in conditions] == [
        ("equals", "email"),
        ("greater-than", "updated"),
    ]


def test_single_condition_has_no_and() -> None:
    assert str(F.has("profile")) == "has(profile)"
    assert str(F.any("id", ["a", "b"])) == "any(id,['a','b'])"


def test_quotes_and_backslashes_round_trip_through_the_parser() -> None:
    tricky = 'O\'Brien \\ "x"'
    (cond,) = parse_filter(str(F.equals("email", tricky)))
    assert cond.value == tricky


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        (date(2026, 1, 2), "2026-01-02"),
        (datetime(2026, 1, 2, 3, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:00:00+02:00"),
        (["a", 1], "['a',1]"),
    ],
)
def test_values_render_in_klaviyo_syntax(value: object, text: str) -> None:
    assert render_value(value, "f") == text


def test_naive_datetimes_and_odd_values_are_refused() -> None:
    with pytest.raises(ValidationError) as naive:
        F.greater_than("updated", NAIVE)
    assert naive.value.field == "updated"
    with pytest.raises(ValidationError):
        F.equals("email", object())
    with pytest.raises(ValidationError):
        F.equals("bad field", "x")
    with pytest.raises(ValidationError):
        F.all()


def test_all_equals_chained_and() -> None:
    a, b, c = F.equals("x", 1), F.equals("y", 2), F.equals("z", 3)
    assert str(F.all(a, b, c)) == str(a & b & c) == "and(equals(x,1),equals(y,2),equals(z,3))"


def test_every_operator_renders_its_klaviyo_name() -> None:
    names = [
        str(F.less_than("f", 1)),
        str(F.less_or_equal("f", 1)),
        str(F.greater_or_equal("f", 1)),
        str(F.contains("f", "x")),
        str(F.contains_any("f", ["x"])),
        str(F.contains_all("f", ["x"])),
        str(F.starts_with("f", "x")),
        str(F.ends_with("f", "x")),
    ]
    assert [n.split("(")[0] for n in names] == [
        "less-than",
        "less-or-equal",
        "greater-or-equal",
        "contains",
        "contains-any",
        "contains-all",
        "starts-with",
        "ends-with",
    ]
