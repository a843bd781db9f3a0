"""Running live flows on the simulated clock.

A metric trigger enters the profile of every new event of that metric (created
through the API or a bulk job; ``ctx.on_event``), timed from when the event is
received; a list trigger enters every profile that joins the list after the flow
went live (noticed in ``run_due``, timed at ``joined_group_at``). From the entry
action the runner walks the ``links.next`` chain: ``time-delay`` adds its delay,
``send-email`` schedules a *Received Email* event (``$flow``, ``$message``,
``Subject``) at the time the delays imply; other action types pass through, and a
split (no ``next``) ends the walk. A scheduled email is dropped when, at its time,
the flow is no longer live, the profile was deleted, has no email, or (unless the
message is transactional) is suppressed or unsubscribed.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.flow_records import (
    DELAY_UNITS,
    RECEIVED_EMAIL,
    ActionRecord,
    ActionStatus,
    FlowMessageRecord,
    FlowRecord,
    FlowStatus,
)
from kbridge.emulator.backend.ids import base62_id
from kbridge.emulator.backend.models import MetricRecord
from kbridge.emulator.backend.vocabulary import INTEGRATIONS

if TYPE_CHECKING:
    from kbridge.emulator.backend.common import Context

__all__ = ["FlowRunner"]


@dataclass(order=True, slots=True)
class _Delivery:
    due: float
    order: int
    profile: int = field(compare=False)
    flow_id: str = field(compare=False)
    action_id: str = field(compare=False)
    message_id: str = field(compare=False)


class FlowRunner:
    """Enters profiles into the flows backend's live flows and delivers their emails."""

    def __init__(
        self,
        ctx: Context,
        *,
        flows: dict[str, FlowRecord],
        actions: dict[str, ActionRecord],
        messages: dict[str, FlowMessageRecord],
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.flows = flows
        self.actions = actions
        self.messages = messages
        self._queue: list[_Delivery] = []
        self._order = 0
        #: set while a delivery's own event is announced, so it enters no flow itself
        self._emitting = False
        self._list_stamp = -1

    def went_live(self) -> None:
        """A flow went live: look at list members again on the next ``run_due``."""
        self._list_stamp = -1

    def _live(self, kind: str) -> list[FlowRecord]:
        return [
            f
            for f in self.flows.values()
            if f.status == FlowStatus.LIVE and f.trigger.get("type") == kind
        ]

    def on_event(self, i: int) -> None:
        """A new event: enter its profile into every live flow its metric triggers."""
        if self._emitting:
            return
        store = self.store
        metric_id = store.metrics[store.events.metric[i]].id
        now = self.ctx.now()
        for flow in self._live("metric"):
            if flow.trigger.get("id") == metric_id:
                self.enter(flow, store.events.profile[i], now)

    def _poll_lists(self) -> None:
        """Profiles that joined a list-triggered live flow's list since it went live."""
        store = self.store
        if store.version == self._list_stamp:
            return
        self._list_stamp = store.version
        for flow in self._live("list"):
            lst = store.lists.get(str(flow.trigger.get("id")))
            since = flow.live_since or 0.0
            if lst is None:
                continue
            for s, joined in list(lst.members.items()):
                if joined >= since and s not in flow.entered:
                    self.enter(flow, s, joined)

    def enter(self, flow: FlowRecord, profile: int, at: float) -> None:
        """Walk the flow from its entry action and schedule its emails for ``profile``."""
        flow.entered[profile] = at
        t = at
        aid = flow.definition.get("entry_action_id")
        seen: set[str] = set()
        while isinstance(aid, str) and aid in self.actions and aid not in seen:
            seen.add(aid)
            action = self.actions[aid]
            data = action.definition.get("data") or {}
            if action.type == "time-delay":
                t += DELAY_UNITS[data.get("unit", "days")] * int(data.get("value") or 0)
            elif action.type == "send-email":
                for mid in action.message_ids:
                    self._order += 1
                    delivery = _Delivery(
                        due=t,
                        order=self._order,
                        profile=profile,
                        flow_id=flow.id,
                        action_id=aid,
                        message_id=mid,
                    )
                    heapq.heappush(self._queue, delivery)
            aid = (action.definition.get("links") or {}).get("next")

    def run_due(self) -> None:
        """Enter new list members, then deliver every email whose time has come."""
        self._poll_lists()
        now = self.ctx.now()
        while self._queue and self._queue[0].due <= now:
            self._deliver(heapq.heappop(self._queue))

    def _deliver(self, d: _Delivery) -> None:
        flow = self.flows.get(d.flow_id)
        action = self.actions.get(d.action_id)
        msg = self.messages.get(d.message_id)
        if flow is None or action is None or msg is None:
            return
        if flow.status != FlowStatus.LIVE or action.status != ActionStatus.LIVE:
            return
        store = self.store
        p = store.profiles[d.profile]
        if p.deleted or not p.email:
            return
        transactional = bool(msg.definition.get("transactional"))
        if not transactional and (p.email_suppression or p.email_consent == "UNSUBSCRIBED"):
            return
        props: dict[str, Any] = {
            "$flow": flow.id,
            "$message": msg.id,
            "Subject": msg.definition.get("subject_line") or "",
            "Campaign Name": msg.name,
        }
        metric = self._received_email()
        self._emitting = True
        try:
            i = store.add_event(d.due, p.seq, metric.index, 0.0, props, None)
            if i is not None:
                for callback in self.ctx.on_event:
                    callback(i)
        finally:
            self._emitting = False

    def _received_email(self) -> MetricRecord:
        store = self.store
        m = store.metric_by_name.get(RECEIVED_EMAIL)
        if m is None:
            now = self.ctx.now()
            m = MetricRecord(
                index=len(store.metrics),
                id=base62_id(store.seed, 0x3E7, len(store.metrics)),
                name=RECEIVED_EMAIL,
                created=now,
                updated=now,
                integration=dict(INTEGRATIONS["klaviyo"]),
            )
            store.metrics.append(m)
            store.metric_by_id[m.id] = m
            store.metric_by_name[m.name] = m
        return m

    def pending(self) -> int:
        """Emails scheduled and not yet due (for tests and the control plane)."""
        return len(self._queue)
