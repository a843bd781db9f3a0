"""The generated account's campaign history: its 48 "Weekly Edit" campaigns as sent ones.

The generator made their Received, Opened and Clicked Email events (each carries its
campaign in ``aux``); loading them as sent campaigns, first sent at their first Received
Email, lets reports over old events name real campaigns and messages.
"""

from __future__ import annotations

from kbridge.emulator.backend.campaign_input import default_tracking
from kbridge.emulator.backend.campaign_records import (
    CampaignRecord,
    CampaignStatus,
    MessageRecord,
    SendJobStatus,
)
from kbridge.emulator.backend.ids import base62_id, iso, ulid
from kbridge.emulator.backend.store import Store
from kbridge.emulator.backend.templates import TemplateRecord
from kbridge.emulator.backend.vocabulary import CATEGORIES, HISTORIC_CAMPAIGNS, MESSAGE_SALT

__all__ = ["History", "historic_campaigns"]

_HISTORY_HTML = (
    "<html><body><h1>This week at Northwind</h1><p>Hi {{ first_name|default:'there' }},</p>"
    "<p>New arrivals are in.</p></body></html>"
)


class History:
    """The historic campaigns, their messages and the template they share."""

    def __init__(self) -> None:
        self.template: TemplateRecord | None = None
        self.campaigns: list[CampaignRecord] = []
        self.messages: list[MessageRecord] = []


def historic_campaigns(store: Store) -> History:
    """The generator's campaigns found in ``store``'s generated events."""
    out = History()
    ev = store.events
    received = store.metric_by_name.get("Received Email")
    first: dict[int, float] = {}
    if received is not None:
        for i in store.events_by_metric.get(received.index, ()):
            if i < ev.generated:
                k = ev.aux[i] % HISTORIC_CAMPAIGNS
                if k not in first:
                    first[k] = ev.ts[i]
                    if len(first) == HISTORIC_CAMPAIGNS:
                        break
    sender = store.account.get("contact_information", {})
    lists = sorted(store.lists.values(), key=lambda lst: lst.seq)
    audience = [lists[0].id] if lists else []
    template: str | None = None
    if first:
        made = min(first.values()) - 86400
        t = TemplateRecord(
            seq=-1,
            id=base62_id(store.seed, 8000),
            name="Weekly Edit",
            editor_type="CODE",
            html=_HISTORY_HTML,
            text=None,
            amp=None,
            created=made,
            updated=made,
        )
        out.template = t
        template = t.id
    for k in sorted(first):
        ts = first[k]
        cid = ulid(ts - 86400, store.seed, 9000 + k)
        mid = base62_id(store.seed, MESSAGE_SALT + k)
        c = CampaignRecord(
            seq=k - HISTORIC_CAMPAIGNS,
            id=cid,
            name=f"Weekly Edit #{k + 1}",
            channel="email",
            included=list(audience),
            excluded=[],
            send_strategy={
                "method": "static",
                "datetime": iso(ts),
                "options": {"is_local": False},
            },
            send_options={"use_smart_sending": True},
            tracking_options=default_tracking(),
            created=ts - 86400,
            updated=ts,
            message_ids=[mid],
            status=CampaignStatus.SENT,
            scheduled_at=ts - 3600,
            send_time=ts,
            job_status=SendJobStatus.COMPLETE,
        )
        definition = {
            "channel": "email",
            "label": c.name,
            "content": {
                "subject": f"New in {CATEGORIES[k % len(CATEGORIES)]}",
                "preview_text": None,
                "from_email": sender.get("default_sender_email"),
                "from_label": sender.get("default_sender_name"),
            },
        }
        out.campaigns.append(c)
        out.messages.append(
            MessageRecord(
                id=mid,
                campaign_id=cid,
                definition=definition,
                created=c.created,
                updated=c.created,
                template_id=template,
            )
        )
    return out
