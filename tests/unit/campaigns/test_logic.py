"""The workflows' pure parts: request checks, the campaign body, windows, flow definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kbridge.api.errors import ErrorDetails, InvalidRequestError
from kbridge.api.validation import ValidationError
from kbridge.campaigns import DefinitionError, PublishRequest, SendTimeInPastError, publish
from kbridge.campaigns._common import scopes_for
from kbridge.campaigns.flows import _first_email, build_definition
from kbridge.campaigns.performance import _window
from kbridge.campaigns.publish import _campaign_body, _check_request, explain_status
from kbridge.cli.campaigns import _json_arg, _utm, _when
from kbridge.core import ManualClock

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def req(**changes: Any) -> PublishRequest:
    values: dict[str, Any] = {
        "name": "N",
        "included": ["L1"],
        "subject": "S",
        "from_email": "a@b.example",
        "from_label": "B",
        "html": "<p>x</p>",
    }
    return PublishRequest(**(values | changes))


def test_send_time_must_be_in_the_future() -> None:
    with pytest.raises(SendTimeInPastError, match=r"2026-03-01T11:59:00\+00:00 is in the past"):
        _check_request(req(send_at=NOW - timedelta(minutes=1)), NOW)
    with pytest.raises(SendTimeInPastError):
        _check_request(req(send_at=NOW), NOW)
    _check_request(req(send_at=NOW + timedelta(seconds=1)), NOW)
    _check_request(req(send_at=None), NOW)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"html": None}, "content"),
        ({"template_id": "T1"}, "content"),
        ({"html": "  "}, "html"),
        ({"included": []}, "included"),
    ],
)
def test_content_and_audience_are_checked(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _check_request(req(**changes), NOW)
    assert caught.value.field == field


def test_campaign_body_static_local_time_tracking_and_utm() -> None:
    body = _campaign_body(
        req(
            send_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
            local_time=True,
            smart_sending=False,
            track_clicks=False,
            utm={"utm_source": "kbridge"},
            preview_text="P",
        )
    )
    attrs = body["data"]["attributes"]
    assert attrs["send_strategy"] == {
        "method": "static",
        "datetime": "2026-03-02T09:30:00Z",
        "options": {"is_local": True},
    }
    assert attrs["send_options"] == {"use_smart_sending": False}
    assert attrs["tracking_options"] == {
        "is_tracking_opens": True,
        "is_tracking_clicks": False,
        "add_tracking_params": True,
        "custom_tracking_params": [{"type": "static", "value": "kbridge", "name": "utm_source"}],
    }
    (message,) = attrs["campaign-messages"]["data"]
    assert message["attributes"]["definition"]["content"]["preview_text"] == "P"
    now_body = _campaign_body(req())["data"]["attributes"]
    assert now_body["send_strategy"] == {"method": "immediate"}
    assert now_body["tracking_options"]["add_tracking_params"] is False


def test_cancelled_statuses_say_what_to_fix() -> None:
    assert explain_status("Scheduled") is None
    hint = explain_status("Cancelled: Misconfigured")
    assert hint is not None
    assert "verify the from address" in hint
    assert "Smart Sending" in str(explain_status("Cancelled: Smart Sending"))
    assert "Cancelled: Something New" in str(explain_status("Cancelled: Something New"))


def test_scopes_of_a_workflow_are_its_operations_scopes() -> None:
    assert scopes_for(["create_campaign", "get_campaign", "create_template"]) == (
        "campaigns:read",
        "campaigns:write",
        "templates:write",
    )


def test_report_window_defaults_and_limits() -> None:
    start, end = _window(None, None, NOW)
    assert (start, end) == (NOW - timedelta(days=30), NOW + timedelta(days=1))
    with pytest.raises(ValidationError, match="at most 365 days"):
        _window(NOW - timedelta(days=400), None, NOW)
    with pytest.raises(ValidationError, match="before the end"):
        _window(NOW, NOW - timedelta(hours=1), NOW)


@pytest.mark.anyio
async def test_shorthand_definition_chains_actions_without_lookups() -> None:
    # metric_id and template_id need no request: no client is used
    name, definition = await build_definition(
        None,  # type: ignore[arg-type]
        {
            "name": "F",
            "trigger": {"metric_id": "M1"},
            "actions": [
                {"type": "time-delay", "days": 2},
                {"type": "send-email", "template_id": "T1", "subject": "Hi",
                 "from_email": "a@b.example", "preview_text": "P"},
            ],
        },
    )  # fmt: skip
    assert name == "F"
    assert definition["triggers"] == [{"type": "metric", "id": "M1"}]
    assert definition["entry_action_id"] == "step-1"
    delay, email = definition["actions"]
    assert delay["links"] == {"next": "step-2"}
    assert delay["data"] == {"unit": "days", "value": 2}
    assert email["links"] == {"next": None}
    assert email["data"]["message"] == {
        "subject_line": "Hi",
        "from_email": "a@b.example",
        "preview_text": "P",
        "template_id": "T1",
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"actions": []}, "name: the flow needs a name"),
        ({"name": "F", "actions": []}, "actions: list at least one action"),
        ({"name": "F", "actions": [{"type": "time-delay"}]}, "exactly one of minutes"),
        ({"name": "F", "actions": [{"type": "time-delay", "hours": -1}]}, "whole number"),
        ({"name": "F", "actions": [{"type": "split"}]}, "'split': use send-email"),
        (
            {"name": "F", "actions": [{"type": "send-email", "template_id": "T"}]},
            "needs subject",
        ),
        (
            {
                "name": "F",
                "trigger": {"segment": "S"},
                "actions": [{"type": "time-delay", "days": 1}],
            },
            "unknown trigger 'segment'",
        ),
    ],
)
async def test_definition_problems_name_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        await build_definition(None, spec)  # type: ignore[arg-type]


def test_first_email_follows_next_from_the_entry_action() -> None:
    definition = {
        "entry_action_id": "1",
        "actions": [
            {"id": "3", "type": "send-email", "data": {"message": {"subject_line": "second"}}},
            {"id": "1", "type": "time-delay", "links": {"next": "2"}},
            {"id": "2", "type": "send-email", "links": {"next": "3"},
             "data": {"message": {"subject_line": "first"}}},
        ],
    }  # fmt: skip
    assert _first_email(definition)["subject_line"] == "first"
    with pytest.raises(DefinitionError, match="no send-email"):
        _first_email({"entry_action_id": "1", "actions": [{"id": "1", "type": "time-delay"}]})


def test_cli_values(tmp_path: Path) -> None:
    assert _when("now") is None
    assert _when("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(ValidationError, match="give a timezone"):
        _when("2026-03-01T10:00:00")
    with pytest.raises(ValidationError, match="not ISO 8601"):
        _when("tomorrow")
    ctx = tmp_path / "ctx.json"
    ctx.write_text('{"a": 1}', "utf-8")
    assert _json_arg(str(ctx), "context") == {"a": 1}
    assert _json_arg(f"@{ctx}", "context") == {"a": 1}
    assert _json_arg('{"b": 2}', "context") == {"b": 2}
    with pytest.raises(ValidationError, match="not valid JSON"):
        _json_arg("nope", "context")
    assert _utm(["utm_source=kbridge", "utm_medium=email"]) == {
        "utm_source": "kbridge",
        "utm_medium": "email",
    }
    with pytest.raises(ValidationError, match="NAME=VALUE"):
        _utm(["utm_source"])


class _RefusingClient:
    """Answers create_campaign as Klaviyo does when its clock says the time has passed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail

    async def get_document(self, operation_id: str, **_: Any) -> Any:
        details = ErrorDetails(
            status=400,
            code="invalid",
            detail=self.detail,
            source_pointer="/data/attributes/send_strategy/datetime",
            operation_id=operation_id,
        )
        raise InvalidRequestError(details)


@pytest.mark.anyio
async def test_a_send_time_klaviyo_calls_past_is_that_error_not_a_bare_400() -> None:
    clock = ManualClock(NOW)
    late = req(send_at=NOW + timedelta(seconds=5))
    with pytest.raises(SendTimeInPastError, match="by Klaviyo's clock"):
        await publish(_RefusingClient("must be in the future"), late, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):  # another problem with the field stays as it was
        await publish(_RefusingClient("is not a datetime"), late, clock=clock)  # type: ignore[arg-type]
