"""The params of campaign jobs, checked when the job is made rather than when it runs.

A mistake found by the worker is a failed job minutes later; found here it
is a 422 naming ``params.<key>`` while the caller still waits. The words are
those of ``kbridge campaigns publish|schedule|cancel|revert``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kbridge.api.validation import ValidationError, check_email
from kbridge.web.problems import invalid

__all__ = ["CAMPAIGN_KINDS", "check_campaign_params"]

CAMPAIGN_KINDS = ("campaign_publish", "campaign_schedule", "campaign_cancel", "campaign_revert")

_TEXT = ("name", "subject", "template_id", "html", "text", "preview_text", "from_label")
_FLAGS = ("local_time", "smart_sending", "track_opens", "track_clicks", "draft")
_PUBLISH = (*_TEXT, "included", "excluded", "from_email", "send_at", "utm", *_FLAGS)


def check_campaign_params(
    kind: str, params: dict[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """``params`` of a campaign job, checked and normalised (``send_at`` in ISO with its zone).

    ``now``: a ``send_at`` must come after it (a schedule's params are not held to it).
    """
    known: tuple[str, ...] = ("campaign_id",)  # cancel, revert
    if kind == "campaign_publish":
        known = _PUBLISH
    elif kind == "campaign_schedule":
        known = ("campaign_id", "send_at")
    for key in params:
        if key not in known:
            raise invalid(f"params.{key}", f"not a {kind} parameter; known: {', '.join(known)}")
    checked: dict[str, Any] = {}
    if kind == "campaign_publish":
        _publish(params, checked)
    else:
        checked["campaign_id"] = _text(params, "campaign_id", required=True)
    if params.get("send_at") is not None:
        checked["send_at"] = _send_at(params["send_at"], now)
    return checked


def _publish(params: dict[str, Any], checked: dict[str, Any]) -> None:
    for key in _TEXT:
        value = _text(params, key, required=key in ("name", "subject"))
        if value is not None:
            checked[key] = value
    if ("template_id" in checked) == ("html" in checked):
        raise invalid("params.template_id", "give exactly one of template_id or html")
    checked["included"] = _names(params, "included", required=True)
    if "excluded" in params:
        checked["excluded"] = _names(params, "excluded", required=False)
    if params.get("from_email") is not None:
        try:
            checked["from_email"] = check_email(str(params["from_email"]))
        except ValidationError:
            raise invalid("params.from_email", "not a valid email address") from None
    for key in _FLAGS:
        if key in params:
            if not isinstance(params[key], bool):
                raise invalid(f"params.{key}", "must be true or false")
            checked[key] = params[key]
    if "utm" in params:
        utm = params["utm"]
        if not isinstance(utm, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in utm.items()
        ):
            raise invalid("params.utm", 'must be an object of strings, e.g. {"utm_source": "x"}')
        checked["utm"] = dict(utm)


def _text(params: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise invalid(f"params.{key}", "required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"params.{key}", "must be a non-empty string")
    return value


def _names(params: dict[str, Any], key: str, *, required: bool) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise invalid(f"params.{key}", "must be a list of list or segment ids")
    if required and not value:
        raise invalid(f"params.{key}", "name at least one list or segment")
    return list(value)


def _send_at(value: object, now: datetime | None) -> str:
    if not isinstance(value, str):
        raise invalid("params.send_at", "must be an ISO date-time like 2030-01-01T09:00:00Z")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("params.send_at", "not an ISO date-time like 2030-01-01T09:00:00Z") from None
    if when.tzinfo is None:
        raise invalid("params.send_at", "give a timezone, e.g. 2030-01-01T09:00:00Z")
    if now is not None and when <= now:
        raise invalid("params.send_at", f"{when.isoformat()} is not in the future")
    return when.isoformat()
