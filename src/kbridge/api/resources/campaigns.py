"""``client.campaigns``: campaigns, their messages and send jobs (Klaviyo tag *Campaigns*).

Listing campaigns requires a channel filter in Klaviyo; pass ``channel=``
(or a filter containing ``messages.channel``) — it is checked before sending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

from kbridge.api.filter_builder import F
from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params, shared_args
from kbridge.api.validation import (
    CAMPAIGN_CHANNELS,
    ValidationError,
    check_campaign_channel_filter,
    check_choice,
    check_email,
    iso,
)

__all__ = ["SEND_JOB_ACTIONS", "CampaignsService", "email_message", "sms_message"]

SEND_JOB_ACTIONS = ("cancel", "revert")


def email_message(
    *,
    subject: str,
    from_email: str,
    from_label: str | None = None,
    preview_text: str | None = None,
    reply_to_email: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """An email ``campaign-message`` definition."""
    if not subject.strip():
        raise ValidationError("subject", "must not be empty")
    content: dict[str, Any] = {
        "subject": subject,
        "from_email": check_email(from_email, "from_email"),
    }
    if from_label is not None:
        content["from_label"] = from_label
    if preview_text is not None:
        content["preview_text"] = preview_text
    if reply_to_email is not None:
        content["reply_to_email"] = check_email(reply_to_email, "reply_to_email")
    definition: dict[str, Any] = {"channel": "email", "content": content}
    if label is not None:
        definition["label"] = label
    return definition


def sms_message(*, body: str, label: str | None = None) -> dict[str, Any]:
    """An SMS ``campaign-message`` definition."""
    if not body.strip():
        raise ValidationError("sms_body", "must not be empty")
    definition: dict[str, Any] = {"channel": "sms", "content": {"body": body}}
    if label is not None:
        definition["label"] = label
    return definition


def _send_strategy(send_at: datetime | None) -> dict[str, Any]:
    if send_at is None:
        return {"method": "immediate"}
    return {"method": "static", "datetime": iso(send_at, "send_at")}


def _channel_filter(query: ListQuery, channel: str | None) -> ListQuery:
    out: ListQuery = {**query}
    if channel is not None:
        check_choice(channel, CAMPAIGN_CHANNELS, "channel")
        built = F.equals("messages.channel", channel)
        existing = out.get("filter")
        out["filter"] = f"and({built},{existing})" if existing else str(built)
    existing = out.get("filter")
    check_campaign_channel_filter(None if existing is None else str(existing))
    return out


#: the options of a campaign, new or changed
_CAMPAIGN_ARGS = """
    Args:
        name: the campaign's name
        included: a list or segment id to send to (repeatable)
        excluded: a list or segment id to leave out (repeatable)
        send_at: scheduled send time; none sends at once
        use_smart_sending: skip profiles that received a message recently
"""


class CampaignsService(Service):
    async def get_campaigns(
        self, *, channel: str | None = None, **query: Unpack[ListQuery]
    ) -> list[Resource]:
        return await self._page("get_campaigns", _channel_filter(query, channel))

    def iter_campaigns(
        self, *, channel: str | None = None, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        """Every campaign of ``channel`` (required by Klaviyo) matching ``filter``.

        Args:
            channel: required unless the filter names messages.channel
        """
        return self._all("get_campaigns", _channel_filter(query, channel))

    async def get_campaign(self, campaign_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_campaign", **query)
        return await self._one("get_campaign", path_params={"id": campaign_id}, params=params)

    @shared_args(_CAMPAIGN_ARGS)
    async def create_campaign(
        self,
        *,
        name: str,
        included: Sequence[str],
        excluded: Sequence[str] = (),
        message: Mapping[str, Any],
        send_at: datetime | None = None,
        use_smart_sending: bool | None = None,
    ) -> Resource:
        """A draft campaign to the ``included`` list/segment ids with one message definition."""
        if not name.strip():
            raise ValidationError("name", "must not be empty")
        if not included:
            raise ValidationError("included", "a campaign needs at least one list or segment id")
        attrs: dict[str, Any] = {
            "name": name,
            "audiences": {"included": list(included), "excluded": list(excluded)},
            "send_strategy": _send_strategy(send_at),
            "campaign-messages": {
                "data": [{"type": "campaign-message", "attributes": {"definition": dict(message)}}]
            },
        }
        if use_smart_sending is not None:
            attrs["send_options"] = {"use_smart_sending": use_smart_sending}
        return await self._one("create_campaign", json=build_document("campaign", attributes=attrs))

    @shared_args(_CAMPAIGN_ARGS)
    async def update_campaign(
        self,
        campaign_id: str,
        *,
        name: str | None = None,
        included: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
        send_at: datetime | None = None,
        use_smart_sending: bool | None = None,
    ) -> Resource:
        """Change the given attributes; the others stay as they are."""
        attrs: dict[str, Any] = {}
        if name is not None:
            if not name.strip():
                raise ValidationError("name", "must not be empty")
            attrs["name"] = name
        if included is not None or excluded is not None:
            audiences: dict[str, Any] = {}
            if included is not None:
                audiences["included"] = list(included)
            if excluded is not None:
                audiences["excluded"] = list(excluded)
            attrs["audiences"] = audiences
        if send_at is not None:
            attrs["send_strategy"] = _send_strategy(send_at)
        if use_smart_sending is not None:
            attrs["send_options"] = {"use_smart_sending": use_smart_sending}
        body = build_document("campaign", id=campaign_id, attributes=attrs)
        return await self._one("update_campaign", path_params={"id": campaign_id}, json=body)

    async def delete_campaign(self, campaign_id: str) -> None:
        await self._send("delete_campaign", path_params={"id": campaign_id})

    async def create_campaign_clone(
        self, campaign_id: str, *, new_name: str | None = None
    ) -> Resource:
        """A copy of the campaign, as a draft.

        Args:
            new_name: the copy's name
        """
        attrs = {"new_name": new_name} if new_name is not None else {}
        body = build_document("campaign", id=campaign_id, attributes=attrs)
        return await self._one("create_campaign_clone", json=body)

    # -- messages ---------------------------------------------------------------
    async def get_messages_for_campaign(self, campaign_id: str) -> list[Resource]:
        doc = await self._doc("get_messages_for_campaign", path_params={"id": campaign_id})
        return list(doc.resources)

    async def get_campaign_message(self, message_id: str) -> Resource:
        return await self._one("get_campaign_message", path_params={"id": message_id})

    async def update_campaign_message(
        self, message_id: str, *, definition: Mapping[str, Any]
    ) -> Resource:
        body = build_document(
            "campaign-message", id=message_id, attributes={"definition": dict(definition)}
        )
        return await self._one("update_campaign_message", path_params={"id": message_id}, json=body)

    async def assign_template_to_campaign_message(
        self, message_id: str, *, template_id: str
    ) -> Resource:
        body = build_document(
            "campaign-message", id=message_id, relationships={"template": ("template", template_id)}
        )
        return await self._one("assign_template_to_campaign_message", json=body)

    # -- send jobs --------------------------------------------------------------
    async def send_campaign(self, campaign_id: str) -> Resource | None:
        """Queue the campaign for sending (at its send strategy's time); the job, if returned."""
        body = {"data": {"type": "campaign-send-job", "id": campaign_id}}
        return (await self._doc("send_campaign", json=body)).first

    async def get_campaign_send_job(self, job_id: str) -> Resource:
        """A send job's status.

        Args:
            job_id: the send job id (the campaign's id)
        """
        return await self._one("get_campaign_send_job", path_params={"id": job_id})

    async def cancel_campaign_send(self, job_id: str, *, action: str = "cancel") -> None:
        """``cancel`` stops the send for good; ``revert`` returns the campaign to Draft.

        Args:
            job_id: the send job id
        """
        check_choice(action, SEND_JOB_ACTIONS, "action")
        body = {
            "data": {"type": "campaign-send-job", "id": job_id, "attributes": {"action": action}}
        }
        await self._send("cancel_campaign_send", path_params={"id": job_id}, json=body)
