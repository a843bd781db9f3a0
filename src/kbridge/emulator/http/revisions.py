"""The revisions the emulator implements, and the 2026-10-15 campaign shapes.

Klaviyo answers a revision that is not one of its releases with 400; the
emulator implements the spec's revision (``catalog.REVISION``, 2026-07-15)
and 2026-10-15, the one ``klaviyo-api`` 25.0.0 pins, plus any
``EmulatorConfig.extra_revisions`` (answered like the spec's).

Only the 2026-07-15 spec is in ``../shared``, so the 2026-10-15 campaign
shapes are *derived from the SDK's models* (``OmniCampaignResponseObjectResource``,
``MessageResponseObjectResource``, ``CampaignCreateQuery``,
``CampaignPartialUpdateQuery``, ``MessagePartialUpdateQuery``,
``PostCampaignMessageResponse``): the backend keeps one model, and this module
translates a 2026-10-15 request body into the spec's before the backend sees
it and the backend's campaign and message resources into the newer shape
after. Everything else is served the same under both revisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator.backend.call import Call, Outcome
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.http.errors import HttpProblem
from kbridge.emulator.http.revision import ResolvedRevision
from kbridge.emulator.query import Page, Query

__all__ = [
    "DERIVED_SHAPES",
    "IMPLEMENTED_REVISIONS",
    "OMNICAMPAIGN_REVISION",
    "adapt_outcome",
    "adapt_request",
    "implemented_revision",
    "revised_fields",
]

#: the SDK 25.0.0 revision: campaigns as "omnicampaigns" with a ``definition``
OMNICAMPAIGN_REVISION = "2026-10-15"
IMPLEMENTED_REVISIONS: tuple[str, ...] = (catalog.REVISION, OMNICAMPAIGN_REVISION)

Dispatch = Callable[[Call], Outcome]

#: what 2026-10-15 changes, as derived from the SDK 25.0.0 models (for the coverage page)
DERIVED_SHAPES: tuple[tuple[str, str, str], ...] = (
    (
        "campaign (every answer)",
        "OmniCampaignResponseObjectResource",
        "`created_at`, `updated_at`, `definition` {`name`, `archived`, `send_settings` "
        "{`send_strategy`, `send_timezone`}}; the status moves to the messages",
    ),
    (
        "campaign-message (every answer but assign-template)",
        "MessageResponseObjectResource",
        "`created`, `updated`, `definition` {`name` (the label), `status` (lower case), "
        "`tracking_options`, `send_options` {`send_strategy`, `send_time`}}",
    ),
    (
        "request body of `create_campaign`",
        "CampaignCreateQuery",
        "`definition`, `audiences` [{`temporary_id`, `included`, `excluded`}], `messages` "
        "[{`name`, `variations` [{`definition` {`details`}}]}]; a variation's free-form "
        "`details` is read as the spec's message definition (`channel`, `content`)",
    ),
    ("request body of `update_campaign`", "CampaignPartialUpdateQuery", "`definition`"),
    (
        "request body of `update_campaign_message`",
        "MessagePartialUpdateQuery",
        "`definition`; `send_options.send_time` and `tracking_options` update the campaign",
    ),
    (
        "request body of `create_campaign_clone`",
        "CampaignCloneQuery",
        "`name` (the spec's `new_name`)",
    ),
    (
        "sparse fieldsets `fields[campaign]`, `fields[campaign-message]`",
        "—",
        "name the revision's attributes (`definition.name`) and apply to the adapted resources",
    ),
    (
        "filters of `get_campaigns`",
        "CampaignsApi.get_campaigns",
        "the `messages.channel` filter is optional (every channel is listed)",
    ),
)


def implemented_revision(resolved: ResolvedRevision, extra: tuple[str, ...] = ()) -> str:
    """The implemented revision ``resolved`` is answered as, or Klaviyo's 400.

    A suffix (``2026-07-15.pre``) names the same release; a retired revision
    that fell forward is answered as the oldest implemented one.
    """
    if resolved.fell_forward:
        return min(IMPLEMENTED_REVISIONS)
    day = resolved.effective.split(".", 1)[0]
    if day in IMPLEMENTED_REVISIONS:
        return day
    if resolved.effective in extra or day in extra:
        return catalog.REVISION
    known = ", ".join((*IMPLEMENTED_REVISIONS, *extra))
    raise HttpProblem(
        400,
        "invalid",
        f"Invalid revision {resolved.effective[:40]!r}: not a revision this API serves "
        f"(the emulator implements {known}).",
        parameter="revision",
    )


# -- requests ---------------------------------------------------------------------------

_REVISED_FIELDS = re.compile(r"fields\[(campaign|campaign-message)\]")


def revised_fields(
    revision: str, items: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, ...]]]:
    """``items`` without the sparse fieldsets of the types this revision reshapes, and those.

    They name 2026-10-15 attributes (``definition.name``), which the catalogue's (the
    spec's) names would refuse; they are applied to the adapted resources instead.
    """
    if revision != OMNICAMPAIGN_REVISION:
        return items, {}
    kept: list[tuple[str, str]] = []
    taken: dict[str, tuple[str, ...]] = {}
    for key, value in items:
        m = _REVISED_FIELDS.fullmatch(key)
        if m is None:
            kept.append((key, value))
        else:
            taken[m[1]] = tuple(name.strip() for name in value.split(",") if name.strip())
    return kept, taken


def adapt_request(revision: str, operation: Operation, body: Any, call: Call, run: Dispatch) -> Any:
    """``body`` in the spec's shape; may first apply what the spec keeps elsewhere.

    ``call`` is the request as parsed (its body still the 2026-10-15 one);
    ``run`` dispatches a backend call (a 2026-10-15 message's send time is
    its campaign's ``send_strategy`` in the spec).
    """
    if revision != OMNICAMPAIGN_REVISION or not isinstance(body, dict):
        return body
    data = body.get("data")
    if not isinstance(data, dict):
        return body
    attrs = data.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    op = operation.operation_id
    if op == "create_campaign" and "definition" in attrs:
        return {"data": {"type": "campaign", "attributes": _create_attributes(attrs)}}
    if op == "update_campaign" and "definition" in attrs:
        out = {"type": "campaign", "id": data.get("id"), "attributes": _campaign_update(attrs)}
        return {"data": out}
    if op == "create_campaign_clone" and "name" in attrs:
        renamed = {k: v for k, v in attrs.items() if k != "name"}
        renamed["new_name"] = attrs["name"]
        return {"data": {**data, "attributes": renamed}}
    if op == "update_campaign_message":
        return {"data": _message_update(data, attrs, call, run)}
    return body


def _definition(attrs: dict[str, Any]) -> dict[str, Any]:
    value = attrs.get("definition")
    return value if isinstance(value, dict) else {}


#: the SDK's send-strategy enum (MessageSendOptions) → the spec's ``send_strategy.method``
_METHODS = {
    "static": "static",
    "local_timezone": "static",
    "throttled": "throttled",
    "send_time_optimization": "smart_send_time",
    "personalized_send_time_optimization": "smart_send_time",
}
#: the spec's campaign status → the SDK's message status enum
_STATUSES = {"Draft": "draft", "Scheduled": "scheduled", "Sending": "sending", "Sent": "sent"}


def _strategy(settings: Any, send_time: Any = None) -> dict[str, Any] | None:
    """A spec ``send_strategy`` from 2026-10-15 ``send_settings``/``send_options``."""
    name = settings.get("send_strategy") if isinstance(settings, dict) else None
    if not isinstance(name, str):
        return None
    method = _METHODS.get(name.lower(), name.lower())
    if method == "static" and send_time:
        is_local = name.lower() == "local_timezone" or (
            isinstance(settings, dict) and settings.get("send_timezone") == "local"
        )
        return {"method": "static", "datetime": send_time, "options": {"is_local": is_local}}
    if method == "static":
        # no send time yet: the spec's nearest is sending when the send job runs
        return {"method": "immediate"}
    return {"method": method}


def _sdk_strategy(strategy: dict[str, Any]) -> str:
    method = strategy.get("method")
    if method == "throttled":
        return "throttled"
    if method == "smart_send_time":
        return "send_time_optimization"
    if (strategy.get("options") or {}).get("is_local"):
        return "local_timezone"
    return "static"


def _campaign_update(attrs: dict[str, Any]) -> dict[str, Any]:
    definition = _definition(attrs)
    out: dict[str, Any] = {}
    if "name" in definition:
        out["name"] = definition["name"]
    strategy = _strategy(definition.get("send_settings"))
    if strategy is not None and strategy["method"] != "immediate":
        out["send_strategy"] = strategy
    return out


def _create_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    out = _campaign_update(attrs)
    out.setdefault("send_strategy", {"method": "immediate"})
    audiences = [a for a in attrs.get("audiences") or [] if isinstance(a, dict)]
    out["audiences"] = {
        "included": [i for a in audiences for i in a.get("included") or []],
        "excluded": [i for a in audiences for i in a.get("excluded") or []],
    }
    messages: list[dict[str, Any]] = []
    for message in attrs.get("messages") or []:
        if not isinstance(message, dict):
            continue
        # derived: a variation's free-form ``details`` carries the spec's message
        # definition (channel, content); its name is the message's label
        for variation in message.get("variations") or [{}]:
            vdef = variation.get("definition") if isinstance(variation, dict) else None
            details = (vdef or {}).get("details") if isinstance(vdef, dict) else None
            definition = dict(details) if isinstance(details, dict) else {}
            definition.setdefault("channel", "email")
            label = message.get("name") or (vdef or {}).get("name")
            if label is not None:
                definition.setdefault("label", label)
            messages.append({"type": "campaign-message", "attributes": {"definition": definition}})
            break
        if "is_add_utm" in message:
            out["tracking_options"] = {"add_tracking_params": bool(message["is_add_utm"])}
    out["campaign-messages"] = {"data": messages}
    return out


def _message_update(
    data: dict[str, Any], attrs: dict[str, Any], call: Call, run: Dispatch
) -> dict[str, Any]:
    definition = _definition(attrs)
    mid = str(data.get("id"))
    current = run(replace(call, operation=catalog.get("get_campaign_message"), body=None))
    assert isinstance(current.data, Resource)
    stored = dict(current.data.attributes.get("definition") or {})
    campaign_id = current.data.relationships["campaign"]
    if "name" in definition:
        stored["label"] = definition["name"]
    campaign_attrs: dict[str, Any] = {}
    send = definition.get("send_options")
    if isinstance(send, dict):
        strategy = _strategy(send, send.get("send_time"))
        if strategy is not None:
            campaign_attrs["send_strategy"] = strategy
    tracking = definition.get("tracking_options")
    if isinstance(tracking, dict):
        campaign_attrs["tracking_options"] = {
            key: tracking[src]
            for src, key in (
                ("is_add_utm", "add_tracking_params"),
                ("is_tracking_clicks", "is_tracking_clicks"),
                ("is_tracking_opens", "is_tracking_opens"),
            )
            if src in tracking
        }
    if campaign_attrs and isinstance(campaign_id, tuple):
        body = {"data": {"type": "campaign", "id": campaign_id[1], "attributes": campaign_attrs}}
        run(
            replace(
                call,
                operation=catalog.get("update_campaign"),
                path_params={"id": campaign_id[1]},
                body=body,
            )
        )
    return {"type": "campaign-message", "id": mid, "attributes": {"definition": stored}}


# -- answers ----------------------------------------------------------------------------


def adapt_outcome(revision: str, operation: Operation, outcome: Outcome, run: Dispatch) -> Outcome:
    """``outcome`` with its campaigns and messages in ``revision``'s shapes."""
    if revision != OMNICAMPAIGN_REVISION or outcome.identifiers_only:
        return outcome
    if operation.operation_id == "assign_template_to_campaign_message":
        # the SDK's PostCampaignMessageResponse keeps the spec's message attributes
        return outcome
    statuses: dict[str, dict[str, Any]] = {}

    def campaign_of(campaign_id: str) -> dict[str, Any]:
        if campaign_id not in statuses:
            get = catalog.get("get_campaign")
            found = run(Call(operation=get, path_params={"id": campaign_id}, query=Query()))
            assert isinstance(found.data, Resource)
            statuses[campaign_id] = found.data.attributes
        return statuses[campaign_id]

    def one(res: Resource) -> Resource:
        if res.type == "campaign":
            return _omnicampaign(res)
        if res.type == "campaign-message":
            link = res.relationships.get("campaign")
            campaign = campaign_of(link[1]) if isinstance(link, tuple) else {}
            return _omnimessage(res, campaign)
        return res

    data = outcome.data
    if isinstance(data, Resource):
        data = one(data)
    elif isinstance(data, list):
        data = [one(r) for r in data]
    elif isinstance(data, Page):
        data = replace(data, items=[one(r) for r in data.items])
    return replace(outcome, data=data, included=[one(r) for r in outcome.included])


def _omnicampaign(res: Resource) -> Resource:
    a = res.attributes
    strategy = a.get("send_strategy") or {}
    settings: dict[str, Any] = {"send_strategy": _sdk_strategy(strategy)}
    if (strategy.get("options") or {}).get("is_local"):
        settings["send_timezone"] = "local"
    attrs = {
        "created_at": a.get("created_at"),
        "updated_at": a.get("updated_at"),
        "definition": {
            "name": a.get("name"),
            "archived": a.get("archived"),
            "send_settings": settings,
        },
    }
    return replace(res, attributes=attrs)


def _omnimessage(res: Resource, campaign: dict[str, Any]) -> Resource:
    a = res.attributes
    definition = a.get("definition") or {}
    strategy = campaign.get("send_strategy") or {}
    tracking = campaign.get("tracking_options") or {}
    send_options: dict[str, Any] = {"send_strategy": _sdk_strategy(strategy)}
    send_time = campaign.get("send_time") or strategy.get("datetime")
    if send_time:
        send_options["send_time"] = send_time
    attrs = {
        "created": a.get("created_at"),
        "updated": a.get("updated_at"),
        "definition": {
            "name": definition.get("label"),
            "status": _STATUSES.get(str(campaign.get("status")), "cancelled"),
            "tracking_options": {
                "is_add_utm": bool(tracking.get("add_tracking_params")),
                "is_tracking_clicks": bool(tracking.get("is_tracking_clicks", True)),
                "is_tracking_opens": bool(tracking.get("is_tracking_opens", True)),
            },
            "send_options": send_options,
        },
    }
    return replace(res, attributes=attrs)
