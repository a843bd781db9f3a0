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

import heapq
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    include_tags,
    not_found,
    page_of,
    relationship_ids,
    required_jobs,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import base62_id, iso, mix64, ulid, unit_float
from kbridge.emulator.backend.models import JobRecord, ProfileRecord
from kbridge.emulator.backend.outbox import Outbox, SentMessage
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.templates import (
    TemplateRecord,
    render,
    template_resource,
    templates_of,
)
from kbridge.emulator.backend.vocabulary import (
    CATEGORIES,
    HISTORIC_CAMPAIGNS,
    MESSAGE_SALT,
    PRODUCTS,
)
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["CampaignRecord", "CampaignsBackend", "MessageRecord", "campaigns_of", "outbox_of"]

SEND_KIND = "campaign-send"
FOLLOWUP_KIND = "campaign-followup"
CHANNELS = ("email", "sms", "mobile_push")
THROTTLE_PERCENTAGES = (1, 2, 5, 10, 11, 13, 14, 17, 20, 25, 33, 50)
#: the generator's campaign count and message-id salt (datagen's ``_CAMPAIGNS``/``_message_id``)
#: Smart Sending skips whoever got a message on the channel this recently (Klaviyo's email default)
SMART_SENDING_HOURS = 16
#: smart send time: Klaviyo picks the hour; the emulator sends at 10:00 account time
SMART_SEND_HOUR = 10
_PTR = "/data/attributes"
_SENDABLE = ("Draft",)


@dataclass(slots=True)
class MessageRecord:
    id: str
    campaign_id: str
    definition: dict[str, Any]
    created: float
    updated: float
    template_id: str | None = None

    @property
    def channel(self) -> str:
        return str(self.definition.get("channel", "email"))

    @property
    def content(self) -> dict[str, Any]:
        content = self.definition.get("content")
        return content if isinstance(content, dict) else {}


@dataclass(slots=True)
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
    status: str = "Draft"
    archived: bool = False
    scheduled_at: float | None = None
    send_time: float | None = None
    #: campaign-send-job status, None before the first send job
    job_status: str | None = None
    #: id of the queued JobRecord that will send it (stale ids are ignored)
    job_record: str | None = None
    #: Received Email events still waiting for their (throttled/local) send time
    pending_sends: int = 0
    failure: str | None = None


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


@dataclass(order=True, slots=True)
class _Pending:
    """An event due at ``ts``: stored (and, for Received Email, delivered) once the clock passes."""

    ts: float
    order: int
    metric: str = field(compare=False)
    profile: int = field(compare=False)
    campaign_id: str = field(compare=False)
    message_id: str = field(compare=False)
    value: float = field(compare=False, default=0.0)
    properties: dict[str, Any] = field(compare=False, default_factory=dict)
    unique_id: str | None = field(compare=False, default=None)


class CampaignsBackend(TagBackend):
    operations = frozenset(
        {
            "get_campaigns",
            "get_campaign",
            "create_campaign",
            "update_campaign",
            "delete_campaign",
            "get_messages_for_campaign",
            "get_message_ids_for_campaign",
            "get_campaign_message",
            "update_campaign_message",
            "assign_template_to_campaign_message",
            "get_campaign_for_campaign_message",
            "get_campaign_id_for_campaign_message",
            "get_template_for_campaign_message",
            "get_template_id_for_campaign_message",
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
        self.hidden = hidden
        self.campaigns: dict[str, CampaignRecord] = {}
        self.messages: dict[str, MessageRecord] = {}
        self.templates = templates_of(ctx)
        self.outbox = outbox_of(ctx)
        self._pending: list[_Pending] = []
        self._order = 0
        self._followup_due: float | None = None
        #: campaign id -> (when the estimate was requested, recipients then)
        self.estimates: dict[str, tuple[float, int]] = {}
        ctx.campaigns = self
        self._jobs = jobs = required_jobs(ctx)
        jobs.handlers[SEND_KIND] = self._run_send
        jobs.handlers[FOLLOWUP_KIND] = self._wake
        self._load_history()

    # -- history -------------------------------------------------------------------

    def _load_history(self) -> None:
        """The generator's 48 campaigns as sent campaigns (first send = first Received Email)."""
        store = self.store
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
            t = TemplateRecord(-1, base62_id(store.seed, 8000), "Weekly Edit", "CODE",
                               _HISTORY_HTML, None, None, made, made)  # fmt: skip
            self.templates[t.id] = template_ref = t
            template = template_ref.id
        for k in sorted(first):
            ts = first[k]
            cid = ulid(ts - 86400, store.seed, 9000 + k)
            mid = base62_id(store.seed, MESSAGE_SALT + k)
            c = CampaignRecord(
                k - HISTORIC_CAMPAIGNS, cid, f"Weekly Edit #{k + 1}", "email", list(audience), [],
                {"method": "static", "datetime": iso(ts), "options": {"is_local": False}},
                {"use_smart_sending": True}, _default_tracking(), ts - 86400, ts,
                [mid], "Sent", False, ts - 3600, ts, "complete",
            )  # fmt: skip
            definition = {"channel": "email", "label": c.name, "content": {
                "subject": f"New in {CATEGORIES[k % len(CATEGORIES)]}", "preview_text": None,
                "from_email": sender.get("default_sender_email"),
                "from_label": sender.get("default_sender_name")}}  # fmt: skip
            self.campaigns[cid] = c
            self.messages[mid] = MessageRecord(mid, cid, definition, c.created, c.created, template)
            self.estimates[cid] = (c.scheduled_at or ts, len(self._recipients(c)))

    # -- lookups ---------------------------------------------------------------------

    def _campaign(self, cid: str) -> CampaignRecord:
        c = self.campaigns.get(cid)
        if c is None:
            raise not_found("campaign", cid)
        return c

    def _message(self, mid: str) -> MessageRecord:
        m = self.messages.get(mid)
        if m is None:
            raise not_found("campaign message", mid)
        return m

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
            "status": c.status,
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
            "definition": _copy(m.definition),
            "send_times": self._send_times(c),
            "created_at": iso(m.created),
            "updated_at": iso(m.updated),
        }
        rels: dict[str, Any] = {"campaign": ("campaign", m.campaign_id)}
        links_only: tuple[str, ...] = ("image",)
        if m.template_id is not None:
            rels["template"] = ("template", m.template_id)
        else:
            links_only = ("template", "image")
        return Resource("campaign-message", m.id, attrs, relationships=rels, links_only=links_only)

    @staticmethod
    def _send_times(c: CampaignRecord | None) -> list[dict[str, Any]] | None:
        if c is None or c.send_time is None:
            return None
        local = bool((c.send_strategy.get("options") or {}).get("is_local"))
        return [{"datetime": iso(c.send_time), "is_local": local}]

    def _job_resource(self, c: CampaignRecord) -> Resource:
        return Resource("campaign-send-job", c.id, {"status": c.job_status or "queued"})

    def _message_includes(self, call: Call, messages: list[MessageRecord]) -> list[Resource]:
        out: list[Resource] = []
        if "campaign" in call.query.include:
            for cid in dict.fromkeys(m.campaign_id for m in messages):
                if cid in self.campaigns:
                    out.append(self.campaign_resource(self.campaigns[cid]))
        if "template" in call.query.include:
            for tid in dict.fromkeys(m.template_id for m in messages if m.template_id):
                if tid in self.templates:
                    out.append(template_resource(self.templates[tid]))
        return out

    # -- campaigns ---------------------------------------------------------------------

    def get_campaigns(self, call: Call) -> Outcome:
        channel = call.query.condition("messages.channel", "equals")
        if channel is None:
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
            "status": lambda s: by_seq[s].status,
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
            included = [self.message_resource(self.messages[m]) for c in items
                        for m in c.message_ids if m in self.messages]  # fmt: skip
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
        c = self._campaign(self.path_id(call))
        included: list[Resource] = []
        if "campaign-messages" in call.query.include:
            included = [self.message_resource(self.messages[m]) for m in c.message_ids]
        found = self.campaign_resource(c)
        included += include_tags(self.ctx, [found], call.query)
        return Outcome(data=found, included=included)

    def create_campaign(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign")
        attrs = attributes_of(data)
        name = _name(attrs)
        included, excluded = self._audiences(attrs.get("audiences"))
        raw_messages = attrs.get("campaign-messages")
        rows = raw_messages.get("data") if isinstance(raw_messages, dict) else None
        if not isinstance(rows, list) or not rows:
            raise InvalidError("campaign-messages.data must list at least one campaign-message",
                               pointer=f"{_PTR}/campaign-messages/data")  # fmt: skip
        definitions = [self._definition_of(row, k) for k, row in enumerate(rows)]
        channels = {d["channel"] for d in definitions}
        if len(channels) > 1:
            raise InvalidError("all messages of a campaign must use the same channel",
                               pointer=f"{_PTR}/campaign-messages/data")  # fmt: skip
        now = self.ctx.now()
        strategy = _strategy(attrs.get("send_strategy") or {"method": "immediate"})
        c = CampaignRecord(
            self.store.next_seq(), self.store.next_ulid(now), name, definitions[0]["channel"],
            included, excluded, strategy, _send_options(attrs.get("send_options")),
            _tracking(attrs.get("tracking_options")), now, now,
        )  # fmt: skip
        for definition in definitions:
            m = MessageRecord(self.store.next_ulid(now), c.id, definition, now, now)
            self.messages[m.id] = m
            c.message_ids.append(m.id)
        self.campaigns[c.id] = c
        return Outcome(data=self.campaign_resource(c), status=201)

    def update_campaign(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        data = data_of(call.body, "campaign")
        if data.get("id") != c.id:
            raise InvalidError("data.id must match the campaign id in the path", pointer="/data/id")
        if c.status != "Draft":
            raise InvalidError(f"only a Draft campaign can be updated (this one is {c.status!r})",
                               pointer="/data")  # fmt: skip
        attrs = attributes_of(data)
        if "name" in attrs:
            c.name = _name(attrs)
        if "audiences" in attrs:
            c.included, c.excluded = self._audiences(attrs["audiences"])
        if "send_strategy" in attrs:
            c.send_strategy = _strategy(attrs["send_strategy"])
        if "send_options" in attrs:
            c.send_options = _send_options(attrs["send_options"])
        if "tracking_options" in attrs:
            c.tracking_options = _tracking(attrs["tracking_options"])
        c.updated = self.ctx.now()
        return Outcome(data=self.campaign_resource(c))

    def delete_campaign(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        if c.status == "Sending":
            raise InvalidError("a campaign that is sending cannot be deleted; cancel it first",
                               parameter="id")  # fmt: skip
        for mid in c.message_ids:
            self.messages.pop(mid, None)
        del self.campaigns[c.id]
        c.job_record = None
        return Outcome(status=204)

    def _audiences(self, value: Any) -> tuple[list[str], list[str]]:
        ptr = f"{_PTR}/audiences"
        if not isinstance(value, dict) or not isinstance(value.get("included"), list):
            raise InvalidError("audiences.included must be a list of list or segment ids",
                               pointer=f"{ptr}/included")  # fmt: skip
        excluded = value.get("excluded") or []
        if not isinstance(excluded, list):
            raise InvalidError("audiences.excluded must be a list", pointer=f"{ptr}/excluded")
        out: list[list[str]] = []
        for name, ids in (("included", value["included"]), ("excluded", excluded)):
            for k, gid in enumerate(ids):
                if gid not in self.store.lists and gid not in self.store.segments:
                    raise InvalidError(f"{gid!r} is neither a list nor a segment of this account",
                                       pointer=f"{ptr}/{name}/{k}")  # fmt: skip
            out.append([str(g) for g in ids])
        return out[0], out[1]

    def _definition_of(self, row: Any, k: int) -> dict[str, Any]:
        ptr = f"{_PTR}/campaign-messages/data/{k}"
        if not isinstance(row, dict) or row.get("type") != "campaign-message":
            raise InvalidError("expected a campaign-message resource", pointer=f"{ptr}/type")
        definition = attributes_of(row, f"{ptr}/attributes").get("definition")
        return _definition(definition, f"{ptr}/attributes/definition")

    # -- messages ------------------------------------------------------------------------

    def get_messages_for_campaign(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        messages = [self.messages[m] for m in c.message_ids]
        return Outcome(data=[self.message_resource(m) for m in messages],
                       included=self._message_includes(call, messages))  # fmt: skip

    def get_message_ids_for_campaign(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        return Outcome(data=[Resource("campaign-message", m, {}) for m in c.message_ids],
                       identifiers_only=True)  # fmt: skip

    def get_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        return Outcome(data=self.message_resource(m), included=self._message_includes(call, [m]))

    def update_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        data = data_of(call.body, "campaign-message")
        if data.get("id") != m.id:
            raise InvalidError("data.id must match the message id in the path", pointer="/data/id")
        self._editable(m)
        attrs = attributes_of(data)
        if "definition" in attrs:
            definition = _definition(attrs["definition"], f"{_PTR}/definition")
            if definition["channel"] != m.channel:
                raise InvalidError("a message's channel cannot change",
                                   pointer=f"{_PTR}/definition/channel")  # fmt: skip
            merged = _copy(m.definition)
            given = attrs["definition"].get("content") or {}
            known = _OLD_CONTENT if m.channel == "email" else tuple(given)
            content = {**m.content, **{k: v for k, v in given.items() if k in known}}
            merged.update(definition)
            merged["content"] = content
            m.definition = merged
        m.updated = self.ctx.now()
        return Outcome(data=self.message_resource(m))

    def _editable(self, m: MessageRecord) -> None:
        c = self.campaigns.get(m.campaign_id)
        if c is not None and c.status != "Draft":
            raise InvalidError(f"the campaign is {c.status!r}; only a Draft campaign's messages "
                               "can change", pointer="/data")  # fmt: skip

    def assign_template_to_campaign_message(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-message")
        m = self._message(str(data.get("id") or ""))
        self._editable(m)
        ids = relationship_ids(data, "template", "template", many=False)
        if not ids:
            raise InvalidError("relationships.template.data is required",
                               pointer="/data/relationships/template/data")  # fmt: skip
        source = self.templates.get(ids[0])
        if source is None:
            raise InvalidError(f"template {ids[0]!r} does not exist",
                               pointer="/data/relationships/template/data/id")  # fmt: skip
        now = self.ctx.now()
        # Klaviyo copies the template: later edits of the original do not change the message.
        m.template_id = self._copy_template(source, now).id
        m.updated = now
        # The spec answers with the message's older attribute shape (label/channel/content).
        res = self.message_resource(m)
        res.attributes = {
            "label": str(m.definition.get("label") or ""),
            "channel": m.channel,
            "content": {k: v for k, v in m.content.items() if k in _OLD_CONTENT},
            "send_times": res.attributes["send_times"],
            "created_at": iso(m.created),
            "updated_at": iso(m.updated),
        }
        return Outcome(data=res)

    def get_campaign_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        return Outcome(data=self.campaign_resource(self._campaign(m.campaign_id)))

    def get_campaign_id_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        return Outcome(data=Resource("campaign", m.campaign_id, {}), identifiers_only=True)

    def get_template_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        t = self.templates.get(m.template_id or "")
        if t is None:
            return Outcome(null_data=True)
        return Outcome(data=template_resource(t))

    def get_template_id_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        if m.template_id is None:
            return Outcome(null_data=True)
        return Outcome(data=Resource("template", m.template_id, {}), identifiers_only=True)

    # -- send jobs ---------------------------------------------------------------------------

    def send_campaign(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-send-job")
        c = self._campaign(str(data.get("id") or ""))
        if c.status not in _SENDABLE:
            raise InvalidError(f"campaign {c.id!r} is {c.status!r}; only a Draft campaign can be "
                               "sent", pointer="/data/id")  # fmt: skip
        now = self.ctx.now()
        at = max(now, self._send_at(c))
        job = self._jobs.schedule(SEND_KIND, c.id, total=0)
        job.due = at
        c.job_record, c.job_status = job.id, "queued"
        c.scheduled_at, c.send_time, c.failure = now, at, None
        c.status = "Scheduled" if at > now else "Sending"
        c.updated = now
        return Outcome(data=self._job_resource(c), status=202)

    def get_campaign_send_job(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        if c.job_status is None:
            raise not_found("campaign send job", c.id)
        return Outcome(data=self._job_resource(c))

    def cancel_campaign_send(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        data = data_of(call.body, "campaign-send-job")
        if data.get("id") != c.id:
            raise InvalidError("data.id must match the send job id in the path", pointer="/data/id")
        action = attributes_of(data).get("action")
        if action not in ("cancel", "revert"):
            raise InvalidError("action must be 'cancel' or 'revert'", pointer=f"{_PTR}/action")
        if c.job_status not in ("queued", "processing"):
            raise InvalidError(f"campaign {c.id!r} has no send job in progress (status "
                               f"{c.status!r})", pointer="/data/id")  # fmt: skip
        if action == "revert" and c.job_status != "queued":
            raise InvalidError("only a scheduled campaign can be reverted to Draft; a sending "
                               "one can only be cancelled", pointer=f"{_PTR}/action")  # fmt: skip
        self._drop_pending(c.id)
        c.job_record = None
        now = self.ctx.now()
        c.updated = now
        if action == "revert":
            c.status, c.job_status, c.send_time, c.scheduled_at = "Draft", None, None, None
        else:
            c.status, c.job_status = "Cancelled", "cancelled"
        return Outcome(status=204)

    def _copy_template(self, source: TemplateRecord, now: float) -> TemplateRecord:
        copy = TemplateRecord(self.store.next_seq(), self.store.next_short_id(47), source.name,
                              source.editor_type, source.html, source.text, source.amp, now, now,
                              _copy(source.definition) if source.definition else None)  # fmt: skip
        self.templates[copy.id] = copy
        return copy

    # -- clone and recipient estimates -----------------------------------------------------

    def create_campaign_clone(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign")
        source = self._campaign(str(data.get("id") or ""))
        attrs = data.get("attributes") or {}
        name = attrs.get("new_name") if isinstance(attrs, dict) else None
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidError("new_name must be a non-empty string",
                               pointer=f"{_PTR}/new_name")  # fmt: skip
        now = self.ctx.now()
        c = CampaignRecord(
            self.store.next_seq(), self.store.next_ulid(now), name or f"{source.name} (Clone)",
            source.channel, list(source.included), list(source.excluded),
            _copy(source.send_strategy), dict(source.send_options),
            _copy(source.tracking_options), now, now,
        )  # fmt: skip
        for mid in source.message_ids:
            old = self.messages[mid]
            m = MessageRecord(self.store.next_ulid(now), c.id, _copy(old.definition), now, now)
            template = self.templates.get(old.template_id or "")
            if template is not None:
                m.template_id = self._copy_template(template, now).id
            self.messages[m.id] = m
            c.message_ids.append(m.id)
        self.campaigns[c.id] = c
        return Outcome(data=self.campaign_resource(c), status=201)

    def refresh_campaign_recipient_estimation(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-recipient-estimation-job")
        c = self._campaign(str(data.get("id") or ""))
        self.estimates[c.id] = (self.ctx.now(), len(self._recipients(c)))
        return Outcome(data=self._estimate_job(c.id), status=202)

    def _estimate_job(self, cid: str) -> Resource:
        """Queued until ``config.job_delay_seconds`` have passed, like the other jobs."""
        requested = self.estimates[cid][0]
        done = self.ctx.now() >= requested + max(0.0, self.ctx.config.job_delay_seconds)
        status = "complete" if done else "queued"
        return Resource("campaign-recipient-estimation-job", cid, {"status": status})

    def get_campaign_recipient_estimation_job(self, call: Call) -> Outcome:
        c = self._campaign(self.path_id(call))
        if c.id not in self.estimates:
            raise not_found("campaign recipient estimation job", c.id)
        return Outcome(data=self._estimate_job(c.id))

    def get_campaign_recipient_estimation(self, call: Call) -> Outcome:
        """The count as of the last refresh (the audience now, if never refreshed)."""
        c = self._campaign(self.path_id(call))
        count = self.estimates[c.id][1] if c.id in self.estimates else len(self._recipients(c))
        attrs = {"estimated_recipient_count": count}
        return Outcome(data=Resource("campaign-recipient-estimation", c.id, attrs))

    def _send_at(self, c: CampaignRecord) -> float:
        s = c.send_strategy
        method = s.get("method")
        if method in ("static", "throttled"):
            return timestamp_attr(s.get("datetime"), f"{_PTR}/send_strategy/datetime")
        if method == "smart_send_time":
            day = date.fromisoformat(str(s.get("date")))
            local = datetime.combine(day, time(SMART_SEND_HOUR), self._account_tz())
            return local.timestamp()
        return self.ctx.now()

    def _account_tz(self) -> ZoneInfo:
        return _zone(str(self.store.account.get("timezone") or "UTC")) or ZoneInfo("UTC")

    # -- sending ------------------------------------------------------------------------------

    def _run_send(self, job: JobRecord) -> None:
        self.store.jobs.pop(job.id, None)  # internal: the campaign keeps the send job's status
        c = self.campaigns.get(str(job.payload))
        if c is None or c.job_record != job.id or c.job_status != "queued":
            return  # cancelled, reverted, deleted or rescheduled since
        c.job_record = None
        messages = [self.messages[m] for m in c.message_ids if m in self.messages]
        for m in messages:
            sender = m.content.get("from_email") or self._default_sender()
            if m.channel == "email" and not self.outbox.is_verified(str(sender)):
                self._fail(c, "Cancelled: Misconfigured",
                           f"the sender {sender!r} is not a verified sending address")  # fmt: skip
                return
        recipients = self._recipients(c)
        if recipients and messages and c.send_options.get("use_smart_sending", True):
            recipients = [p for p in recipients if not self._recently_sent(c, p, job.due)]
            if not recipients:
                self._fail(c, "Cancelled: Smart Sending", "every recipient got a message of this "
                           f"channel in the last {SMART_SENDING_HOURS} hours")  # fmt: skip
                return
        if not recipients or not messages:
            channel = c.channel.replace("_", " ")
            self._fail(c, "Cancelled: No Recipients", f"no audience profile can receive {channel}")
            return
        c.status, c.job_status = "Sending", "processing"
        per_hour = len(recipients)
        if c.send_strategy.get("method") == "throttled":
            pct = int(c.send_strategy.get("throttle_percentage") or 100)
            per_hour = max(1, math.ceil(len(recipients) * pct / 100))
        is_local = bool((c.send_strategy.get("options") or {}).get("is_local"))
        for k, p in enumerate(recipients):
            m = messages[mix64(p.seq, self.store.seed) % len(messages)]
            at = job.due + (k // per_hour) * 3600.0
            if is_local:
                at = max(job.due, self._local_time(c, p))
            self._queue_received(c, m, p, at)
        self._flush()

    def _fail(self, c: CampaignRecord, status: str, reason: str) -> None:
        c.status, c.job_status, c.failure = status, "cancelled", reason
        c.updated = self.ctx.now()
        self.outbox.failures.append({"campaign_id": c.id, "status": status, "reason": reason,
                                     "at": iso(c.updated)})  # fmt: skip

    def _default_sender(self) -> str:
        info = self.store.account.get("contact_information", {})
        return str(info.get("default_sender_email") or "")

    def _local_time(self, c: CampaignRecord, p: ProfileRecord) -> float:
        """The campaign's wall-clock time in the profile's timezone (account's when unknown)."""
        wall = datetime.fromtimestamp(c.send_time or 0.0, UTC).replace(tzinfo=None)
        tz = _zone(str((p.location or {}).get("timezone") or "")) or self._account_tz()
        return wall.replace(tzinfo=tz).timestamp()

    def _recipients(self, c: CampaignRecord) -> list[ProfileRecord]:
        store = self.store

        def members(group_ids: list[str]) -> set[int]:
            found: set[int] = set()
            for gid in group_ids:
                lst = store.lists.get(gid)
                if lst is not None:
                    found.update(lst.members)
                elif self.ctx.segments is not None:
                    found.update(self.ctx.segments.members(gid))
            return found

        seqs = members(c.included) - members(c.excluded)
        # the emulator keeps no push tokens: a mobile_push audience is always empty
        can = {"email": _can_receive, "sms": _can_receive_sms}.get(c.channel)
        if can is None:
            return []
        return [store.profiles[s] for s in sorted(seqs) if can(store.profiles[s])]

    def _recently_sent(self, c: CampaignRecord, p: ProfileRecord, at: float) -> bool:
        """Smart Sending: did ``p`` get a message on this channel in the window before ``at``?"""
        store = self.store
        metric = store.metric_by_name.get(_RECEIVED[c.channel])
        if metric is None:
            return False
        ev = store.events
        since = at - SMART_SENDING_HOURS * 3600.0
        for i in reversed(store.events_by_profile.get(p.seq, ())):
            ts = ev.ts[i]
            if ts < since:
                return False
            if ts <= at and ev.metric[i] == metric.index:
                return True
        return False

    def _queue_received(self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord,
                        at: float) -> None:  # fmt: skip
        props: dict[str, Any]
        if m.channel == "sms":
            props = {"$message": m.id, "Campaign Name": c.name, "Message Name": c.name}
        else:
            subject = render(m.content.get("subject"), _context(p))
            props = {"$message": m.id, "Campaign Name": c.name, "Subject": subject}
        self._push(_Pending(at, self._next(), _RECEIVED[m.channel], p.seq, c.id, m.id,
                            properties=props))  # fmt: skip
        c.pending_sends += 1

    def _next(self) -> int:
        self._order += 1
        return self._order

    def _push(self, item: _Pending) -> None:
        heapq.heappush(self._pending, item)

    def _drop_pending(self, campaign_id: str) -> None:
        """Forget sends not yet made (follow-ups of delivered emails still happen)."""
        keep = [e for e in self._pending
                if not (e.campaign_id == campaign_id and e.metric in _DELIVERIES)]  # fmt: skip
        heapq.heapify(keep)
        self._pending = keep
        c = self.campaigns.get(campaign_id)
        if c is not None:
            c.pending_sends = 0

    def _wake(self, job: JobRecord) -> None:
        """The follow-up job came due: it is spent, so the next wake-up needs a new one.

        Its record is dropped (no API lists it) so ``run_due`` does not sort an
        ever-growing pile of spent wake-ups on every request.
        """
        self.store.jobs.pop(job.id, None)
        if self._followup_due is not None and job.due >= self._followup_due:
            self._followup_due = None
        self._flush()

    def _flush(self) -> None:
        """Store every pending event whose time has come; schedule a wake-up for the next."""
        now = self.ctx.now()
        while self._pending and self._pending[0].ts <= now:
            e = heapq.heappop(self._pending)
            self._materialise(e)
        if self._pending and (
            self._followup_due is None or self._pending[0].ts < self._followup_due
        ):
            job = self._jobs.schedule(FOLLOWUP_KIND, None, total=0)
            job.due = self._pending[0].ts
            self._followup_due = job.due

    def _materialise(self, e: _Pending) -> None:
        store = self.store
        metric = store.metric_by_name.get(e.metric)
        if metric is None:
            return
        if store.profiles[e.profile].deleted:
            # Erased by a privacy deletion while this was pending: nothing of theirs
            # may reappear. A skipped delivery still counts towards finishing the send.
            if e.metric in _DELIVERIES:
                self._delivery_done(e.campaign_id)
            return
        i = store.add_event(e.ts, e.profile, metric.index, e.value, e.properties, e.unique_id)
        if i is not None:  # flows triggered by e.g. Placed Order see these events too
            for callback in self.ctx.on_event:
                callback(i)
        if e.metric not in _DELIVERIES:
            return
        c = self.campaigns.get(e.campaign_id)
        m = self.messages.get(e.message_id)
        if c is None or m is None:
            return
        p = store.profiles[e.profile]
        self.outbox.record(self._delivered(c, m, p, e.ts))
        if m.channel == "email":
            self._behave(c, m, p, e.ts)
        self._delivery_done(c.id)

    def _delivery_done(self, campaign_id: str) -> None:
        c = self.campaigns.get(campaign_id)
        if c is None:
            return
        c.pending_sends -= 1
        if c.pending_sends <= 0 and c.status == "Sending":
            c.status, c.job_status = "Sent", "complete"

    def _delivered(self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord,
                   ts: float) -> SentMessage:  # fmt: skip
        t = self.templates.get(m.template_id or "")
        context = _context(p)
        content = m.content
        if m.channel == "sms":
            return SentMessage(
                campaign_id=c.id, message_id=m.id, profile_id=p.id, to=str(p.phone_number),
                from_email="", from_label=None, subject=None, preview_text=None, html=None,
                sent_at=ts, channel="sms", body=render(content.get("body"), context),
            )  # fmt: skip
        return SentMessage(
            campaign_id=c.id, message_id=m.id, profile_id=p.id, to=str(p.email),
            from_email=str(content.get("from_email") or self._default_sender()),
            from_label=content.get("from_label"), subject=render(content.get("subject"), context),
            preview_text=content.get("preview_text"),
            html=render(t.html, context) if t is not None else None, sent_at=ts,
        )  # fmt: skip

    def _rates(self, p: ProfileRecord, ts: float) -> tuple[float, float]:
        """(engagement, purchase) of ``p`` at ``ts``: the generator's hidden traits (0 once
        churned); profiles created later draw theirs deterministically from the seed."""
        if p.seq < len(self.hidden):
            h = self.hidden[p.seq]
            if h.churn_time is not None and h.churn_time <= ts:
                return 0.0, 0.0
            return float(h.engagement_rate), float(h.purchase_rate)
        seed = self.store.seed
        return 0.1 + 0.5 * unit_float(seed, p.seq, 1), 0.4 * unit_float(seed, p.seq, 2)

    def _behave(self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord, ts: float) -> None:
        """Queue the opens, clicks and orders this delivery leads to (deterministic)."""
        engagement, purchase = self._rates(p, ts)
        salt = mix64(self.store.seed, *m.id.encode())

        def draw(k: int) -> float:
            return unit_float(salt, p.seq, k)

        tracking = c.tracking_options or {}
        if draw(1) >= engagement:
            return
        subject = render(m.content.get("subject"), _context(p))
        base = {"$message": m.id, "Campaign Name": c.name, "Subject": subject}
        t_open = ts + 60 + int(draw(2) * 6 * 3600)
        if tracking.get("is_tracking_opens", True) is not False:
            self._push(_Pending(t_open, self._next(), "Opened Email", p.seq, c.id, m.id,
                                properties=dict(base)))  # fmt: skip
        clicked = draw(3) < 0.3 and tracking.get("is_tracking_clicks", True) is not False
        t_click = t_open + 5 + int(draw(4) * 600)
        if clicked:
            url = f"https://shop.example.com/collections/{mix64(salt) % len(CATEGORIES)}"
            self._push(_Pending(t_click, self._next(), "Clicked Email", p.seq, c.id, m.id,
                                properties={**base, "URL": url}))  # fmt: skip
        if draw(5) >= purchase * (1.0 if clicked else 0.25):
            return
        items = [
            PRODUCTS[mix64(salt, p.seq, k) % len(PRODUCTS)] for k in range(1 + int(draw(6) * 3))
        ]
        value = round(sum(item[2] for item in items), 2)
        order_id = str(100000 + mix64(salt, p.seq, 99) % 900000)
        props = {
            "$value": value, "OrderId": order_id, "$event_id": order_id,
            "ItemNames": [item[0] for item in items],
            "Items": [{"ProductName": i[0], "Categories": [i[1]], "ItemPrice": i[2],
                       "Quantity": 1} for i in items],
            "Categories": sorted({item[1] for item in items}),
            "$attributed_message": m.id,
        }  # fmt: skip
        at = (t_click if clicked else t_open) + 600 + int(draw(7) * 2 * 86400)
        self._push(_Pending(at, self._next(), "Placed Order", p.seq, c.id, m.id, value, props,
                            order_id))  # fmt: skip


_HISTORY_HTML = (
    "<html><body><h1>This week at Northwind</h1><p>Hi {{ first_name|default:'there' }},</p>"
    "<p>New arrivals are in.</p></body></html>"
)
_OLD_CONTENT = ("subject", "preview_text", "from_email", "from_label", "reply_to_email",
                "cc_email", "bcc_email")  # fmt: skip


#: the event a delivery records, by channel
_RECEIVED = {"email": "Received Email", "sms": "Received SMS", "mobile_push": "Received Push"}
_DELIVERIES = frozenset(_RECEIVED.values())


def _context(p: ProfileRecord) -> dict[str, Any]:
    """What a message renders against: the profile's fields at top level and as ``person``."""
    person = {"email": p.email, "first_name": p.first_name, "last_name": p.last_name,
              "phone_number": p.phone_number, "organization": p.organization,
              **p.properties}  # fmt: skip
    return {**person, "person": person}


def _can_receive_sms(p: ProfileRecord) -> bool:
    return not p.deleted and bool(p.phone_number) and p.sms_consent == "SUBSCRIBED"


def _can_receive(p: ProfileRecord) -> bool:
    return (not p.deleted and bool(p.email) and p.email_consent == "SUBSCRIBED"
            and not p.email_suppression)  # fmt: skip


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _name(attrs: dict[str, Any]) -> str:
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidError("name is required and must be a non-empty string",
                           pointer=f"{_PTR}/name")  # fmt: skip
    return name


def _definition(value: Any, ptr: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidError("definition must be an object", pointer=ptr)
    channel = value.get("channel")
    if channel not in CHANNELS:
        raise InvalidError(f"definition.channel must be one of {', '.join(CHANNELS)}",
                           pointer=f"{ptr}/channel")  # fmt: skip
    content = value.get("content")
    if content is not None and not isinstance(content, dict):
        raise InvalidError("definition.content must be an object", pointer=f"{ptr}/content")
    out = _copy(value)
    if channel == "email":
        out.setdefault("label", None)
        out["content"] = {k: (content or {}).get(k) for k in _OLD_CONTENT}
    return dict(out)


def _strategy(value: Any) -> dict[str, Any]:
    ptr = f"{_PTR}/send_strategy"
    if not isinstance(value, dict):
        raise InvalidError("send_strategy must be an object", pointer=ptr)
    method = value.get("method")
    if method == "immediate":
        return {"method": "immediate"}
    if method == "static":
        timestamp_attr(value.get("datetime"), f"{ptr}/datetime")
        options = value.get("options") or {"is_local": False}
        if not isinstance(options, dict) or not isinstance(options.get("is_local", False), bool):
            raise InvalidError("options.is_local must be a boolean", pointer=f"{ptr}/options")
        opts: dict[str, Any] = {"is_local": bool(options.get("is_local", False))}
        if opts["is_local"]:
            opts["send_past_recipients_immediately"] = bool(
                options.get("send_past_recipients_immediately", False))  # fmt: skip
        return {"method": "static", "datetime": value["datetime"], "options": opts}
    if method == "throttled":
        timestamp_attr(value.get("datetime"), f"{ptr}/datetime")
        pct = value.get("throttle_percentage")
        if pct not in THROTTLE_PERCENTAGES or isinstance(pct, bool):
            raise InvalidError(
                f"throttle_percentage must be one of {', '.join(map(str, THROTTLE_PERCENTAGES))}",
                pointer=f"{ptr}/throttle_percentage",
            )
        return {"method": "throttled", "datetime": value["datetime"], "throttle_percentage": pct}
    if method == "smart_send_time":
        try:
            date.fromisoformat(str(value.get("date")))
        except ValueError:
            raise InvalidError("date must be a YYYY-MM-DD date", pointer=f"{ptr}/date") from None
        return {"method": "smart_send_time", "date": value["date"]}
    raise InvalidError("send_strategy.method must be one of immediate, static, throttled, "
                       "smart_send_time", pointer=f"{ptr}/method")  # fmt: skip


def _send_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {"use_smart_sending": True}
    if not isinstance(value, dict):
        raise InvalidError("send_options must be an object", pointer=f"{_PTR}/send_options")
    smart = value.get("use_smart_sending", True)
    if not isinstance(smart, bool):
        raise InvalidError("use_smart_sending must be a boolean",
                           pointer=f"{_PTR}/send_options/use_smart_sending")  # fmt: skip
    return {"use_smart_sending": smart}


def _default_tracking() -> dict[str, Any]:
    return {"add_tracking_params": False, "custom_tracking_params": None,
            "is_tracking_clicks": True, "is_tracking_opens": True}  # fmt: skip


def _tracking(value: Any) -> dict[str, Any]:
    out = _default_tracking()
    if value is None:
        return out
    if not isinstance(value, dict):
        raise InvalidError("tracking_options must be an object", pointer=f"{_PTR}/tracking_options")
    for name in ("add_tracking_params", "is_tracking_clicks", "is_tracking_opens"):
        if name in value and value[name] is not None:
            if not isinstance(value[name], bool):
                raise InvalidError(f"{name} must be a boolean",
                                   pointer=f"{_PTR}/tracking_options/{name}")  # fmt: skip
            out[name] = value[name]
    if value.get("custom_tracking_params") is not None:
        if not isinstance(value["custom_tracking_params"], list):
            ptr = f"{_PTR}/tracking_options/custom_tracking_params"
            raise InvalidError("custom_tracking_params must be a list", pointer=ptr)
        out["custom_tracking_params"] = _copy(value["custom_tracking_params"])
    return out
