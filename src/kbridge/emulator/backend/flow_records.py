"""Flow, flow-action and flow-message records, their statuses, and a definition's vocabulary.

The flows backend (``flows``) serves the API over these records; ``flow_input``
checks the definitions a client sends; ``flow_running`` runs live flows on the
simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTION_STATUSES",
    "ACTION_TYPES",
    "DELAY_UNITS",
    "FLOW_STATUSES",
    "LINK_NAMES",
    "RECEIVED_EMAIL",
    "TRIGGER_TYPES",
    "ActionRecord",
    "ActionStatus",
    "FlowMessageRecord",
    "FlowRecord",
    "FlowStatus",
]

#: the event a flow email's delivery records
RECEIVED_EMAIL = "Received Email"


class FlowStatus(StrEnum):
    """A flow's ``status``; ``PATCH /api/flows/{id}`` moves it (and every action) between them."""

    DRAFT = "draft"
    MANUAL = "manual"
    LIVE = "live"


class ActionStatus(StrEnum):
    """A flow action's ``status`` (``disabled`` is an action's own: a flow has no such state)."""

    DISABLED = "disabled"
    DRAFT = "draft"
    LIVE = "live"
    MANUAL = "manual"


#: the values as tuples: on Python 3.11 ``value in SomeEnum`` raises for a plain string
FLOW_STATUSES: tuple[str, ...] = tuple(FlowStatus)
ACTION_STATUSES: tuple[str, ...] = tuple(ActionStatus)
#: the trigger types the emulator runs, and the ``trigger_type`` each shows
TRIGGER_TYPES = {"metric": "Metric", "list": "Added to List"}
#: Klaviyo's action types; the emulator stores them all and runs delays and emails
ACTION_TYPES = frozenset(
    {
        "send-email",
        "send-sms",
        "send-mobile-push",
        "send-whatsapp",
        "send-webhook",
        "send-internal-alert",
        "time-delay",
        "conditional-split",
        "trigger-split",
        "action-output-split",
        "multi-branch-split",
        "ab-test",
        "content-experiment",
        "update-profile",
        "list-update",
        "target-date",
        "countdown-delay",
        "back-in-stock-delay",
        "internal-service",
        "code",
    }
)
#: a time-delay's unit in seconds
DELAY_UNITS = {"minutes": 60.0, "hours": 3600.0, "days": 86400.0}
LINK_NAMES = ("next", "next_if_true", "next_if_false")


@dataclass(slots=True, kw_only=True)
class FlowRecord:
    seq: int
    id: str
    name: str
    created: float
    updated: float
    trigger: dict[str, Any]
    definition: dict[str, Any] = field(default_factory=dict)
    action_ids: list[str] = field(default_factory=list)
    status: FlowStatus = FlowStatus.DRAFT
    archived: bool = False
    #: when the flow last became live (entries before it do not count)
    live_since: float | None = None
    #: profile seq -> when it last entered
    entered: dict[int, float] = field(default_factory=dict)

    @property
    def trigger_type(self) -> str:
        return TRIGGER_TYPES.get(str(self.trigger.get("type")), "Unconfigured")


@dataclass(slots=True, kw_only=True)
class ActionRecord:
    seq: int
    id: str
    flow_id: str
    type: str
    created: float
    updated: float
    #: the action's definition with real ids (``links`` point at real action ids)
    definition: dict[str, Any]
    status: ActionStatus = ActionStatus.DRAFT
    message_ids: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class FlowMessageRecord:
    seq: int
    id: str
    flow_id: str
    action_id: str
    name: str
    created: float
    updated: float
    definition: dict[str, Any]
    channel: str = "email"
