"""Flows from a definition file, their status, and a preview of their first email.

A definition file is either Klaviyo's own flow definition
(``{"name": …, "definition": {"triggers": …, "actions": …, "entry_action_id": …}}``,
sent as it is) or this shorter form, whose actions run one after another::

    {"name": "Thank you",
     "trigger": {"metric": "Placed Order"},          # or {"metric_id": …} or {"list": LIST_ID}
     "actions": [
       {"type": "time-delay", "hours": 1},           # or "minutes"/"days"
       {"type": "send-email", "template": "Thanks",  # a template name, or "template_id"
        "subject": "Thank you!", "from_email": "store@example.com", "from_label": "Store"}]}

**Preview.** Klaviyo's API has no "send this flow message to a test
profile" call, so :func:`preview_flow` does what the API does offer: it
renders the flow's first email's template with the chosen event (the most
recent event of the trigger metric unless one is named) and the test
profile as context, puts the test profile alone on the list
``kbridge flow previews`` (kept and reused), and publishes an immediate
one-off campaign ("[Preview] …", Smart Sending off) with that HTML to it.
The preview is therefore a campaign: it shows in campaign lists and reports,
and the test profile must be able to receive marketing email. Nothing
enters the flow itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kbridge.api import AsyncClient
from kbridge.api.capabilities import FLOW_CREATE, FLOW_PREVIEW, FLOW_STATUS, Workflow
from kbridge.api.filter_builder import F
from kbridge.api.jsonapi import Resource
from kbridge.api.resources.flows import FLOW_STATUSES
from kbridge.api.validation import ValidationError, check_choice
from kbridge.campaigns._common import explained
from kbridge.campaigns.errors import DefinitionError
from kbridge.campaigns.publish import PublishRequest, publish
from kbridge.campaigns.templates import render_template
from kbridge.core import Clock

__all__ = [
    "FLOW_OPERATIONS",
    "PREVIEW_LIST",
    "PREVIEW_OPERATIONS",
    "FlowState",
    "PreviewResult",
    "build_definition",
    "create_flow",
    "preview_flow",
    "set_flow_status",
]

#: what creating a flow and switching its status call
FLOW_OPERATIONS = Workflow.of("flows", FLOW_CREATE, FLOW_STATUS).operations
PREVIEW_OPERATIONS = FLOW_PREVIEW.operations
#: the list previews go to (one member: the test profile of the latest preview)
PREVIEW_LIST = "kbridge flow previews"
_DELAY_UNITS = ("minutes", "hours", "days")
_MESSAGE_FIELDS = {
    "subject": "subject_line",
    "subject_line": "subject_line",
    "from_email": "from_email",
    "from_label": "from_label",
    "preview_text": "preview_text",
    "reply_to_email": "reply_to_email",
}


@dataclass(frozen=True, slots=True)
class FlowState:
    """A flow's id, name and status."""

    id: str
    name: str
    status: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status}


@dataclass(frozen=True, slots=True)
class PreviewResult:
    """The preview campaign sent, to whom, for which event."""

    flow_id: str
    campaign_id: str
    status: str
    to: str
    subject: str
    event_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.campaign_id,
            "status": self.status,
            "flow_id": self.flow_id,
            "to": self.to,
            "subject": self.subject,
            "event_id": self.event_id,
        }


def _flow_state(r: Resource) -> FlowState:
    return FlowState(r.id or "", str(r.attributes.get("name") or ""), str(r.attributes["status"]))


# -- definitions --------------------------------------------------------------------------


async def _metric_id(client: AsyncClient, name: str) -> str:
    async for metric in client.metrics.iter_metrics(fields={"metric": ["name"]}):
        if metric.attributes.get("name") == name and metric.id:
            return metric.id
    raise DefinitionError("trigger.metric", f"the account has no metric named {name!r}")


async def _template_id(client: AsyncClient, name: str) -> str:
    async for t in client.templates.iter_templates(filter=F.equals("name", name)):
        if t.attributes.get("name") == name and t.id:
            return t.id
    raise DefinitionError("template", f"no template named {name!r} (push it first)")


async def _trigger(client: AsyncClient, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise DefinitionError(
            "trigger", 'give one of {"metric": NAME}, {"metric_id": ID}, {"list": ID}'
        )
    ((kind, value),) = spec.items()
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"trigger.{kind}", "must be a non-empty string")
    if kind == "metric":
        return {"type": "metric", "id": await _metric_id(client, value)}
    if kind == "metric_id":
        return {"type": "metric", "id": value}
    if kind == "list":
        return {"type": "list", "id": value}
    raise DefinitionError("trigger", f"unknown trigger {kind!r}; use metric, metric_id or list")


async def _action(client: AsyncClient, k: int, spec: Any) -> dict[str, Any]:
    where = f"actions[{k}]"
    if not isinstance(spec, Mapping):
        raise DefinitionError(where, "must be an object")
    kind = spec.get("type")
    if kind == "time-delay":
        units = [u for u in _DELAY_UNITS if u in spec]
        if len(units) != 1:
            raise DefinitionError(where, "a time-delay needs exactly one of minutes, hours, days")
        value = spec[units[0]]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DefinitionError(f"{where}.{units[0]}", "must be a whole number ≥ 0")
        return {"type": "time-delay", "data": {"unit": units[0], "value": value}}
    if kind == "send-email":
        message: dict[str, Any] = {
            target: spec[key] for key, target in _MESSAGE_FIELDS.items() if key in spec
        }
        if "template" in spec:
            message["template_id"] = await _template_id(client, str(spec["template"]))
        elif "template_id" in spec:
            message["template_id"] = str(spec["template_id"])
        else:
            raise DefinitionError(where, "a send-email needs a template (name) or template_id")
        for needed in ("subject_line", "from_email"):
            if not message.get(needed):
                raise DefinitionError(where, f"a send-email needs {needed.replace('_line', '')}")
        return {"type": "send-email", "data": {"message": message, "status": "draft"}}
    raise DefinitionError(f"{where}.type", f"{kind!r}: use send-email or time-delay here")


async def build_definition(
    client: AsyncClient, spec: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``(name, definition)`` from a definition file's content (either form, see the module)."""
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DefinitionError("name", "the flow needs a name")
    if "definition" in spec:
        definition = spec["definition"]
        if not isinstance(definition, Mapping):
            raise DefinitionError("definition", "must be an object")
        return name, dict(definition)
    actions = spec.get("actions")
    if not isinstance(actions, list) or not actions:
        raise DefinitionError("actions", "list at least one action")
    built = [await _action(client, k, a) for k, a in enumerate(actions)]
    ids = [f"step-{k + 1}" for k in range(len(built))]
    for k, action in enumerate(built):
        action["temporary_id"] = ids[k]
        action["links"] = {"next": ids[k + 1] if k + 1 < len(ids) else None}
    definition = {
        "triggers": [await _trigger(client, spec.get("trigger"))],
        "entry_action_id": ids[0],
        "actions": built,
    }
    return name, definition


async def create_flow(client: AsyncClient, spec: Mapping[str, Any]) -> FlowState:
    """Create a (draft) flow from a definition file's content."""
    with explained("create the flow", FLOW_CREATE):
        name, definition = await build_definition(client, spec)
        return _flow_state(await client.flows.create_flow(name=name, definition=definition))


async def set_flow_status(client: AsyncClient, flow_id: str, status: str) -> FlowState:
    """Set the flow (and all its actions) ``live``, ``draft`` or ``manual``."""
    check_choice(status, FLOW_STATUSES, "status")
    with explained("set the flow's status", FLOW_STATUS):
        return _flow_state(await client.flows.update_flow(flow_id, status=status))


# -- preview ------------------------------------------------------------------------------


def _first_email(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The message of the first send-email reached from the entry action (following ``next``)."""
    actions = {
        str(a.get("id")): a for a in definition.get("actions") or () if isinstance(a, Mapping)
    }
    current, seen = definition.get("entry_action_id"), set()
    while current is not None and current not in seen and str(current) in actions:
        seen.add(current)
        action = actions[str(current)]
        if action.get("type") == "send-email":
            message = (action.get("data") or {}).get("message")
            if isinstance(message, Mapping):
                return dict(message)
        current = (action.get("links") or {}).get("next")
    raise DefinitionError("flow", "no send-email action is reached from the flow's entry action")


async def _profile(client: AsyncClient, email: str) -> Resource:
    found = await client.profiles.get_profiles(filter=F.equals("email", email), page_size=1)
    if not found or not found[0].id:
        raise ValidationError("to", f"no profile with the email {email}; create it first")
    return found[0]


async def _event(
    client: AsyncClient, trigger: Mapping[str, Any], event_id: str | None
) -> Resource | None:
    if event_id is not None:
        return await client.events.get_event(event_id)
    if trigger.get("type") != "metric":
        return None  # a list trigger has no event: the profile alone is the context
    recent = await client.events.get_events(
        filter=F.equals("metric_id", str(trigger.get("id"))), sort="-datetime", page_size=1
    )
    return recent[0] if recent else None


async def _preview_list(client: AsyncClient, profile_id: str) -> str:
    lists = await client.lists.get_lists(filter=F.any("name", [PREVIEW_LIST]))
    chosen = next((lst for lst in lists if lst.attributes.get("name") == PREVIEW_LIST), None)
    if chosen is None:
        chosen = await client.lists.create_list(name=PREVIEW_LIST)
    assert chosen.id is not None
    others = [
        p.id
        async for p in client.lists.iter_profiles_for_list(chosen.id)
        if p.id and p.id != profile_id
    ]
    if others:
        await client.lists.remove_profiles_from_list(chosen.id, profile_ids=others)
    await client.lists.add_profiles_to_list(chosen.id, profile_ids=[profile_id])
    return chosen.id


async def preview_flow(
    client: AsyncClient,
    flow_id: str,
    *,
    to: str,
    event_id: str | None = None,
    clock: Clock | None = None,
) -> PreviewResult:
    """Send the flow's first email, rendered for an event, to the profile ``to`` (see module)."""
    with explained("preview the flow", FLOW_PREVIEW):
        flow = await client.flows.get_flow(flow_id, additional_fields={"flow": ["definition"]})
        definition = flow.attributes.get("definition") or {}
        message = _first_email(definition)
        template_id = message.get("template_id")
        if not template_id:
            raise DefinitionError("flow", "its first email has no template to preview")
        trigger = (definition.get("triggers") or [{}])[0]
        profile = await _profile(client, to)
        event = await _event(client, trigger, event_id)
        person = {
            k: profile.attributes.get(k)
            for k in ("email", "first_name", "last_name", "phone_number")
        }
        person |= dict(profile.attributes.get("properties") or {})
        context: dict[str, Any] = {**person, "person": person}
        if event is not None:
            context["event"] = dict(event.attributes.get("event_properties") or {})
        rendered = await render_template(client, str(template_id), context)
        assert profile.id is not None
        list_id = await _preview_list(client, profile.id)
    subject = f"[Preview] {message.get('subject_line') or flow.attributes.get('name')}"
    state = await publish(
        client,
        PublishRequest(
            name=f"Preview of flow {flow.attributes.get('name')} ({flow_id})",
            included=[list_id],
            subject=subject,
            from_email=str(message.get("from_email") or ""),
            from_label=str(message.get("from_label") or ""),
            preview_text=message.get("preview_text"),
            html=rendered.html or "",
            text=rendered.text,
            smart_sending=False,
        ),
        clock=clock,
    )
    return PreviewResult(flow_id, state.id, state.status, to, subject, event.id if event else None)
