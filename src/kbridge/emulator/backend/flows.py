"""Flows: definitions (trigger, actions, messages) and status, over the API.

``POST /api/flows`` takes a definition whose new actions carry a
``temporary_id`` (checked in ``flow_input``); the flow, its actions and its email
messages get real ids, and the definition is returned with them. A flow is
created ``draft``; ``PATCH`` moves it (and every action) between ``draft``,
``manual`` and ``live``. ``PATCH /api/flow-actions/{id}`` replaces one action's
definition (its type stays; links must name actions of the same flow).

A **live** flow runs on the simulated clock (``flow_running``). Profile filters,
trigger filters and re-entry criteria are stored and returned but not
evaluated: every matching event enters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    page_of,
    related_page,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.flow_input import (
    DEFINITION,
    check_action,
    check_definition,
    flow_status,
)
from kbridge.emulator.backend.flow_records import (
    LINK_NAMES,
    RECEIVED_EMAIL,
    ActionRecord,
    ActionStatus,
    FlowMessageRecord,
    FlowRecord,
    FlowStatus,
)
from kbridge.emulator.backend.flow_running import FlowRunner
from kbridge.emulator.backend.flow_seeds import seeded_flows
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.resource import Linkage, Resource
from kbridge.emulator.backend.templates import template_resource, templates_of
from kbridge.emulator.query import Page, Query

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = [
    "RECEIVED_EMAIL",
    "ActionRecord",
    "FlowMessageRecord",
    "FlowRecord",
    "FlowsBackend",
]

#: the fields a flow's actions (and an action's messages) filter and sort on → the
#: record attribute holding each
_ACTION_FIELDS = {
    "id": "id",
    "action_type": "type",
    "status": "status",
    "created": "created",
    "updated": "updated",
}
_MESSAGE_FIELDS = {"id": "id", "name": "name", "created": "created", "updated": "updated"}

_C = TypeVar("_C", ActionRecord, FlowMessageRecord)


def _child_page(
    call: Call, children: list[_C], fields: Mapping[str, str]
) -> tuple[Page[int], dict[int, _C]]:
    """The requested page of a flow's actions or an action's messages (creation order
    unless sorted), and the children by record number."""
    by_seq = {c.seq: c for c in children}
    sort = call.query.sort.field if call.query.sort is not None else None

    def key(s: int) -> tuple[Any, ...]:
        return (getattr(by_seq[s], fields.get(sort, sort)), s) if sort else (s,)

    def getter(attr: str) -> Callable[[int], Any]:
        return lambda s: getattr(by_seq[s], attr)

    getters = {name: getter(attr) for name, attr in fields.items()}
    return page_of(call, sorted(by_seq, key=key), key, getters), by_seq


class FlowsBackend(TagBackend):
    operations = frozenset(
        {
            "get_flows",
            "get_flow",
            "create_flow",
            "update_flow",
            "delete_flow",
            "get_actions_for_flow",
            "get_action_ids_for_flow",
            "get_flow_action",
            "update_flow_action",
            "get_flow_for_flow_action",
            "get_flow_id_for_flow_action",
            "get_flow_action_messages",
            "get_message_ids_for_flow_action",
            "get_flow_message",
            "get_action_for_flow_message",
            "get_action_id_for_flow_message",
            "get_template_id_for_flow_message",
            "get_template_for_flow_message",
            "get_flows_triggered_by_list",
            "get_ids_for_flows_triggered_by_list",
            "get_flows_triggered_by_metric",
            "get_ids_for_flows_triggered_by_metric",
            "get_flows_triggered_by_segment",
            "get_ids_for_flows_triggered_by_segment",
            "delete_flow_action",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.flows: dict[str, FlowRecord] = {}
        self.actions: dict[str, ActionRecord] = {}
        self.messages: dict[str, FlowMessageRecord] = {}
        self.runner = FlowRunner(
            ctx, flows=self.flows, actions=self.actions, messages=self.messages
        )
        ctx.flows = self
        ctx.on_event.append(self.runner.on_event)
        ctx.on_due.append(self.runner.run_due)
        if ctx.store.profiles and ctx.store.lists:
            for name, definition in seeded_flows(ctx):
                self.build(name, definition)

    # -- resources ---------------------------------------------------------------------

    def flow_resource(
        self, flow: FlowRecord, query: Query | None, *, definition: bool = False
    ) -> Resource:
        attrs: dict[str, Any] = {
            "name": flow.name,
            "status": flow.status,
            "archived": flow.archived,
            "created": iso(flow.created),
            "updated": iso(flow.updated),
            "trigger_type": flow.trigger_type,
        }
        if definition or (query is not None and query.wants("flow", "definition")):
            attrs["definition"] = self._definition(flow)
        rels: dict[str, Linkage] = {"flow-actions": [("flow-action", a) for a in flow.action_ids]}
        links_only: tuple[str, ...] = ("tags",)
        if query is not None and "tags" in query.include:
            rels["tags"] = [("tag", t.id) for t in self._tags_of(flow.id)]
            links_only = ()
        return Resource("flow", flow.id, attrs, relationships=rels, links_only=links_only)

    def action_resource(self, action: ActionRecord) -> Resource:
        attrs = {
            "created": iso(action.created),
            "updated": iso(action.updated),
            "definition": self._action_definition(action),
        }
        rels: dict[str, Linkage] = {
            "flow": ("flow", action.flow_id),
            "flow-messages": [("flow-message", m) for m in action.message_ids],
        }
        return Resource("flow-action", action.id, attrs, relationships=rels)

    def message_resource(self, msg: FlowMessageRecord) -> Resource:
        attrs = {
            "channel": msg.channel,
            "created": iso(msg.created),
            "updated": iso(msg.updated),
            "definition": copy.deepcopy(msg.definition),
        }
        template_id = msg.definition.get("template_id")
        rels: dict[str, Linkage] = {"flow-action": ("flow-action", msg.action_id)}
        if isinstance(template_id, str):
            rels["template"] = ("template", template_id)
        # The spec has no null linkage for template: without one, links only.
        links_only = () if "template" in rels else ("template",)
        return Resource("flow-message", msg.id, attrs, relationships=rels, links_only=links_only)

    def _action_definition(self, action: ActionRecord) -> dict[str, Any]:
        out = copy.deepcopy(action.definition)
        data = out.get("data")
        if isinstance(data, dict) and ("status" in data or action.type.startswith("send-")):
            data["status"] = action.status
        return out

    def _definition(self, flow: FlowRecord) -> dict[str, Any]:
        out = copy.deepcopy(flow.definition)
        out["actions"] = [
            self._action_definition(self.actions[a]) for a in flow.action_ids if a in self.actions
        ]
        return out

    def _tags_of(self, flow_id: str) -> list[Any]:
        tags = self.ctx.tags
        return list(tags.tags_of("flow", flow_id)) if tags is not None else []

    # -- lookups -----------------------------------------------------------------------

    def _flow(self, call: Call) -> FlowRecord:
        fid = self.path_id(call)
        return existing(self.flows, "flow", fid)

    def _action(self, call: Call) -> ActionRecord:
        aid = self.path_id(call)
        return existing(self.actions, "flow action", aid)

    def _message(self, call: Call) -> FlowMessageRecord:
        mid = self.path_id(call)
        return existing(self.messages, "flow message", mid)

    # -- flows -------------------------------------------------------------------------

    def get_flows(self, call: Call) -> Outcome:
        by_seq = {f.seq: f for f in self.flows.values()}
        sort = call.query.sort.field if call.query.sort is not None else None

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s) if sort else (s,)

        getters: dict[str, Callable[[int], Any]] = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "status": lambda s: by_seq[s].status,
            "archived": lambda s: by_seq[s].archived,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
            "trigger_type": lambda s: by_seq[s].trigger_type,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        flows = [by_seq[s] for s in page.items]
        return Outcome(
            data=Page(
                items=[self.flow_resource(f, call.query) for f in flows],
                next_cursor=page.next_cursor,
                prev_cursor=page.prev_cursor,
            ),
            included=self._flow_included(flows, call.query),
        )

    def _flow_included(self, flows: list[FlowRecord], query: Query) -> list[Resource]:
        out: list[Resource] = []
        if "flow-actions" in query.include:
            for f in flows:
                out += [self.action_resource(self.actions[a]) for a in f.action_ids]
        if "tags" in query.include:
            tags = self.ctx.tags
            seen: set[str] = set()
            for f in flows:
                for t in self._tags_of(f.id):
                    if t.id not in seen and tags is not None:
                        seen.add(t.id)
                        out.append(tags.tag_resource(t))
        return out

    def get_flow(self, call: Call) -> Outcome:
        flow = self._flow(call)
        return Outcome(
            data=self.flow_resource(flow, call.query),
            included=self._flow_included([flow], call.query),
        )

    def create_flow(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "flow"))
        name = attrs.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidError(
                "name is required and must be a non-empty string", pointer="/data/attributes/name"
            )
        flow = self.build(name, attrs.get("definition"))
        return Outcome(data=self.flow_resource(flow, None, definition=True), status=201)

    def build(self, name: str, definition: Any) -> FlowRecord:
        """Check ``definition`` (temporary ids) and store the flow with real ids."""
        new = check_definition(self.ctx, definition)
        now, store = self.ctx.now(), self.store
        flow = FlowRecord(
            seq=store.next_seq(),
            id=store.next_short_id(0xF10),
            name=name,
            created=now,
            updated=now,
            trigger=copy.deepcopy(new.trigger),
        )
        real = {t: str(90_000_000 + store.next_seq()) for t in new.temporary_ids}
        for raw in new.actions:
            self._store_action(flow, raw, real, now)
        entry = new.entry_action_id
        flow.definition = {
            "triggers": [copy.deepcopy(new.trigger)],
            "profile_filter": copy.deepcopy(new.profile_filter),
            "entry_action_id": real.get(entry) if isinstance(entry, str) else None,
        }
        if new.reentry_criteria is not None:
            flow.definition["reentry_criteria"] = copy.deepcopy(new.reentry_criteria)
        self.flows[flow.id] = flow
        return flow

    def _store_action(
        self, flow: FlowRecord, raw: dict[str, Any], real: dict[str, str], now: float
    ) -> None:
        store = self.store
        aid = real[raw["temporary_id"]]
        definition: dict[str, Any] = {"id": aid, "type": raw["type"]}
        links = raw.get("links") or {}
        definition["links"] = {n: real.get(links[n]) for n in LINK_NAMES if n in links} or {
            "next": None
        }
        data = copy.deepcopy(raw.get("data") or {})
        action = ActionRecord(
            seq=store.next_seq(),
            id=aid,
            flow_id=flow.id,
            type=raw["type"],
            created=now,
            updated=now,
            definition=definition,
            status=ActionStatus(data.get("status") or ActionStatus.DRAFT),
        )
        if raw["type"] == "time-delay":
            data.setdefault("unit", "days")
        if raw["type"] == "send-email":
            message = data.get("message") or {}
            mid = store.next_short_id(0xF1E)
            message = {**message, "id": mid}
            name = message.get("name") or f"{flow.name} Email #{len(self.messages) + 1}"
            message["name"] = name
            data["message"] = message
            self.messages[mid] = FlowMessageRecord(
                seq=store.next_seq(),
                id=mid,
                flow_id=flow.id,
                action_id=aid,
                name=name,
                created=now,
                updated=now,
                definition=message,
            )
            action.message_ids.append(mid)
        definition["data"] = data
        self.actions[aid] = action
        flow.action_ids.append(aid)

    def update_flow(self, call: Call) -> Outcome:
        flow = self._flow(call)
        attrs = attributes_of(data_of(call.body, "flow"))
        self.set_status(flow, flow_status(attrs.get("status")))
        return Outcome(data=self.flow_resource(flow, None))

    def set_status(self, flow: FlowRecord, status: FlowStatus) -> None:
        """The flow and all its actions take ``status``; going live starts listening."""
        now = self.ctx.now()
        if status == FlowStatus.LIVE and flow.status != FlowStatus.LIVE:
            flow.live_since = now
            self.runner.went_live()
        flow.status = status
        flow.updated = now
        for aid in flow.action_ids:
            action = self.actions[aid]
            action.status, action.updated = ActionStatus(status), now

    def delete_flow(self, call: Call) -> Outcome:
        flow = self._flow(call)
        for aid in flow.action_ids:
            action = self.actions.pop(aid)
            for mid in action.message_ids:
                self.messages.pop(mid, None)
        del self.flows[flow.id]
        return Outcome(status=204)

    # -- actions and messages ----------------------------------------------------------

    def _action_page(self, call: Call, ids_only: bool) -> Outcome:
        actions = [self.actions[a] for a in self._flow(call).action_ids]
        page, by_seq = _child_page(call, actions, _ACTION_FIELDS)
        return related_page(page, by_seq, "flow-action", self.action_resource, ids_only=ids_only)

    def get_actions_for_flow(self, call: Call) -> Outcome:
        return self._action_page(call, ids_only=False)

    def get_action_ids_for_flow(self, call: Call) -> Outcome:
        return self._action_page(call, ids_only=True)

    def get_flow_action(self, call: Call) -> Outcome:
        action = self._action(call)
        included: list[Resource] = []
        if "flow" in call.query.include and action.flow_id in self.flows:
            included.append(self.flow_resource(self.flows[action.flow_id], None))
        if "flow-messages" in call.query.include:
            included += [self.message_resource(self.messages[m]) for m in action.message_ids]
        return Outcome(data=self.action_resource(action), included=included)

    def update_flow_action(self, call: Call) -> Outcome:
        """Replace an action's definition: same type, links within its flow, same message id."""
        action = self._action(call)
        attrs = attributes_of(data_of(call.body, "flow-action"))
        ptr = DEFINITION
        raw = attrs.get("definition")
        if not isinstance(raw, dict):
            raise InvalidError("definition is required and must be an object", pointer=ptr)
        if raw.get("type") != action.type:
            raise InvalidError(
                f"an action's type cannot change (it is {action.type!r})", pointer=f"{ptr}/type"
            )
        if raw.get("id") is not None and raw["id"] != action.id:
            raise InvalidError("definition.id must be this action's id", pointer=f"{ptr}/id")
        flow = self.flows[action.flow_id]
        check_action(self.ctx, raw, ptr, flow.action_ids)
        now = self.ctx.now()
        links = raw.get("links") or {}
        action.definition["links"] = {n: links[n] for n in LINK_NAMES if n in links} or {
            "next": None
        }
        data = copy.deepcopy(raw.get("data") or {})
        if data.get("status") is not None:
            action.status = ActionStatus(data["status"])
        if action.type == "time-delay":
            data.setdefault("unit", "days")
        for mid in action.message_ids[:1]:
            msg = self.messages[mid]
            message = {**(data.get("message") or {}), "id": mid}
            message["name"] = message.get("name") or msg.name
            msg.definition, msg.name, msg.updated = message, message["name"], now
            data["message"] = message
        action.definition["data"] = data
        action.updated = flow.updated = now
        return Outcome(data=self.action_resource(action))

    def get_flow_for_flow_action(self, call: Call) -> Outcome:
        return Outcome(data=self.flow_resource(self.flows[self._action(call).flow_id], None))

    def get_flow_id_for_flow_action(self, call: Call) -> Outcome:
        action = self._action(call)
        return Outcome(data=Resource("flow", action.flow_id, {}), identifiers_only=True)

    def _message_page(self, call: Call, ids_only: bool) -> Outcome:
        messages = [self.messages[m] for m in self._action(call).message_ids]
        page, by_seq = _child_page(call, messages, _MESSAGE_FIELDS)
        return related_page(page, by_seq, "flow-message", self.message_resource, ids_only=ids_only)

    def get_flow_action_messages(self, call: Call) -> Outcome:
        return self._message_page(call, ids_only=False)

    def get_message_ids_for_flow_action(self, call: Call) -> Outcome:
        return self._message_page(call, ids_only=True)

    def get_flow_message(self, call: Call) -> Outcome:
        msg = self._message(call)
        included: list[Resource] = []
        if "flow-action" in call.query.include:
            included.append(self.action_resource(self.actions[msg.action_id]))
        template = templates_of(self.ctx).get(str(msg.definition.get("template_id")))
        if "template" in call.query.include and template is not None:
            included.append(template_resource(template))
        return Outcome(data=self.message_resource(msg), included=included)

    def get_template_for_flow_message(self, call: Call) -> Outcome:
        msg = self._message(call)
        template = templates_of(self.ctx).get(str(msg.definition.get("template_id")))
        if template is None:
            raise not_found("template for flow message", msg.id)
        return Outcome(data=template_resource(template))

    def get_action_for_flow_message(self, call: Call) -> Outcome:
        return Outcome(data=self.action_resource(self.actions[self._message(call).action_id]))

    def get_action_id_for_flow_message(self, call: Call) -> Outcome:
        msg = self._message(call)
        return Outcome(data=Resource("flow-action", msg.action_id, {}), identifiers_only=True)

    def get_template_id_for_flow_message(self, call: Call) -> Outcome:
        template_id = self._message(call).definition.get("template_id")
        if not isinstance(template_id, str):
            return Outcome(null_data=True)
        return Outcome(data=Resource("template", template_id, {}), identifiers_only=True)

    # -- flows by trigger ----------------------------------------------------------------

    def _triggered_by(self, call: Call, kind: str, ids_only: bool) -> Outcome:
        ident = self.path_id(call)
        store = self.store
        known: dict[str, dict[str, Any]] = {
            "metric": store.metric_by_id,
            "list": store.lists,
            "segment": store.segments,
        }
        if ident not in known[kind]:
            raise not_found(kind, ident)
        flows = sorted(
            (
                f
                for f in self.flows.values()
                if f.trigger.get("type") == kind and f.trigger.get("id") == ident
            ),
            key=lambda f: f.seq,
        )
        if ids_only:
            return Outcome(data=[Resource("flow", f.id, {}) for f in flows], identifiers_only=True)
        return Outcome(data=[self.flow_resource(f, None) for f in flows])

    def get_flows_triggered_by_list(self, call: Call) -> Outcome:
        return self._triggered_by(call, "list", ids_only=False)

    def get_ids_for_flows_triggered_by_list(self, call: Call) -> Outcome:
        return self._triggered_by(call, "list", ids_only=True)

    def get_flows_triggered_by_metric(self, call: Call) -> Outcome:
        return self._triggered_by(call, "metric", ids_only=False)

    def get_ids_for_flows_triggered_by_metric(self, call: Call) -> Outcome:
        return self._triggered_by(call, "metric", ids_only=True)

    def get_flows_triggered_by_segment(self, call: Call) -> Outcome:
        return self._triggered_by(call, "segment", ids_only=False)

    def get_ids_for_flows_triggered_by_segment(self, call: Call) -> Outcome:
        return self._triggered_by(call, "segment", ids_only=True)

    # -- deleting one action -----------------------------------------------------------

    def delete_flow_action(self, call: Call) -> Outcome:
        """Remove an action and its messages; whatever led to it now leads to its ``next``.

        Splicing keeps the flow walkable: the runner follows ``links.next`` from
        ``entry_action_id``, so a dangling link would silently end every path there.
        """
        action = self._action(call)
        flow = self.flows[action.flow_id]
        following = (action.definition.get("links") or {}).get("next")
        if flow.definition.get("entry_action_id") == action.id:
            flow.definition["entry_action_id"] = following
        for aid in flow.action_ids:
            links = self.actions[aid].definition.get("links") or {}
            for name, target in links.items():
                if target == action.id:
                    links[name] = following
        for mid in action.message_ids:
            self.messages.pop(mid, None)
        flow.action_ids.remove(action.id)
        del self.actions[action.id]
        flow.updated = self.ctx.now()
        return Outcome(status=204)
