from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kbridge import catalog
from kbridge.catalog import FilterField
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.query import Condition
from kbridge.emulator.query.filters import compile_filter, evaluate, parse_filter

pytestmark = pytest.mark.unit

PROFILES = catalog.get("get_profiles")
EVENTS = catalog.get("get_events")
CAMPAIGNS = catalog.get("get_campaigns")
REVIEWS = catalog.get("get_reviews")
IMAGES = catalog.get("get_images")

JAN1 = datetime(2024, 1, 1, tzinfo=UTC)


def invalid(text: str, operation: catalog.Operation = PROFILES, **kw: Any) -> InvalidError:
    with pytest.raises(InvalidError) as info:
        parse_filter(text, operation, **kw)
    assert info.value.parameter == "filter"
    assert info.value.status == 400
    return info.value


# ------------------------------------------------------------------ grammar


def test_single_condition_with_double_or_single_quotes() -> None:
    expected = (Condition("equals", "email", "a@b.com"),)
    assert parse_filter('equals(email,"a@b.com")', PROFILES) == expected
    assert parse_filter("equals(email,'a@b.com')", PROFILES) == expected


def test_top_level_commas_and_nested_and_flatten_in_order() -> None:
    text = (
        ' and( equals(email , "a"), and(greater-than(created,2024-01-01T00:00:00Z)) ) ,'
        " less-than(updated, 2025-01-01)"
    )
    assert parse_filter(text, PROFILES) == (
        Condition("equals", "email", "a"),
        Condition("greater-than", "created", JAN1),
        Condition("less-than", "updated", datetime(2025, 1, 1, tzinfo=UTC)),
    )


def test_list_values_become_tuples() -> None:
    assert parse_filter('any(id,["a", \'b\' ,"c"])', PROFILES) == (
        Condition("any", "id", ("a", "b", "c")),
    )
    assert parse_filter("any(id,[])", PROFILES) == (Condition("any", "id", ()),)


def test_has_takes_no_value() -> None:
    assert parse_filter("has(profile)", EVENTS) == (Condition("has", "profile", None),)
    assert "takes no value" in invalid('has(profile,"x")', EVENTS).detail


def test_string_escapes() -> None:
    (c,) = parse_filter(r'equals(email,"a\"b\\c")', PROFILES)
    assert c.value == 'a"b\\c'
    (c,) = parse_filter(r"equals(email,'it\'s')", PROFILES)
    assert c.value == "it's"
    (c,) = parse_filter("equals(email,'a,b)(')", PROFILES)
    assert c.value == "a,b)("


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2024-01-01T00:00:00Z", JAN1),
        ("2024-01-01T00:00:00+00:00", JAN1),
        ("2024-01-01T02:00:00+02:00", JAN1),
        ("2024-01-01T00:00:00.5Z", JAN1 + timedelta(milliseconds=500)),
        ("2024-01-01T00:00:00.123456+00:00", JAN1 + timedelta(microseconds=123456)),
        ("2024-01-01", JAN1),
        ("2024-01-01T00:00:00", JAN1),
    ],
)
def test_datetime_literals_are_aware(literal: str, expected: datetime) -> None:
    (c,) = parse_filter(f"greater-than(created,{literal})", PROFILES)
    assert isinstance(c.value, datetime)
    assert c.value.tzinfo is not None
    assert c.value == expected


def test_offsets_are_kept_as_instants() -> None:
    (c,) = parse_filter("less-than(updated,2024-06-01T12:00:00-05:00)", PROFILES)
    assert c.value == datetime(2024, 6, 1, 17, tzinfo=UTC)
    assert c.value.utcoffset() == timezone(timedelta(hours=-5)).utcoffset(None)


def test_numbers_booleans_and_null() -> None:
    assert parse_filter("greater-than(timestamp,1700000000)", EVENTS)[0].value == 1700000000
    assert parse_filter("less-than(timestamp,1.5)", EVENTS)[0].value == 1.5
    assert parse_filter("equals(archived,true)", CAMPAIGNS)[0].value is True
    assert parse_filter("equals(archived,false)", CAMPAIGNS)[0].value is False
    assert parse_filter("any(rating,[1,2,5])", REVIEWS)[0].value == (1, 2, 5)
    assert parse_filter("equals(email,null)", PROFILES) == (Condition("equals", "email", None),)


def test_not_wraps_one_condition() -> None:
    assert parse_filter('not(equals(email,"a"))', PROFILES) == (
        Condition("equals", "email", "a", negated=True),
    )
    assert parse_filter("and(not(has(profile)),has(metric))", EVENTS) == (
        Condition("has", "profile", None, negated=True),
        Condition("has", "metric", None),
    )
    assert "exactly one condition" in invalid('not(and(equals(email,"a")))').detail
    assert "exactly one condition" in invalid('not(not(equals(email,"a")))').detail
    assert "not supported" in invalid('not(equals(email,"a"))', allow_not=False).detail


def test_or_is_refused_with_advice() -> None:
    detail = invalid('or(equals(email,"a"),equals(email,"b"))').detail
    assert "or(...) is not supported" in detail
    assert "any(field" in detail


# ------------------------------------------------------------------ validation


def test_unknown_field_names_it_and_suggests() -> None:
    detail = invalid('equals(emial,"x")').detail
    assert "'emial' is not a valid filter field" in detail
    assert "GET /api/profiles" in detail
    assert "Did you mean 'email'?" in detail


def test_operator_not_allowed_lists_the_allowed_ones() -> None:
    detail = invalid('contains(email,"x")').detail
    assert detail == "Operator 'contains' is not allowed for field 'email'; allowed: any, equals."
    assert (
        "allowed: greater-than, less-than" in invalid("greater-or-equal(created,2024-01-01)").detail
    )


def test_value_shape_must_match_the_operator() -> None:
    assert "takes a list value" in invalid('any(email,"a")').detail
    assert "takes a single value, not a list" in invalid('equals(_kx,["a"])').detail
    assert "needs a value" in invalid("equals(email)").detail
    # equals accepts a list where the spec lists it under "list" operators
    assert parse_filter('equals(email,["a","b"])', PROFILES)[0].value == ("a", "b")


def test_quoted_datetime_is_invalid_filter() -> None:
    detail = invalid("greater-than(created,'2024-01-01T00:00:00Z')").detail
    assert detail.startswith("Invalid filter provided: datetime values must not be quoted")
    assert "greater-than(created,2024-01-01T00:00:00Z)" in detail


@pytest.mark.parametrize(
    ("text", "operation", "fragment"),
    [
        ("equals(email,abc)", PROFILES, "takes a quoted string"),
        ("greater-than(created,yesterday)", PROFILES, "takes a datetime"),
        ("greater-than(created,2024-02-30)", PROFILES, "takes a datetime"),
        ("equals(archived,'true')", CAMPAIGNS, "unquoted boolean"),
        ("equals(archived,1)", CAMPAIGNS, "takes true or false"),
        ("equals(rating,4.5)", REVIEWS, "takes an integer"),
        ("greater-than(size,'10')", IMAGES, "unquoted integer"),
        ("greater-than(timestamp,1e999)", EVENTS, "takes a number"),
        ("greater-than(timestamp,abc)", EVENTS, "takes a number"),
        ("greater-than(created,null)", PROFILES, "null can only be compared with equals"),
        ('any(id,["a",null])', PROFILES, "cannot contain null"),
    ],
)
def test_values_must_fit_the_field_type(
    text: str, operation: catalog.Operation, fragment: str
) -> None:
    assert fragment in invalid(text, operation).detail


def test_operation_without_filters() -> None:
    detail = invalid('equals(name,"x")', catalog.get("get_accounts")).detail
    assert detail.startswith("Filtering is not supported for this endpoint")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the filter is empty"),
        ("   ", "the filter is empty"),
        ('equals(email,"a"', "expected ')' to close equals(...) at the end of the filter"),
        ('equals(email,"a)', "unterminated string at position 13"),
        ('equals(email,"a"))', "expected ',' or the end of the filter at position 17"),
        ('equals(email,"a"),', "expected a filter operator"),
        ('equals email,"a")', "expected '(' after 'equals' at position 7"),
        ('frobnicate(email,"a")', "unknown operator 'frobnicate'"),
        ('equals(email,["a",["b"]])', "lists cannot be nested"),
        ("and()", "expected a filter operator"),
        ("equals(,'a')", "expected a field name"),
        ("greater-than(created,2024-01-01T00:00:00 00:00)", "must be URL-encoded as %2B"),
    ],
)
def test_syntax_errors_say_where(text: str, fragment: str) -> None:
    assert fragment in invalid(text).detail


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    text = "and(" * 1000 + 'equals(email,"a")' + ")" * 1000
    assert "nest more than" in invalid(text).detail


# ------------------------------------------------------------------ evaluation


def record(**values: Any) -> Any:
    return values.get


def matches(text: str, rec: Any, operation: catalog.Operation = PROFILES) -> bool:
    return evaluate(parse_filter(text, operation), rec)


def test_equals_and_any() -> None:
    rec = record(id="p1", phone_number="+1555", external_id="X")
    assert matches('equals(id,"p1")', rec)
    assert not matches('equals(id,"P1")', rec)
    assert matches('any(id,["p0","p1"])', rec)
    assert not matches('any(id,["p0"])', rec)
    assert matches('equals(external_id,["Y","X"])', rec)


def test_email_is_case_insensitive_everything_else_is_not() -> None:
    rec = record(email="Ann@Example.com", external_id="Ann")
    assert matches('equals(email,"ann@example.COM")', rec)
    assert matches('any(email,["x@y.z","ANN@example.com"])', rec)
    assert not matches('equals(external_id,"ann")', rec)


def test_list_valued_fields_match_any_element() -> None:
    rec = record(email=["a@x.com", "b@x.com"])
    assert matches('equals(email,"b@x.com")', rec)
    assert matches('any(email,["z","a@x.com"])', rec)
    assert not matches('equals(email,"c@x.com")', rec)


def test_datetime_comparisons_accept_datetimes_and_iso_strings() -> None:
    flt = parse_filter("greater-than(created,2024-01-01T00:00:00Z)", PROFILES)
    assert evaluate(flt, record(created="2024-01-01T00:00:01+00:00"))
    assert evaluate(flt, record(created="2024-01-01T01:00:00+02:00")) is False
    assert evaluate(flt, record(created=JAN1 + timedelta(seconds=1)))
    assert not evaluate(flt, record(created=JAN1))
    assert not evaluate(flt, record(created=None))
    assert not evaluate(flt, record(created="not a date"))
    assert evaluate(flt, record(created=JAN1.timestamp() + 0.5))  # epoch seconds
    assert not evaluate(flt, record(created=JAN1.timestamp()))
    assert not evaluate(flt, record(created=1e300))  # out of range: no match, no crash
    assert not evaluate(flt, record(created=True))
    naive = datetime(2024, 1, 1, 0, 0, 1)  # noqa: DTZ001 - records may hold naive UTC
    assert evaluate(flt, record(created=naive))
    ge = parse_filter("greater-or-equal(datetime,2024-01-01)", EVENTS)
    assert evaluate(ge, record(datetime=JAN1))
    le = parse_filter("less-or-equal(datetime,2024-01-01)", EVENTS)
    assert evaluate(le, record(datetime=JAN1))
    assert not evaluate(le, record(datetime=JAN1 + timedelta(microseconds=1)))


def test_number_comparisons_do_not_mix_types() -> None:
    gt = parse_filter("greater-than(timestamp,100)", EVENTS)
    assert evaluate(gt, record(timestamp=100.5))
    assert not evaluate(gt, record(timestamp=100))
    assert not evaluate(gt, record(timestamp="200"))
    eq = parse_filter("equals(rating,1)", REVIEWS)
    assert evaluate(eq, record(rating=1))
    assert not evaluate(eq, record(rating=True))
    assert not evaluate(parse_filter("equals(archived,true)", CAMPAIGNS), record(archived=1))


def test_string_operators() -> None:
    rec = record(name="Summer Sale 2024")
    assert matches('contains(name,"Sale")', rec, IMAGES)
    assert not matches('contains(name,"sale")', rec, IMAGES)
    assert matches('starts-with(name,"Summer")', rec, IMAGES)
    assert not matches('starts-with(name,"Summer Salt")', rec, IMAGES)
    assert matches('ends-with(name,"2024")', rec, IMAGES)
    assert not matches('ends-with(name,"Summer")', rec, IMAGES)
    assert not matches('contains(name,"x")', record(name=None), IMAGES)


def test_has_and_equals_null() -> None:
    has = parse_filter("has(profile)", EVENTS)
    assert evaluate(has, record(profile="p1"))
    assert evaluate(has, record(profile={"id": "p1"}))
    for empty in (None, "", [], {}):
        assert not evaluate(has, record(profile=empty))
    assert not evaluate(has, record())
    null = parse_filter("equals(email,null)", PROFILES)
    assert evaluate(null, record())
    assert evaluate(null, record(email=[]))
    assert not evaluate(null, record(email="a@x.com"))


def test_negation_inverts() -> None:
    flt = parse_filter('not(equals(email,"a@x.com"))', PROFILES)
    assert not evaluate(flt, record(email="a@x.com"))
    assert evaluate(flt, record(email="b@x.com"))
    assert evaluate(flt, record())


def test_all_conditions_must_hold() -> None:
    flt = parse_filter('equals(email,"a"),greater-than(created,2024-01-01)', PROFILES)
    assert evaluate(flt, record(email="a", created="2024-02-01T00:00:00Z"))
    assert not evaluate(flt, record(email="a", created="2023-02-01T00:00:00Z"))
    assert not evaluate(flt, record(email="b", created="2024-02-01T00:00:00Z"))
    assert evaluate((), record())


def test_contains_family_on_lists_and_strings() -> None:
    # Reporting filters (request bodies) use these; the engine evaluates them generically.
    tags = record(tags=["promo", "vip"], title="big promo day")
    assert evaluate([Condition("contains", "tags", "vip")], tags)
    assert not evaluate([Condition("contains", "tags", "vi")], tags)
    assert evaluate([Condition("contains-any", "tags", ("x", "promo"))], tags)
    assert not evaluate([Condition("contains-any", "tags", ("x", "y"))], tags)
    assert evaluate([Condition("contains-all", "tags", ("vip", "promo"))], tags)
    assert not evaluate([Condition("contains-all", "tags", ("vip", "x"))], tags)
    # a scalar counts as a one-element list: membership, not substrings
    channel = record(send_channel="email")
    assert evaluate([Condition("contains-any", "send_channel", ("sms", "email"))], channel)
    assert not evaluate([Condition("contains-any", "send_channel", ("mail",))], channel)
    assert not evaluate([Condition("contains-all", "send_channel", ("email", "sms"))], channel)
    assert evaluate([Condition("contains", "title", "promo")], tags)


REPORT = catalog.get("query_campaign_values")
REPORT_FIELDS = (
    FilterField("send_channel", single=("equals",), list=("contains-any",), value_type="string"),
    FilterField("tag_name", list=("contains-any", "contains-all"), value_type="string"),
)


def test_body_filters_validate_against_given_fields_and_point_into_the_body() -> None:
    text = 'and(equals(send_channel,"email"),contains-any(tag_name,["promo"]))'
    assert parse_filter(text, REPORT, fields=REPORT_FIELDS) == (
        Condition("equals", "send_channel", "email"),
        Condition("contains-any", "tag_name", ("promo",)),
    )
    detail = invalid("contains-all(tag_name,[])", REPORT, fields=REPORT_FIELDS).detail
    assert detail == "contains-all(tag_name,[...]) needs at least one value."
    with pytest.raises(InvalidError) as info:
        parse_filter('equals(campaign,"x")', REPORT, fields=REPORT_FIELDS, pointer="/data/x")
    assert (info.value.pointer, info.value.parameter) == ("/data/x", None)
    assert "(body filter)" in info.value.detail
    with pytest.raises(InvalidError) as info:
        parse_filter('equals(campaign,"x"', REPORT, fields=REPORT_FIELDS, pointer="/data/x")
    assert info.value.pointer == "/data/x"


def test_compiled_filter_is_reusable_across_records() -> None:
    predicate = compile_filter(parse_filter('any(id,["a","c"])', PROFILES))
    ids = ["a", "b", "c", "d"]
    assert [i for i in ids if predicate(record(id=i))] == ["a", "c"]


def test_getter_sees_the_dotted_field_name() -> None:
    seen: list[str] = []

    def get(name: str) -> Any:
        seen.append(name)
        return "bounced"

    text = 'equals(subscriptions.email.marketing.suppression.reason,"bounced")'
    assert evaluate(parse_filter(text, PROFILES), get)
    assert seen == ["subscriptions.email.marketing.suppression.reason"]
