from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from klaviyo_api.wrapper import KlaviyoAPI

from kbridge import catalog
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.http.params import extract_cursor, parse_query, uses_page_cursor_parameter
from kbridge.emulator.query import Condition, Query, Sort, encode_cursor

pytestmark = pytest.mark.unit

SPEC = Path("/work/shared/klaviyo-openapi/stable.json")

PROFILES = catalog.get("get_profiles")
PROFILE = catalog.get("get_profile")
EVENTS = catalog.get("get_events")
ACCOUNTS = catalog.get("get_accounts")
METRICS = catalog.get("get_metrics")
LISTS = catalog.get("get_lists")
REPORT = catalog.get("query_campaign_values")
CURSOR = encode_cursor("2024-01-01T00:00:00+00:00", 42)


def rejected(
    operation: catalog.Operation, params: list[tuple[str, str]], parameter: str, **kw: Any
) -> str:
    with pytest.raises(InvalidError) as info:
        parse_query(operation, params, **kw)
    assert info.value.status == 400
    assert info.value.code == "invalid"
    assert info.value.parameter == parameter
    return info.value.detail


def test_a_full_query() -> None:
    query = parse_query(
        PROFILES,
        [
            ("filter", 'equals(email,"a@x.com"),greater-than(created,2024-01-01T00:00:00Z)'),
            ("sort", "-updated"),
            ("page[size]", "50"),
            ("page[cursor]", CURSOR),
            ("fields[profile]", "email,location.country"),
            ("fields[push-token]", "token"),
            ("include", "push-tokens"),
            ("additional-fields[profile]", "subscriptions,predictive_analytics"),
        ],
    )
    assert query == Query(
        conditions=(
            Condition("equals", "email", "a@x.com"),
            Condition("greater-than", "created", datetime(2024, 1, 1, tzinfo=UTC)),
        ),
        sort=Sort("updated", descending=True),
        page_size=50,
        cursor=CURSOR,
        fields={"profile": ("email", "location.country"), "push-token": ("token",)},
        include=("push-tokens",),
        additional_fields={"profile": ("subscriptions", "predictive_analytics")},
    )


def test_defaults() -> None:
    assert parse_query(PROFILES, []) == Query(page_size=20)
    assert parse_query(EVENTS, []).page_size == 200
    assert parse_query(LISTS, []).page_size == 10
    assert parse_query(METRICS, []).page_size == 200  # fixed size, no page[size] parameter
    assert parse_query(PROFILE, []) == Query()  # not paginated: no page size at all


def test_unrelated_parameters_are_ignored() -> None:
    query = parse_query(PROFILES, [("company_id", "AbC123"), ("utm_source", "x"), ("_", "1")])
    assert query == Query(page_size=20)


# ------------------------------------------------------------------ filter


def test_filter_errors_carry_the_filter_parameter() -> None:
    detail = rejected(PROFILES, [("filter", 'contains(email,"x")')], "filter")
    assert "Operator 'contains' is not allowed for field 'email'" in detail


def test_filter_on_an_endpoint_without_filters() -> None:
    detail = rejected(ACCOUNTS, [("filter", 'equals(id,"x")')], "filter")
    assert detail.startswith("Filtering is not supported for this endpoint")


def test_not_filter_can_be_turned_off() -> None:
    params = [("filter", 'not(equals(email,"a"))')]
    assert parse_query(PROFILES, params).conditions[0].negated
    assert "not(...) is not supported" in rejected(PROFILES, params, "filter", allow_not=False)


# ------------------------------------------------------------------ sort


def test_sort_must_be_offered() -> None:
    detail = rejected(PROFILES, [("sort", "-nmae")], "sort")
    assert detail.startswith("'-nmae' is not a valid sort value for this endpoint; allowed: ")
    assert "-created" in detail
    assert parse_query(EVENTS, [("sort", "datetime")]).sort == Sort("datetime")
    assert "Sorting is not supported" in rejected(ACCOUNTS, [("sort", "id")], "sort")


# ------------------------------------------------------------------ page[size]


@pytest.mark.parametrize("size", ["0", "101", "-1", "100000000000"])
def test_page_size_out_of_range_is_rejected(size: str) -> None:
    detail = rejected(PROFILES, [("page[size]", size)], "page[size]")
    assert detail == f"page[size] must be between 1 and 100, not {int(size)}."


@pytest.mark.parametrize("size", ["abc", "1.5", "", "1e2", "٣"])
def test_page_size_must_be_an_integer(size: str) -> None:
    detail = rejected(PROFILES, [("page[size]", size)], "page[size]")
    assert detail.startswith("page[size] must be an integer")


def test_page_size_bounds_are_per_endpoint_and_inclusive() -> None:
    assert parse_query(PROFILES, [("page[size]", "1")]).page_size == 1
    assert parse_query(PROFILES, [("page[size]", "100")]).page_size == 100
    assert parse_query(EVENTS, [("page[size]", "1000")]).page_size == 1000
    assert "between 1 and 10" in rejected(LISTS, [("page[size]", "11")], "page[size]")


def test_page_size_clamp_policy() -> None:
    def size(value: str) -> int | None:
        return parse_query(PROFILES, [("page[size]", value)], page_size_policy="clamp").page_size

    assert (size("0"), size("500"), size("42")) == (1, 100, 42)
    rejected(PROFILES, [("page[size]", "x")], "page[size]", page_size_policy="clamp")


def test_page_size_where_the_endpoint_does_not_offer_it() -> None:
    assert "not supported" in rejected(PROFILE, [("page[size]", "5")], "page[size]")
    assert "not supported" in rejected(METRICS, [("page[size]", "5")], "page[size]")


# ------------------------------------------------------------------ cursors


@pytest.mark.parametrize(
    "value",
    [
        CURSOR,
        f" {CURSOR} ",
        f"https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D={CURSOR}&page%5Bsize%5D=5",
        f"https://a.klaviyo.com/api/profiles?filter=x&page[cursor]={CURSOR}",
        f"http://127.0.0.1:8765/api/profiles/?page%5Bcursor%5D={CURSOR}",
        f"/api/profiles/?page%5Bcursor%5D={CURSOR}",
        f"={CURSOR}",  # what the official Python SDK sends after splitting a links.next URL
    ],
)
def test_cursor_forms_clients_send(value: str) -> None:
    assert parse_query(PROFILES, [("page[cursor]", value)]).cursor == CURSOR


def test_empty_cursor_means_the_first_page() -> None:
    assert parse_query(PROFILES, [("page[cursor]", "")]).cursor is None
    assert extract_cursor("  ") is None


def test_foreign_cursors_are_rejected() -> None:
    detail = rejected(PROFILES, [("page[cursor]", "bmV4dDo6aWQ6Ok43dW1iVw!")], "page[cursor]")
    assert "is not a cursor from this server" in detail
    detail = rejected(
        PROFILES, [("page[cursor]", "https://a.klaviyo.com/api/profiles/?x=1")], "page[cursor]"
    )
    assert "without a page[cursor]" in detail


def test_cursor_on_an_unpaginated_endpoint() -> None:
    assert "not supported" in rejected(PROFILE, [("page[cursor]", CURSOR)], "page[cursor]")


def test_reports_page_with_page_cursor() -> None:
    assert uses_page_cursor_parameter(REPORT)
    assert parse_query(REPORT, [("page_cursor", CURSOR)]).cursor == CURSOR
    detail = rejected(REPORT, [("page[cursor]", CURSOR)], "page[cursor]")
    assert "reports page with page_cursor" in detail
    detail = rejected(PROFILES, [("page_cursor", CURSOR)], "page_cursor")
    assert detail.endswith("use page[cursor].")


def test_unknown_page_parameters() -> None:
    detail = rejected(PROFILES, [("page[number]", "2")], "page[number]")
    assert detail == (
        "page[number] is not a valid parameter; pagination uses page[cursor] and page[size]."
    )
    rejected(PROFILE, [("page[offset]", "2")], "page[offset]")


# ------------------------------------------------------------------ fields, include, extras


def test_sparse_fieldsets_allow_listed_dotted_sub_fields() -> None:
    query = parse_query(PROFILES, [("fields[profile]", " email , location.country,email")])
    assert query.fields == {"profile": ("email", "location.country")}
    detail = rejected(PROFILES, [("fields[profile]", "emial")], "fields[profile]")
    assert detail == "'emial' is not a valid field for fields[profile]. Did you mean 'email'?"
    rejected(PROFILES, [("fields[profile]", "location.planet")], "fields[profile]")
    rejected(PROFILES, [("fields[profile]", "email,,id")], "fields[profile]")


def test_fields_for_a_type_the_endpoint_does_not_return() -> None:
    detail = rejected(PROFILES, [("fields[list]", "name")], "fields[list]")
    assert detail == (
        "fields[list] is not a valid parameter for this endpoint; "
        "allowed: fields[conversation], fields[profile], fields[push-token]."
    )


def test_include_uses_klaviyos_wording() -> None:
    detail = rejected(EVENTS, [("include", "metric,profiless")], "include")
    assert detail == "'profiless' is not an allowed include parameter for this resource."
    rejected(ACCOUNTS, [("include", "anything")], "include")
    assert parse_query(EVENTS, [("include", "profile,metric")]).include == ("profile", "metric")


def test_additional_fields() -> None:
    detail = rejected(
        PROFILES,
        [("additional-fields[profile]", "subscriptions,bogus")],
        "additional-fields[profile]",
    )
    assert detail == (
        "'bogus' is not a valid value for additional-fields[profile]; "
        "allowed: subscriptions, predictive_analytics."
    )
    detail = rejected(EVENTS, [("additional-fields[event]", "x")], "additional-fields[event]")
    assert "allowed: none" in detail
    assert parse_query(
        catalog.get("get_list"), [("additional-fields[list]", "profile_count")]
    ).wants("list", "profile_count")


def test_each_parameter_once() -> None:
    detail = rejected(PROFILES, [("sort", "id"), ("sort", "-id")], "sort")
    assert detail == "sort is given more than once; give it once."
    rejected(PROFILES, [("filter", 'equals(email,"a")')] * 2, "filter")
    rejected(PROFILES, [("fields[profile]", "email")] * 2, "fields[profile]")


# ------------------------------------------------------------------ against the spec


@cache
def spec_query_parameters() -> dict[str, list[str]]:
    spec = json.loads(SPEC.read_text())
    found: dict[str, list[str]] = {}
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found[operation["operationId"]] = [
                    p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
                ]
    return found


def valid_value(operation: catalog.Operation, name: str) -> str:
    if name.startswith("fields["):
        return operation.fields[name[7:-1]][0]
    if name.startswith("additional-fields["):
        return operation.additional_fields[name[18:-1]][0]
    values = {
        "include": operation.include[0] if operation.include else "",
        "sort": operation.sort[0] if operation.sort else "",
        "page[size]": "1",
        "page[cursor]": CURSOR,
        "page_cursor": CURSOR,
    }
    return values.get(name, "anything")


def test_every_query_parameter_in_the_spec_is_accepted() -> None:
    """Each operation accepts a valid value for every query parameter its spec lists."""
    by_id = spec_query_parameters()
    assert len(by_id) == len(catalog.all_operations())
    for operation in catalog.all_operations():
        names = [n for n in by_id[operation.operation_id] if n != "filter"]
        params = [(n, valid_value(operation, n)) for n in names]
        try:
            parse_query(operation, params)
        except InvalidError as exc:  # pragma: no cover - the message is the diagnosis
            pytest.fail(f"{operation.key}: {exc.parameter}: {exc.detail}")


def test_page_cursor_parameter_matches_the_spec() -> None:
    by_id = spec_query_parameters()
    for operation in catalog.all_operations():
        in_spec = "page_cursor" in by_id[operation.operation_id]
        assert uses_page_cursor_parameter(operation) == in_spec, operation.key


def test_parameters_the_spec_does_not_list_are_refused() -> None:
    """The converse: page[…], fields[…] and additional-fields[…] not in the spec → 400."""
    by_id = spec_query_parameters()
    for operation in catalog.all_operations():
        listed = set(by_id[operation.operation_id])
        for name in ("page[size]", "page[cursor]", "fields[nothing]", "additional-fields[x]"):
            if name in listed:
                continue
            with pytest.raises(InvalidError) as info:
                parse_query(operation, [(name, "1")])
            assert info.value.parameter == name, operation.key


@pytest.mark.parametrize(
    "next_link",
    [
        f"https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D={CURSOR}&page%5Bsize%5D=5",
        f"http://127.0.0.1:8765/api/profiles/?page%5Bcursor%5D={CURSOR}",
    ],
)
def test_the_official_sdk_cursor_handling_round_trips(next_link: str) -> None:
    """The SDK rewrites a links.next URL before sending it as page[cursor]: for https it
    keeps '=<cursor>', for http the whole (unquoted) URL. Both must reach the same page."""

    def capture(**kwargs: str) -> str:
        return kwargs["page_cursor"]

    sent = KlaviyoAPI._page_cursor_update(capture)(page_cursor=next_link)
    assert sent != CURSOR  # the SDK really does mangle it
    assert parse_query(PROFILES, [("page[cursor]", sent)]).cursor == CURSOR
