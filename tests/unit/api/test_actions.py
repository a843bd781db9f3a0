"""The action registry: complete, consistent with the catalogue and the services."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kbridge import catalog
from kbridge.api import actions
from kbridge.api.actions import Param, coerce
from kbridge.api.resources import SERVICES
from kbridge.api.validation import ValidationError

pytestmark = pytest.mark.unit

#: the actions issue 5 asks for, by CLI name
REQUIRED = {
    "events bulk-create", "events create", "events get", "events list",
    "campaigns create", "campaigns get", "campaigns list", "campaigns update", "campaigns delete",
    "lists create", "lists get", "lists list", "lists update", "lists delete", "lists profiles",
    "lists add-profiles", "lists remove-profiles",
    "profiles create", "profiles get", "profiles list", "profiles update",
    "segments create", "segments get", "segments list", "segments update", "segments delete",
    "templates create", "templates get", "templates list", "templates update",
    "templates delete", "templates render", "templates clone",
    "images get", "images list", "images update", "images upload",
    "accounts get", "accounts list",
    "subscriptions subscribe", "subscriptions unsubscribe",
    "metrics list", "metrics get",
    "flows list", "flows get", "flows create", "flows update-status", "flows delete",
    "campaigns send", "campaigns cancel-send",
    "reporting campaign-values", "reporting flow-values",
    "data-privacy request-deletion",
}  # fmt: skip


def test_every_issue_action_is_declared() -> None:
    assert set(actions.registry()) >= REQUIRED


def test_each_action_names_real_operations_and_a_real_service_method() -> None:
    for name, action in actions.registry().items():
        assert action.cli_name == name
        assert action.operations, name
        for op_id in action.operations:
            catalog.get(op_id)  # raises if unknown
        service = SERVICES[action.service]
        assert callable(getattr(service, action.method, None)), name
        assert action.scopes, name
        assert set(action.rate_limits) == set(action.operations)


def test_scopes_come_from_the_catalogue() -> None:
    assert actions.get("templates create").scopes == ("templates:write",)
    assert set(actions.get("subscriptions subscribe").scopes) == {
        "lists:write",
        "profiles:write",
        "subscriptions:write",
    }
    assert actions.get("profiles list").rate_limits["get_profiles"].steady > 0


def test_list_actions_offer_exactly_the_query_options_their_operation_allows() -> None:
    profiles = {p.name for p in actions.get("profiles list").params}
    assert {"filter", "sort", "fields", "include", "additional_fields", "page_size"} <= profiles
    metrics = {p.name for p in actions.get("metrics list").params}
    assert "sort" not in metrics  # get_metrics has no sort
    assert "page_size" not in metrics


def test_required_parameters_are_enforced_by_name() -> None:
    with pytest.raises(ValidationError) as err:
        actions.get("lists create").arguments({"name": None})
    assert err.value.field == "name"
    assert "'lists create'" in str(err.value)


def test_plain_values_become_args_and_kwargs() -> None:
    args, kwargs = actions.get("lists add-profiles").arguments(
        {"id": "L1", "profile_ids": ["a", "b"]}
    )
    assert args == ("L1",)
    assert kwargs == {"profile_ids": ["a", "b"]}
    _, query = actions.get("profiles list").arguments(
        {"fields": ["profile=email,first_name"], "additional_fields": ["profile=subscriptions"]}
    )
    assert query["fields"] == {"profile": ["email", "first_name"]}
    assert query["additional_fields"] == {"profile": ["subscriptions"]}
    with pytest.raises(ValidationError) as bad:
        actions.get("profiles list").arguments({"fields": ["email"]})
    assert bad.value.field == "fields"


def test_coerce_converts_text_and_names_the_parameter(tmp_path: Path) -> None:
    assert coerce(Param("n", "int"), "5") == 5
    assert coerce(Param("v", "float"), "2.5") == 2.5
    assert coerce(Param("b", "bool"), "true") is True
    assert coerce(Param("s", "strs"), "one") == ["one"]
    when = coerce(Param("t", "datetime"), "2026-07-01T12:00:00Z")
    assert when == datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert coerce(Param("j", "json"), '{"a": 1}') == {"a": 1}
    data = tmp_path / "d.json"
    data.write_text("[1, 2]", encoding="utf-8")
    assert coerce(Param("j", "json"), f"@{data}") == [1, 2]
    page = tmp_path / "t.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    assert coerce(Param("html", "text_file"), str(page)) == "<p>x</p>"
    for param, raw in [
        (Param("n", "int"), "five"),
        (Param("t", "datetime"), "2026-07-01T12:00:00"),  # naive
        (Param("t", "datetime"), "yesterday"),
        (Param("j", "json"), "{nope"),
        (Param("b", "bool"), "maybe"),
        (Param("c", choices=("a", "b")), "z"),
        (Param("html", "text_file"), str(tmp_path / "missing.html")),
    ]:
        with pytest.raises(ValidationError) as err:
            coerce(param, raw)
        assert err.value.field == param.name


def test_events_bulk_file_lines_are_parsed_with_their_line_number() -> None:
    action = actions.get("events bulk-create")
    good = '{"metric": "M", "profile": {"email": "a@b.co"}, "time": "2026-01-01T00:00:00Z"}'
    (events,), _ = action.arguments({"file": good + "\n\n" + good})
    assert len(events) == 2
    assert events[0].time == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as err:
        action.arguments({"file": good + "\n{broken"})
    assert err.value.field == "file line 2"


def test_image_upload_needs_exactly_one_source() -> None:
    action = actions.get("images upload")
    with pytest.raises(ValidationError):
        action.arguments({})
    with pytest.raises(ValidationError):
        action.arguments({"url": "https://x.co/a.png", "file": Path("a.png")})
    _, kwargs = action.arguments({"url": "https://x.co/a.png", "name": "a"})
    assert kwargs == {"url": "https://x.co/a.png", "name": "a"}


def test_bulk_size_counts_unique_list_members() -> None:
    action = actions.get("lists add-profiles")
    assert action.bulk_size({"id": "L", "profile_ids": ["a", "a", "b"]}) == 2
    assert actions.get("lists get").bulk_size({"id": "L"}) is None


def test_tag_attach_takes_a_kind_and_resource_ids() -> None:
    action = actions.get("tags attach")
    args, kwargs = action.arguments({"id": "T1", "kind": "lists", "ids": ["L1", "L2"]})
    assert args == ("T1",)
    assert kwargs == {"kind": "lists", "ids": ["L1", "L2"]}
    assert "tags:write" in action.scopes
