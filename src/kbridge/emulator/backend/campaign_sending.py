"""Sending campaigns on the simulated clock.

When a send job comes due the sender picks the audience (included lists and segments
minus excluded ones, who can receive the channel, less whoever Smart Sending skips),
queues each recipient's Received event at its (throttled or local) time, and stores
pending events only once the clock passes them, so a client never sees the future.
Each delivered email is recorded in the outbox and queues its opens, clicks and orders
(``campaign_engagement``). A follow-up job wakes the sender for the next pending event.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.campaign_records import (
    DELIVERIES,
    FOLLOWUP_KIND,
    RECEIVED,
    CampaignRecord,
    CampaignStatus,
    MessageRecord,
    SendJobStatus,
    account_zone,
    can_receive,
    can_receive_sms,
    message_context,
    zone,
)
from kbridge.emulator.backend.ids import iso, mix64
from kbridge.emulator.backend.models import JobRecord, ProfileRecord
from kbridge.emulator.backend.outbox import Outbox, SentMessage
from kbridge.emulator.backend.templates import TemplateRecord, render

if TYPE_CHECKING:
    from kbridge.emulator.backend.campaign_engagement import Engagement
    from kbridge.emulator.backend.common import Context
    from kbridge.emulator.backend.jobs import JobsBackend

__all__ = ["SMART_SENDING_HOURS", "CampaignSender"]

#: Smart Sending skips whoever got a message on the channel this recently (Klaviyo's email default)
SMART_SENDING_HOURS = 16


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


class CampaignSender:
    """Runs the campaigns backend's send jobs and delivers what they queue."""

    def __init__(
        self,
        ctx: Context,
        *,
        campaigns: dict[str, CampaignRecord],
        messages: dict[str, MessageRecord],
        templates: dict[str, TemplateRecord],
        outbox: Outbox,
        jobs: JobsBackend,
        engagement: Engagement,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.campaigns = campaigns
        self.messages = messages
        self.templates = templates
        self.outbox = outbox
        self.engagement = engagement
        self._jobs = jobs
        #: events not yet due, a heap by (time, order queued)
        self.pending: list[_Pending] = []
        self._order = 0
        self._followup_due: float | None = None

    def run_send(self, job: JobRecord) -> None:
        self.store.jobs.pop(job.id, None)  # internal: the campaign keeps the send job's status
        c = self.campaigns.get(str(job.payload))
        if c is None or c.job_record != job.id or c.job_status != SendJobStatus.QUEUED:
            return  # cancelled, reverted, deleted or rescheduled since
        c.job_record = None
        messages = [self.messages[m] for m in c.message_ids if m in self.messages]
        for m in messages:
            sender = m.content.get("from_email") or self.default_sender()
            if m.channel == "email" and not self.outbox.is_verified(str(sender)):
                self._fail(
                    c,
                    CampaignStatus.MISCONFIGURED,
                    f"the sender {sender!r} is not a verified sending address",
                )
                return
        recipients = self.recipients(c)
        if recipients and messages and c.send_options.get("use_smart_sending", True):
            recipients = [p for p in recipients if not self._recently_sent(c, p, job.due)]
            if not recipients:
                self._fail(
                    c,
                    CampaignStatus.SMART_SENDING,
                    "every recipient got a message of this "
                    f"channel in the last {SMART_SENDING_HOURS} hours",
                )
                return
        if not recipients or not messages:
            channel = c.channel.replace("_", " ")
            self._fail(
                c, CampaignStatus.NO_RECIPIENTS, f"no audience profile can receive {channel}"
            )
            return
        c.status, c.job_status = CampaignStatus.SENDING, SendJobStatus.PROCESSING
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

    def _fail(self, c: CampaignRecord, status: CampaignStatus, reason: str) -> None:
        c.status, c.job_status, c.failure = status, SendJobStatus.CANCELLED, reason
        c.updated = self.ctx.now()
        self.outbox.failures.append(
            {"campaign_id": c.id, "status": str(status), "reason": reason, "at": iso(c.updated)}
        )

    def default_sender(self) -> str:
        info = self.store.account.get("contact_information", {})
        return str(info.get("default_sender_email") or "")

    def _local_time(self, c: CampaignRecord, p: ProfileRecord) -> float:
        """The campaign's wall-clock time in the profile's timezone (account's when unknown)."""
        wall = datetime.fromtimestamp(c.send_time or 0.0, UTC).replace(tzinfo=None)
        tz = zone(str((p.location or {}).get("timezone") or "")) or account_zone(self.store)
        return wall.replace(tzinfo=tz).timestamp()

    def recipients(self, c: CampaignRecord) -> list[ProfileRecord]:
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
        can = {"email": can_receive, "sms": can_receive_sms}.get(c.channel)
        if can is None:
            return []
        return [store.profiles[s] for s in sorted(seqs) if can(store.profiles[s])]

    def _recently_sent(self, c: CampaignRecord, p: ProfileRecord, at: float) -> bool:
        """Smart Sending: did ``p`` get a message on this channel in the window before ``at``?"""
        store = self.store
        metric = store.metric_by_name.get(RECEIVED[c.channel])
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

    def _queue_received(
        self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord, at: float
    ) -> None:
        props: dict[str, Any]
        if m.channel == "sms":
            props = {"$message": m.id, "Campaign Name": c.name, "Message Name": c.name}
        else:
            subject = render(m.content.get("subject"), message_context(p))
            props = {"$message": m.id, "Campaign Name": c.name, "Subject": subject}
        self._push(
            _Pending(at, self._next(), RECEIVED[m.channel], p.seq, c.id, m.id, properties=props)
        )
        c.pending_sends += 1

    def _next(self) -> int:
        self._order += 1
        return self._order

    def _push(self, item: _Pending) -> None:
        heapq.heappush(self.pending, item)

    def drop_pending(self, campaign_id: str) -> None:
        """Forget sends not yet made (follow-ups of delivered emails still happen)."""
        keep = [
            e for e in self.pending if not (e.campaign_id == campaign_id and e.metric in DELIVERIES)
        ]
        heapq.heapify(keep)
        self.pending = keep
        c = self.campaigns.get(campaign_id)
        if c is not None:
            c.pending_sends = 0

    def wake(self, job: JobRecord) -> None:
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
        while self.pending and self.pending[0].ts <= now:
            e = heapq.heappop(self.pending)
            self._materialise(e)
        if self.pending and (self._followup_due is None or self.pending[0].ts < self._followup_due):
            job = self._jobs.schedule(FOLLOWUP_KIND, None, total=0)
            job.due = self.pending[0].ts
            self._followup_due = job.due

    def _materialise(self, e: _Pending) -> None:
        store = self.store
        metric = store.metric_by_name.get(e.metric)
        if metric is None:
            return
        if store.profiles[e.profile].deleted:
            # Erased by a privacy deletion while this was pending: nothing of theirs
            # may reappear. A skipped delivery still counts towards finishing the send.
            if e.metric in DELIVERIES:
                self._delivery_done(e.campaign_id)
            return
        i = store.add_event(e.ts, e.profile, metric.index, e.value, e.properties, e.unique_id)
        if i is not None:  # flows triggered by e.g. Placed Order see these events too
            for callback in self.ctx.on_event:
                callback(i)
        if e.metric not in DELIVERIES:
            return
        c = self.campaigns.get(e.campaign_id)
        m = self.messages.get(e.message_id)
        if c is None or m is None:
            return
        p = store.profiles[e.profile]
        self.outbox.record(self._delivered(c, m, p, e.ts))
        if m.channel == "email":
            for f in self.engagement.follow_ups(c, m, p, e.ts):
                self._push(
                    _Pending(
                        f.ts,
                        self._next(),
                        f.metric,
                        p.seq,
                        c.id,
                        m.id,
                        f.value,
                        f.properties,
                        f.unique_id,
                    )
                )
        self._delivery_done(c.id)

    def _delivery_done(self, campaign_id: str) -> None:
        c = self.campaigns.get(campaign_id)
        if c is None:
            return
        c.pending_sends -= 1
        if c.pending_sends <= 0 and c.status == CampaignStatus.SENDING:
            c.status, c.job_status = CampaignStatus.SENT, SendJobStatus.COMPLETE

    def _delivered(
        self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord, ts: float
    ) -> SentMessage:
        t = self.templates.get(m.template_id or "")
        context = message_context(p)
        content = m.content
        if m.channel == "sms":
            return SentMessage(
                campaign_id=c.id,
                message_id=m.id,
                profile_id=p.id,
                to=str(p.phone_number),
                from_email="",
                from_label=None,
                subject=None,
                preview_text=None,
                html=None,
                sent_at=ts,
                channel="sms",
                body=render(content.get("body"), context),
            )
        return SentMessage(
            campaign_id=c.id,
            message_id=m.id,
            profile_id=p.id,
            to=str(p.email),
            from_email=str(content.get("from_email") or self.default_sender()),
            from_label=content.get("from_label"),
            subject=render(content.get("subject"), context),
            preview_text=content.get("preview_text"),
            html=render(t.html, context) if t is not None else None,
            sent_at=ts,
        )
