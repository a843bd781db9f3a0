"""Campaigns, their messages and send jobs, sent on the simulated clock.

A campaign is created in ``Draft``. ``POST /api/campaign-send-jobs`` moves it
to ``Scheduled`` (a future send time) or ``Sending`` and queues a job on the
simulated clock; ``PATCH`` with ``cancel`` ends it (``Cancelled``), with
``revert`` puts a scheduled campaign back to ``Draft``. When the clock
reaches the send time the campaign sends: every audience profile (included
lists and segments minus excluded ones) with an email address, SUBSCRIBED
email consent and no suppression gets a Received Email event and an outbox
entry; opens, clicks and orders follow at later simulated times from the
account's behavioural model (each profile's hidden engagement and purchase
rates, see ``datagen``), deterministic per seed. Events are stored only once
the clock passes their time, so a client never sees the future.

SMS campaigns reach members with a phone number and SMS consent SUBSCRIBED
(Received SMS, no follow-ups); the emulator keeps no push tokens. Smart
Sending (on by default) skips whoever got a message on the channel in the
last 16 hours.

This module serves the campaign and send-job operations; the records and
statuses are in ``campaign_records``, the message operations in
``campaign_messages``, the delivery in ``campaign_sending`` and the opens,
clicks and orders in ``campaign_engagement``.

Failures reported the way Klaviyo's status enum allows (the exact wording
for an unverified sender is not documented; see docs/emulator.md):
an unverified ``from_email`` → ``Cancelled: Misconfigured``; no eligible
recipient → ``Cancelled: No Recipients``; everyone skipped by Smart Sending →
``Cancelled: Smart Sending``. All leave the send job ``cancelled``.

The account's generated history (48 "Weekly Edit" campaigns whose Received /
Opened / Clicked Email events the generator made) is loaded as sent
campaigns, so reports over old events name real campaigns.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.campaign_engagement import Engagement
from kbridge.emulator.backend.campaign_history import historic_campaigns
from kbridge.emulator.backend.campaign_input import (
    PTR,
    parse_definition,
    parse_name,
    parse_send_options,
    parse_strategy,
    parse_tracking,
)
from kbridge.emulator.backend.campaign_records import (
    FOLLOWUP_KIND,
    SEND_KIND,
    CampaignRecord,
    CampaignStatus,
    MessageRecord,
    SendJobStatus,
    account_zone,
    copy_value,
)
from kbridge.emulator.backend.campaign_sending import CampaignSender
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    include_tags,
    not_found,
    page_of,
    required_jobs,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import JobStatus
from kbridge.emulator.backend.outbox import Outbox
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.templates import (
    TemplateRecord,
    templates_of,
)
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["CampaignRecord", "CampaignsBackend", "MessageRecord", "campaigns_of", "outbox_of"]

#: smart send time: Klaviyo picks the hour; the emulator sends at 10:00 account time
SMART_SEND_HOUR = 10
_SENDABLE = (CampaignStatus.DRAFT,)


def outbox_of(ctx: Context) -> Outbox:
    """The account's outbox; the default sender is verified when it is first made."""
    if ctx.outbox is None:
        box = Outbox()
        sender = ctx.store.account.get("contact_information", {}).get("default_sender_email")
        if sender:
            box.verify(sender)
        ctx.outbox = box
    return ctx.outbox


def campaigns_of(ctx: Context) -> CampaignsBackend | None:
    """The campaigns backend of this account (reporting maps message ids through it)."""
    return ctx.campaigns


class CampaignsBackend(TagBackend):
    operations = frozenset(
        {
            "get_campaigns",
            "get_campaign",
            "create_campaign",
            "update_campaign",
            "delete_campaign",
            "send_campaign",
            "get_campaign_send_job",
            "cancel_campaign_send",
            "create_campaign_clone",
            "refresh_campaign_recipient_estimation",
            "get_campaign_recipient_estimation_job",
            "get_campaign_recipient_estimation",
        }
    )

    def __init__(self, ctx: Context, hidden: Sequence[Any] = ()) -> None:
        super().__init__(ctx)
        self.campaigns: dict[str, CampaignRecord] = {}
        self.messages: dict[str, MessageRecord] = {}
        self.templates = templates_of(ctx)
        self.outbox = outbox_of(ctx)
        #: campaign id -> (when the estimate was requested, recipients then)
        self.estimates: dict[str, tuple[float, int]] = {}
        ctx.campaigns = self
        self._jobs = jobs = required_jobs(ctx)
        self.sender = CampaignSender(
            ctx,
            campaigns=self.campaigns,
            messages=self.messages,
            templates=self.templates,
            outbox=self.outbox,
            jobs=jobs,
            engagement=Engagement(ctx.store.seed, hidden),
        )
        jobs.handlers[SEND_KIND] = self.sender.run_send
        jobs.handlers[FOLLOWUP_KIND] = self.sender.wake
        self._load_history()

    def _load_history(self) -> None:
        history = historic_campaigns(self.store)
        if history.template is not None:
            self.templates[history.template.id] = history.template
        for m in history.messages:
            self.messages[m.id] = m
        for c in history.campaigns:
            self.campaigns[c.id] = c
            self.estimates[c.id] = (c.scheduled_at or c.created, len(self.sender.recipients(c)))

    # -- lookups ---------------------------------------------------------------------

    def campaign(self, cid: str) -> CampaignRecord:
        """The campaign with this id, or a 404."""
        return existing(self.campaigns, "campaign", cid)

    def message_campaign(self, message_id: str) -> tuple[CampaignRecord, MessageRecord] | None:
        """The campaign and message a ``$message`` property names (reports use it)."""
        m = self.messages.get(message_id)
        if m is None:
            return None
        c = self.campaigns.get(m.campaign_id)
        return None if c is None else (c, m)

    # -- serialisation -----------------------------------------------------------------

    def campaign_resource(self, c: CampaignRecord) -> Resource:
        attrs: dict[str, Any] = {
            "name": c.name,
            "status": str(c.status),
            "archived": c.archived,
            "audiences": {"included": list(c.included), "excluded": list(c.excluded)},
            "send_options": dict(c.send_options),
            "tracking_options": None if c.tracking_options is None else dict(c.tracking_options),
            "send_strategy": dict(c.send_strategy),
            "created_at": iso(c.created),
            "scheduled_at": iso(c.scheduled_at),
            "updated_at": iso(c.updated),
            "send_time": iso(c.send_time),
        }
        rels: dict[str, Any] = {
            "campaign-messages": [("campaign-message", m) for m in c.message_ids]
        }
        return Resource("campaign", c.id, attrs, relationships=rels, links_only=("tags",))

    def message_resource(self, m: MessageRecord) -> Resource:
        c = self.campaigns.get(m.campaign_id)
        attrs: dict[str, Any] = {
            "definition": copy_value(m.definition),
            "send_times": self._send_times(c),
            "created_at": iso(m.created),
            "updated_at": iso(m.updated),
        }
        rels: dict[str, Any] = {"campaign": ("campaign", m.campaign_id)}
        links_only: tuple[str, ...] = ()
        if m.template_id is not None:
            rels["template"] = ("template", m.template_id)
        else:
            links_only += ("template",)
        if m.image_id is not None:
            rels["image"] = ("image", m.image_id)
        else:
            links_only += ("image",)
        return Resource("campaign-message", m.id, attrs, relationships=rels, links_only=links_only)

    @staticmethod
    def _send_times(c: CampaignRecord | None) -> list[dict[str, Any]] | None:
        if c is None or c.send_time is None:
            return None
        local = bool((c.send_strategy.get("options") or {}).get("is_local"))
        return [{"datetime": iso(c.send_time), "is_local": local}]

    def _job_resource(self, c: CampaignRecord) -> Resource:
        return Resource(
            "campaign-send-job", c.id, {"status": str(c.job_status or SendJobStatus.QUEUED)}
        )

    # -- campaigns ---------------------------------------------------------------------

    def get_campaigns(self, call: Call) -> Outcome:
        channel = call.query.condition("messages.channel", "equals")
        # 2026-10-15 ("omnicampaigns") lists every channel; the spec's revision needs one
        if channel is None and call.revision < "2026-10-15":
            raise InvalidError(
                "A channel filter is required: filter=equals(messages.channel,'email') "
                "(or 'sms', 'mobile_push').",
                parameter="filter",
            )
        by_seq = {c.seq: c for c in self.campaigns.values()}
        sort = call.query.sort.field if call.query.sort is not None else "created_at"
        attr = {"created_at": "created", "updated_at": "updated", "scheduled_at": "scheduled_at"}

        def key(s: int) -> tuple[Any, ...]:
            value = getattr(by_seq[s], attr.get(sort, sort))
            return (value is None, value or 0, s)

        getters = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "status": lambda s: str(by_seq[s].status),
            "archived": lambda s: by_seq[s].archived,
            "created_at": lambda s: by_seq[s].created,
            "updated_at": lambda s: by_seq[s].updated,
            "scheduled_at": lambda s: by_seq[s].scheduled_at,
            "messages.channel": lambda s: by_seq[s].channel,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        items = [by_seq[s] for s in page.items]
        included: list[Resource] = []
        if "campaign-messages" in call.query.include:
            included = [
                self.message_resource(self.messages[m])
                for c in items
                for m in c.message_ids
                if m in self.messages
            ]
        resources = [self.campaign_resource(c) for c in items]
        included += include_tags(self.ctx, resources, call.query)
        return Outcome(
            data=Page(
                items=resources,
                next_cursor=page.next_cursor,
                prev_cursor=page.prev_cursor,
            ),
            included=included,
        )

    def get_campaign(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        included: list[Resource] = []
        if "campaign-messages" in call.query.include:
            included = [self.message_resource(self.messages[m]) for m in c.message_ids]
        found = self.campaign_resource(c)
        included += include_tags(self.ctx, [found], call.query)
        return Outcome(data=found, included=included)

    def create_campaign(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign")
        attrs = attributes_of(data)
        name = parse_name(attrs)
        included, excluded = self._audiences(attrs.get("audiences"))
        raw_messages = attrs.get("campaign-messages")
        rows = raw_messages.get("data") if isinstance(raw_messages, dict) else None
        if not isinstance(rows, list) or not rows:
            raise InvalidError(
                "campaign-messages.data must list at least one campaign-message",
                pointer=f"{PTR}/campaign-messages/data",
            )
        definitions = [self._definition_of(row, k) for k, row in enumerate(rows)]
        channels = {d["channel"] for d in definitions}
        if len(channels) > 1:
            raise InvalidError(
                "all messages of a campaign must use the same channel",
                pointer=f"{PTR}/campaign-messages/data",
            )
        now = self.ctx.now()
        strategy = parse_strategy(attrs.get("send_strategy") or {"method": "immediate"})
        c = CampaignRecord(
            seq=self.store.next_seq(),
            id=self.store.next_ulid(now),
            name=name,
            channel=definitions[0]["channel"],
            included=included,
            excluded=excluded,
            send_strategy=strategy,
            send_options=parse_send_options(attrs.get("send_options")),
            tracking_options=parse_tracking(attrs.get("tracking_options")),
            created=now,
            updated=now,
        )
        for definition in definitions:
            m = MessageRecord(
                id=self.store.next_ulid(now),
                campaign_id=c.id,
                definition=definition,
                created=now,
                updated=now,
            )
            self.messages[m.id] = m
            c.message_ids.append(m.id)
        self.campaigns[c.id] = c
        return Outcome(data=self.campaign_resource(c), status=201)

    def update_campaign(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        data = data_of(call.body, "campaign")
        if data.get("id") != c.id:
            raise InvalidError("data.id must match the campaign id in the path", pointer="/data/id")
        if c.status != CampaignStatus.DRAFT:
            raise InvalidError(
                f"only a Draft campaign can be updated (this one is {c.status!r})", pointer="/data"
            )
        attrs = attributes_of(data)
        if "name" in attrs:
            c.name = parse_name(attrs)
        if "audiences" in attrs:
            c.included, c.excluded = self._audiences(attrs["audiences"])
        if "send_strategy" in attrs:
            c.send_strategy = parse_strategy(attrs["send_strategy"])
        if "send_options" in attrs:
            c.send_options = parse_send_options(attrs["send_options"])
        if "tracking_options" in attrs:
            c.tracking_options = parse_tracking(attrs["tracking_options"])
        c.updated = self.ctx.now()
        return Outcome(data=self.campaign_resource(c))

    def delete_campaign(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        if c.status == CampaignStatus.SENDING:
            raise InvalidError(
                "a campaign that is sending cannot be deleted; cancel it first", parameter="id"
            )
        for mid in c.message_ids:
            self.messages.pop(mid, None)
        del self.campaigns[c.id]
        c.job_record = None
        return Outcome(status=204)

    def _audiences(self, value: Any) -> tuple[list[str], list[str]]:
        ptr = f"{PTR}/audiences"
        if not isinstance(value, dict) or not isinstance(value.get("included"), list):
            raise InvalidError(
                "audiences.included must be a list of list or segment ids",
                pointer=f"{ptr}/included",
            )
        excluded = value.get("excluded") or []
        if not isinstance(excluded, list):
            raise InvalidError("audiences.excluded must be a list", pointer=f"{ptr}/excluded")
        out: list[list[str]] = []
        for name, ids in (("included", value["included"]), ("excluded", excluded)):
            for k, gid in enumerate(ids):
                if gid not in self.store.lists and gid not in self.store.segments:
                    raise InvalidError(
                        f"{gid!r} is neither a list nor a segment of this account",
                        pointer=f"{ptr}/{name}/{k}",
                    )
            out.append([str(g) for g in ids])
        return out[0], out[1]

    def _definition_of(self, row: Any, k: int) -> dict[str, Any]:
        ptr = f"{PTR}/campaign-messages/data/{k}"
        if not isinstance(row, dict) or row.get("type") != "campaign-message":
            raise InvalidError("expected a campaign-message resource", pointer=f"{ptr}/type")
        definition = attributes_of(row, f"{ptr}/attributes").get("definition")
        return parse_definition(definition, f"{ptr}/attributes/definition")

    # -- send jobs ---------------------------------------------------------------------------

    def send_campaign(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-send-job")
        c = self.campaign(str(data.get("id") or ""))
        if c.status not in _SENDABLE:
            raise InvalidError(
                f"campaign {c.id!r} is {c.status!r}; only a Draft campaign can be sent",
                pointer="/data/id",
            )
        now = self.ctx.now()
        at = max(now, self._send_at(c))
        job = self._jobs.schedule(SEND_KIND, c.id, total=0)
        job.due = at
        c.job_record, c.job_status = job.id, SendJobStatus.QUEUED
        c.scheduled_at, c.send_time, c.failure = now, at, None
        c.status = CampaignStatus.SCHEDULED if at > now else CampaignStatus.SENDING
        c.updated = now
        return Outcome(data=self._job_resource(c), status=202)

    def get_campaign_send_job(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        if c.job_status is None:
            raise not_found("campaign send job", c.id)
        return Outcome(data=self._job_resource(c))

    def cancel_campaign_send(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        data = data_of(call.body, "campaign-send-job")
        if data.get("id") != c.id:
            raise InvalidError("data.id must match the send job id in the path", pointer="/data/id")
        action = attributes_of(data).get("action")
        if action not in ("cancel", "revert"):
            raise InvalidError("action must be 'cancel' or 'revert'", pointer=f"{PTR}/action")
        if c.job_status not in (SendJobStatus.QUEUED, SendJobStatus.PROCESSING):
            raise InvalidError(
                f"campaign {c.id!r} has no send job in progress (status {c.status!r})",
                pointer="/data/id",
            )
        if action == "revert" and c.job_status != SendJobStatus.QUEUED:
            raise InvalidError(
                "only a scheduled campaign can be reverted to Draft; a sending "
                "one can only be cancelled",
                pointer=f"{PTR}/action",
            )
        self.sender.drop_pending(c.id)
        c.job_record = None
        now = self.ctx.now()
        c.updated = now
        if action == "revert":
            c.status, c.job_status, c.send_time, c.scheduled_at = (
                CampaignStatus.DRAFT,
                None,
                None,
                None,
            )
        else:
            c.status, c.job_status = CampaignStatus.CANCELLED, SendJobStatus.CANCELLED
        return Outcome(status=204)

    def copy_template(self, source: TemplateRecord, now: float) -> TemplateRecord:
        """A copy of ``source`` for one message: Klaviyo copies, later edits stay apart."""
        copy = TemplateRecord(
            seq=self.store.next_seq(),
            id=self.store.next_short_id(47),
            name=source.name,
            editor_type=source.editor_type,
            html=source.html,
            text=source.text,
            amp=source.amp,
            created=now,
            updated=now,
            definition=copy_value(source.definition) if source.definition else None,
        )
        self.templates[copy.id] = copy
        return copy

    # -- clone and recipient estimates -----------------------------------------------------

    def create_campaign_clone(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign")
        source = self.campaign(str(data.get("id") or ""))
        attrs = data.get("attributes") or {}
        name = attrs.get("new_name") if isinstance(attrs, dict) else None
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidError("new_name must be a non-empty string", pointer=f"{PTR}/new_name")
        now = self.ctx.now()
        c = CampaignRecord(
            seq=self.store.next_seq(),
            id=self.store.next_ulid(now),
            name=name or f"{source.name} (Clone)",
            channel=source.channel,
            included=list(source.included),
            excluded=list(source.excluded),
            send_strategy=copy_value(source.send_strategy),
            send_options=dict(source.send_options),
            tracking_options=copy_value(source.tracking_options),
            created=now,
            updated=now,
        )
        for mid in source.message_ids:
            old = self.messages[mid]
            m = MessageRecord(
                id=self.store.next_ulid(now),
                campaign_id=c.id,
                definition=copy_value(old.definition),
                created=now,
                updated=now,
            )
            template = self.templates.get(old.template_id or "")
            if template is not None:
                m.template_id = self.copy_template(template, now).id
            self.messages[m.id] = m
            c.message_ids.append(m.id)
        self.campaigns[c.id] = c
        return Outcome(data=self.campaign_resource(c), status=201)

    def refresh_campaign_recipient_estimation(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-recipient-estimation-job")
        c = self.campaign(str(data.get("id") or ""))
        self.estimates[c.id] = (self.ctx.now(), len(self.sender.recipients(c)))
        return Outcome(data=self._estimate_job(c.id), status=202)

    def _estimate_job(self, cid: str) -> Resource:
        """Queued until ``config.job_delay_seconds`` have passed, like the other jobs."""
        requested = self.estimates[cid][0]
        done = self.ctx.now() >= requested + max(0.0, self.ctx.config.job_delay_seconds)
        status = JobStatus.COMPLETE if done else JobStatus.QUEUED
        return Resource("campaign-recipient-estimation-job", cid, {"status": status})

    def get_campaign_recipient_estimation_job(self, call: Call) -> Outcome:
        c = self.campaign(self.path_id(call))
        if c.id not in self.estimates:
            raise not_found("campaign recipient estimation job", c.id)
        return Outcome(data=self._estimate_job(c.id))

    def get_campaign_recipient_estimation(self, call: Call) -> Outcome:
        """The count as of the last refresh (the audience now, if never refreshed)."""
        c = self.campaign(self.path_id(call))
        count = (
            self.estimates[c.id][1] if c.id in self.estimates else len(self.sender.recipients(c))
        )
        attrs = {"estimated_recipient_count": count}
        return Outcome(data=Resource("campaign-recipient-estimation", c.id, attrs))

    def _send_at(self, c: CampaignRecord) -> float:
        s = c.send_strategy
        method = s.get("method")
        if method in ("static", "throttled"):
            return timestamp_attr(s.get("datetime"), f"{PTR}/send_strategy/datetime")
        if method == "smart_send_time":
            day = date.fromisoformat(str(s.get("date")))
            local = datetime.combine(day, time(SMART_SEND_HOUR), account_zone(self.store))
            return local.timestamp()
        return self.ctx.now()
