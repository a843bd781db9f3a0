"""Flow definitions and status changes a client sends, checked before anything is stored.

A new flow's actions name each other by ``temporary_id``; an update names real ids.
Each refusal is a 400 with a JSON pointer to the offending member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.flow_records import (
    ACTION_STATUSES,
    ACTION_TYPES,
    DELAY_UNITS,
    FLOW_STATUSES,
    LINK_NAMES,
    TRIGGER_TYPES,
    FlowStatus,
)
from kbridge.emulator.backend.templates import templates_of

if TYPE_CHECKING:
    from kbridge.emulator.backend.common import Context

__all__ = ["DEFINITION", "NewFlow", "check_action", "check_definition", "flow_status"]

#: where a flow's definition sits in a request body
DEFINITION = "/data/attributes/definition"


@dataclass(frozen=True, slots=True)
class NewFlow:
    """A checked create-flow definition, its actions still in temporary ids."""

    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    temporary_ids: list[str]
    entry_action_id: Any
    profile_filter: Any
    reentry_criteria: Any


def check_definition(ctx: Context, definition: Any) -> NewFlow:
    """``definition`` of ``POST /api/flows``: one known trigger, well-formed linked actions."""
    if not isinstance(definition, dict):
        raise InvalidError("definition is required and must be an object", pointer=DEFINITION)
    trigger = _trigger(ctx, definition.get("triggers"))
    raw_actions = definition.get("actions")
    if not isinstance(raw_actions, list):
        raise InvalidError("definition.actions must be a list", pointer=f"{DEFINITION}/actions")
    temp_ids = _temporary_ids(raw_actions)
    entry = definition.get("entry_action_id")
    if raw_actions and entry not in temp_ids:
        raise InvalidError(
            "entry_action_id must be the temporary_id of one of the actions",
            pointer=f"{DEFINITION}/entry_action_id",
        )
    for k, raw in enumerate(raw_actions):
        check_action(ctx, raw, f"{DEFINITION}/actions/{k}", temp_ids)
    return NewFlow(
        trigger=trigger,
        actions=raw_actions,
        temporary_ids=temp_ids,
        entry_action_id=entry,
        profile_filter=definition.get("profile_filter"),
        reentry_criteria=definition.get("reentry_criteria"),
    )


def flow_status(value: Any) -> FlowStatus:
    """The ``status`` of ``PATCH /api/flows/{id}``."""
    if value not in FLOW_STATUSES:
        raise InvalidError(
            f"status must be one of {', '.join(FLOW_STATUSES)}",
            pointer="/data/attributes/status",
        )
    return FlowStatus(value)


def _trigger(ctx: Context, triggers: Any) -> dict[str, Any]:
    ptr = f"{DEFINITION}/triggers"
    if not isinstance(triggers, list) or len(triggers) != 1:
        raise InvalidError("definition.triggers must hold exactly one trigger", pointer=ptr)
    trigger = triggers[0]
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    if kind not in TRIGGER_TYPES:
        raise InvalidError(
            f"trigger type {kind!r} is not supported by the emulator; use metric or list",
            pointer=f"{ptr}/0/type",
        )
    assert isinstance(trigger, dict)
    ident = trigger.get("id")
    known = ctx.store.metric_by_id if kind == "metric" else ctx.store.lists
    if not isinstance(ident, str) or ident not in known:
        raise InvalidError(f"{kind} {ident!r} does not exist", pointer=f"{ptr}/0/id")
    return trigger


def _temporary_ids(actions: list[Any]) -> list[str]:
    ids: list[str] = []
    for k, raw in enumerate(actions):
        ptr = f"{DEFINITION}/actions/{k}"
        if not isinstance(raw, dict):
            raise InvalidError("each action must be an object", pointer=ptr)
        if raw.get("id") is not None:
            raise InvalidError("id is not allowed on create; use temporary_id", pointer=f"{ptr}/id")
        temp = raw.get("temporary_id")
        if not isinstance(temp, str) or not temp:
            raise InvalidError(
                "each new action needs a temporary_id", pointer=f"{ptr}/temporary_id"
            )
        if temp in ids:
            raise InvalidError(
                f"temporary_id {temp!r} is used twice", pointer=f"{ptr}/temporary_id"
            )
        ids.append(temp)
    return ids


def check_action(ctx: Context, raw: dict[str, Any], ptr: str, known_ids: list[str]) -> None:
    """``raw`` is a well-formed action whose links name actions in ``known_ids``."""
    kind = raw.get("type")
    if kind not in ACTION_TYPES:
        raise InvalidError(f"unknown action type {kind!r}", pointer=f"{ptr}/type")
    links = raw.get("links")
    if links is not None:
        if not isinstance(links, dict):
            raise InvalidError("links must be an object", pointer=f"{ptr}/links")
        for name in LINK_NAMES:
            target = links.get(name)
            if target is not None and target not in known_ids:
                raise InvalidError(
                    f"links.{name} {target!r} is not an action of this flow",
                    pointer=f"{ptr}/links/{name}",
                )
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidError("data must be an object", pointer=f"{ptr}/data")
    data = data or {}
    status = data.get("status")
    if status is not None and status not in ACTION_STATUSES:
        raise InvalidError(
            f"status must be one of {', '.join(ACTION_STATUSES)}", pointer=f"{ptr}/data/status"
        )
    if kind == "time-delay":
        if data.get("unit", "days") not in DELAY_UNITS:
            raise InvalidError(
                f"unit must be one of {', '.join(DELAY_UNITS)}", pointer=f"{ptr}/data/unit"
            )
        value = data.get("value")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidError("value must be a non-negative integer", pointer=f"{ptr}/data/value")
    if kind == "send-email":
        message = data.get("message")
        if message is not None and not isinstance(message, dict):
            raise InvalidError("message must be an object", pointer=f"{ptr}/data/message")
        template_id = (message or {}).get("template_id")
        if template_id is not None and template_id not in templates_of(ctx):
            raise InvalidError(
                f"template {template_id!r} does not exist",
                pointer=f"{ptr}/data/message/template_id",
            )
