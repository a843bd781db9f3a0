"""A campaign's messages: read them, edit them while the campaign is a Draft, assign a template.

The campaigns backend (``campaigns``) owns the records, since a message is made, cloned
and sent with its campaign; this backend serves the campaign-message operations over
the same records and answers with the campaigns backend's resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.campaign_input import EMAIL_CONTENT, PTR, parse_definition
from kbridge.emulator.backend.campaign_records import (
    CampaignRecord,
    CampaignStatus,
    MessageRecord,
    copy_value,
)
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    relationship_ids,
)
from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.templates import TemplateRecord, template_resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.campaigns import CampaignsBackend
    from kbridge.emulator.backend.common import Context

__all__ = ["CampaignMessagesBackend"]


class CampaignMessagesBackend(TagBackend):
    operations = frozenset(
        {
            "get_messages_for_campaign",
            "get_message_ids_for_campaign",
            "get_campaign_message",
            "update_campaign_message",
            "assign_template_to_campaign_message",
            "get_campaign_for_campaign_message",
            "get_campaign_id_for_campaign_message",
            "get_template_for_campaign_message",
            "get_template_id_for_campaign_message",
            "update_image_for_campaign_message",
            "get_image_for_campaign_message",
            "get_image_id_for_campaign_message",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        if ctx.campaigns is None:
            raise RuntimeError("the campaigns backend must be built before its messages' backend")
        self.owner: CampaignsBackend = ctx.campaigns
        # The owner's own dicts, never rebound: both backends see every change at once.
        self.campaigns: dict[str, CampaignRecord] = self.owner.campaigns
        self.messages: dict[str, MessageRecord] = self.owner.messages
        self.templates: dict[str, TemplateRecord] = self.owner.templates

    def _message(self, mid: str) -> MessageRecord:
        return existing(self.messages, "campaign message", mid)

    def _message_includes(self, call: Call, messages: list[MessageRecord]) -> list[Resource]:
        out: list[Resource] = []
        if "campaign" in call.query.include:
            for cid in dict.fromkeys(m.campaign_id for m in messages):
                if cid in self.campaigns:
                    out.append(self.owner.campaign_resource(self.campaigns[cid]))
        if "template" in call.query.include:
            for tid in dict.fromkeys(m.template_id for m in messages if m.template_id):
                if tid in self.templates:
                    out.append(template_resource(self.templates[tid]))
        return out

    # -- operations ------------------------------------------------------------------------

    def get_messages_for_campaign(self, call: Call) -> Outcome:
        c = self.owner.campaign(self.path_id(call))
        messages = [self.messages[m] for m in c.message_ids]
        return Outcome(
            data=[self.owner.message_resource(m) for m in messages],
            included=self._message_includes(call, messages),
        )

    def get_message_ids_for_campaign(self, call: Call) -> Outcome:
        c = self.owner.campaign(self.path_id(call))
        return Outcome(
            data=[Resource("campaign-message", m, {}) for m in c.message_ids], identifiers_only=True
        )

    def get_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        return Outcome(
            data=self.owner.message_resource(m), included=self._message_includes(call, [m])
        )

    def update_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        data = data_of(call.body, "campaign-message")
        if data.get("id") != m.id:
            raise InvalidError("data.id must match the message id in the path", pointer="/data/id")
        self._editable(m)
        attrs = attributes_of(data)
        if "definition" in attrs:
            definition = parse_definition(attrs["definition"], f"{PTR}/definition")
            if definition["channel"] != m.channel:
                raise InvalidError(
                    "a message's channel cannot change", pointer=f"{PTR}/definition/channel"
                )
            merged = copy_value(m.definition)
            given = attrs["definition"].get("content") or {}
            known = EMAIL_CONTENT if m.channel == "email" else tuple(given)
            content = {**m.content, **{k: v for k, v in given.items() if k in known}}
            merged.update(definition)
            merged["content"] = content
            m.definition = merged
        m.updated = self.ctx.now()
        return Outcome(data=self.owner.message_resource(m))

    def _editable(self, m: MessageRecord) -> None:
        c = self.campaigns.get(m.campaign_id)
        if c is not None and c.status != CampaignStatus.DRAFT:
            raise InvalidError(
                f"the campaign is {c.status!r}; only a Draft campaign's messages can change",
                pointer="/data",
            )

    def assign_template_to_campaign_message(self, call: Call) -> Outcome:
        data = data_of(call.body, "campaign-message")
        m = self._message(str(data.get("id") or ""))
        self._editable(m)
        ids = relationship_ids(data, "template", "template", many=False)
        if not ids:
            raise InvalidError(
                "relationships.template.data is required",
                pointer="/data/relationships/template/data",
            )
        source = self.templates.get(ids[0])
        if source is None:
            raise InvalidError(
                f"template {ids[0]!r} does not exist",
                pointer="/data/relationships/template/data/id",
            )
        now = self.ctx.now()
        # Klaviyo copies the template: later edits of the original do not change the message.
        m.template_id = self.owner.copy_template(source, now).id
        m.updated = now
        # The spec answers with the message's older attribute shape (label/channel/content).
        res = self.owner.message_resource(m)
        res.attributes = {
            "label": str(m.definition.get("label") or ""),
            "channel": m.channel,
            "content": {k: v for k, v in m.content.items() if k in EMAIL_CONTENT},
            "send_times": res.attributes["send_times"],
            "created_at": iso(m.created),
            "updated_at": iso(m.updated),
        }
        return Outcome(data=res)

    def get_campaign_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        return Outcome(data=self.owner.campaign_resource(self.owner.campaign(m.campaign_id)))

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

    # -- the message's image -------------------------------------------------------------

    def update_image_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        self._editable(m)
        body = call.body
        data = body.get("data") if isinstance(body, dict) else None
        iid = data.get("id") if isinstance(data, dict) else None
        images = self.ctx.images
        if not isinstance(iid, str) or images is None or iid not in images.images:
            raise InvalidError(f"image {iid!r} does not exist", pointer="/data/id")
        m.image_id = iid
        m.updated = self.ctx.now()
        return Outcome(status=204)

    def get_image_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        images = self.ctx.images
        img = images.images.get(m.image_id or "") if images is not None else None
        if images is None or img is None:
            # the spec's answer has no null image (its relationship endpoint does)
            raise NotFoundError(f"The campaign message {m.id!r} has no image.")
        return Outcome(data=images.resource(img))

    def get_image_id_for_campaign_message(self, call: Call) -> Outcome:
        m = self._message(self.path_id(call))
        if m.image_id is None:
            return Outcome(null_data=True)
        return Outcome(data=Resource("image", m.image_id, {}), identifiers_only=True)
