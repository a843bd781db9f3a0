"""Campaign and message records, their statuses, and what the campaign modules share.

The campaigns backend (``campaigns``) and its messages' (``campaign_messages``) serve
the API over these records; the sender (``campaign_sending``) delivers them on the
simulated clock; ``campaign_engagement`` decides who opens, clicks and buys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from kbridge.emulator.backend.models import ProfileRecord
    from kbridge.emulator.backend.store import Store

__all__ = [
    "CHANNELS",
    "DELIVERIES",
    "FOLLOWUP_KIND",
    "RECEIVED",
    "SEND_KIND",
    "CampaignRecord",
    "CampaignStatus",
    "MessageRecord",
    "SendJobStatus",
    "account_zone",
    "can_receive",
    "can_receive_sms",
    "copy_value",
    "message_context",
    "zone",
]

#: job kinds on the simulated clock: a campaign's send, and the next pending event's wake-up
SEND_KIND = "campaign-send"
FOLLOWUP_KIND = "campaign-followup"
CHANNELS = ("email", "sms", "mobile_push")
#: the event a delivery records, by channel
RECEIVED = {"email": "Received Email", "sms": "Received SMS", "mobile_push": "Received Push"}
DELIVERIES = frozenset(RECEIVED.values())


class CampaignStatus(StrEnum):
    """The values of a campaign's ``status`` the emulator reaches (Klaviyo's enum has more)."""

    DRAFT = "Draft"
    SCHEDULED = "Scheduled"
    SENDING = "Sending"
    SENT = "Sent"
    CANCELLED = "Cancelled"
    #: an email's sender is not verified
    MISCONFIGURED = "Cancelled: Misconfigured"
    NO_RECIPIENTS = "Cancelled: No Recipients"
    #: everyone got a message of the channel in the Smart Sending window
    SMART_SENDING = "Cancelled: Smart Sending"


class SendJobStatus(StrEnum):
    """A campaign-send-job's ``status``."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


@dataclass(slots=True, kw_only=True)
class MessageRecord:
    id: str
    campaign_id: str
    definition: dict[str, Any]
    created: float
    updated: float
    template_id: str | None = None
    #: the image the message shows (SMS/MMS and push), from update_image_for_campaign_message
    image_id: str | None = None

    @property
    def channel(self) -> str:
        return str(self.definition.get("channel", "email"))

    @property
    def content(self) -> dict[str, Any]:
        content = self.definition.get("content")
        return content if isinstance(content, dict) else {}


@dataclass(slots=True, kw_only=True)
class CampaignRecord:
    seq: int
    id: str
    name: str
    channel: str
    included: list[str]
    excluded: list[str]
    send_strategy: dict[str, Any]
    send_options: dict[str, Any]
    tracking_options: dict[str, Any] | None
    created: float
    updated: float
    message_ids: list[str] = field(default_factory=list)
    status: CampaignStatus = CampaignStatus.DRAFT
    archived: bool = False
    scheduled_at: float | None = None
    send_time: float | None = None
    #: campaign-send-job status, None before the first send job
    job_status: SendJobStatus | None = None
    #: id of the queued JobRecord that will send it (stale ids are ignored)
    job_record: str | None = None
    #: Received Email events still waiting for their (throttled/local) send time
    pending_sends: int = 0
    failure: str | None = None


def account_zone(store: Store) -> ZoneInfo:
    """The account's timezone (UTC when unset or unknown)."""
    return zone(str(store.account.get("timezone") or "UTC")) or ZoneInfo("UTC")


def zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def message_context(p: ProfileRecord) -> dict[str, Any]:
    """What a message renders against: the profile's fields at top level and as ``person``."""
    person = {
        "email": p.email,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "phone_number": p.phone_number,
        "organization": p.organization,
        **p.properties,
    }
    return {**person, "person": person}


def can_receive_sms(p: ProfileRecord) -> bool:
    return not p.deleted and bool(p.phone_number) and p.sms_consent == "SUBSCRIBED"


def can_receive(p: ProfileRecord) -> bool:
    return (
        not p.deleted
        and bool(p.email)
        and p.email_consent == "SUBSCRIBED"
        and not p.email_suppression
    )


def copy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value
