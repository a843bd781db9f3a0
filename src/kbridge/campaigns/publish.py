"""Publish an email campaign in one call: create, attach content, check, schedule; and undo it.

:func:`publish` creates the campaign (a ``static`` send strategy for a given
time, ``immediate`` for now), gives its message a template (an existing one,
or a CODE template made from HTML, which Klaviyo copies onto the message and
which is then deleted), asks Klaviyo how many people it would reach (an empty
audience fails here, and the draft is deleted), queues the send job and
reads the campaign back. A send that Klaviyo cancels at once (unverified
sender, nobody left) raises the matching error; for a later send time the
same problems show in :func:`campaign_status` once the time has come.

:func:`cancel` stops a queued or sending campaign for good (Klaviyo's send
job ``cancel``); :func:`revert` puts a scheduled one back to Draft so it can
be edited and published again. The send job's id is the campaign's id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kbridge.api import AsyncClient
from kbridge.api.capabilities import (
    CAMPAIGN_CONTROL,
    CAMPAIGN_PUBLISH,
    CAMPAIGN_SCHEDULE,
    Workflow,
)
from kbridge.api.errors import InvalidRequestError
from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources import email_message
from kbridge.api.validation import ValidationError
from kbridge.campaigns._common import explained
from kbridge.campaigns.errors import (
    AudienceEmptyError,
    SenderNotVerifiedError,
    SendFailedError,
    SendTimeInPastError,
)
from kbridge.core import Clock, SystemClock
from kbridge.core.clock import utc

__all__ = [
    "PUBLISH_OPERATIONS",
    "SCHEDULE_OPERATIONS",
    "CampaignState",
    "PublishRequest",
    "campaign_status",
    "cancel",
    "explain_status",
    "publish",
    "revert",
    "schedule",
]

#: every operation :func:`publish` may call (its 403 names all their scopes)
PUBLISH_OPERATIONS = CAMPAIGN_PUBLISH.operations
SCHEDULE_OPERATIONS = CAMPAIGN_SCHEDULE.operations

#: how often to ask whether Klaviyo's recipient estimate is ready (one second apart)
ESTIMATE_POLLS = 10

#: what a cancelled status means for whoever publishes (Klaviyo's status values)
_STATUS_HINTS = {
    "Cancelled: Misconfigured": "the sender is not verified (or the content is incomplete): "
    "verify the from address in Klaviyo (Settings > Domains and senders)",
    "Cancelled: No Recipients": "nobody in the audience can receive email: check the lists, "
    "segments and exclusions",
    "Cancelled: Smart Sending": "Smart Sending skipped everyone (each got an email in the "
    "last 16 hours); publish again with --no-smart-sending to send anyway",
    "Cancelled": "the send was cancelled",
}


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One email campaign to publish.

    Exactly one of ``template_id`` and ``html`` gives the content. ``send_at``
    ``None`` means now; otherwise it must be timezone-aware and in the future.
    ``local_time`` sends at ``send_at``'s wall-clock time in each recipient's
    timezone. ``utm`` adds UTM parameters to links (``{"utm_source": "kbridge"}``).
    ``draft`` stops before the send: the campaign stays a Draft (with its send time, if
    any) for :func:`schedule` to publish later.
    """

    name: str
    included: Sequence[str]
    subject: str
    from_email: str
    from_label: str
    excluded: Sequence[str] = ()
    template_id: str | None = None
    html: str | None = None
    text: str | None = None
    preview_text: str | None = None
    send_at: datetime | None = None
    local_time: bool = False
    smart_sending: bool = True
    track_opens: bool = True
    track_clicks: bool = True
    utm: Mapping[str, str] = field(default_factory=dict)
    draft: bool = False


@dataclass(frozen=True, slots=True)
class CampaignState:
    """Where a campaign stands: what a script needs (``as_json``) and what a person reads."""

    id: str
    name: str
    status: str
    send_time: str | None = None
    message_ids: tuple[str, ...] = ()
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "status": self.status}
        out["send_time"] = self.send_time
        out["message_ids"] = list(self.message_ids)
        if self.problem is not None:
            out["problem"] = self.problem
        return out


def explain_status(status: str) -> str | None:
    """Why a campaign in ``status`` did not (or will not) send, and what to change; else None."""
    if not status.startswith("Cancelled"):
        return None
    return _STATUS_HINTS.get(status, f"Klaviyo cancelled the send ({status})")


def _state(resource: Resource) -> CampaignState:
    attrs = resource.attributes
    status = str(attrs.get("status") or "")
    linked = resource.relationships.get("campaign-messages")
    data = linked.get("data") if isinstance(linked, Mapping) else None
    ids = tuple(str(d["id"]) for d in data or () if isinstance(d, Mapping) and d.get("id"))
    return CampaignState(
        id=resource.id or "",
        name=str(attrs.get("name") or ""),
        status=status,
        send_time=attrs.get("send_time"),
        message_ids=ids,
        problem=explain_status(status),
    )


def _check_request(request: PublishRequest, now: datetime) -> None:
    if (request.template_id is None) == (request.html is None):
        raise ValidationError("content", "give exactly one of a template id or the HTML")
    if request.html is not None and not request.html.strip():
        raise ValidationError("html", "the HTML is empty")
    if not request.included:
        raise ValidationError("included", "name at least one list or segment")
    if request.send_at is not None:
        when = utc(request.send_at)
        if when <= now:
            raise SendTimeInPastError(when.isoformat(), now.isoformat())


def _iso(when: datetime) -> str:
    return utc(when).isoformat().replace("+00:00", "Z")


def _campaign_body(request: PublishRequest) -> dict[str, Any]:
    message = email_message(
        subject=request.subject,
        from_email=request.from_email,
        from_label=request.from_label,
        preview_text=request.preview_text,
    )
    if request.send_at is None:
        strategy: dict[str, Any] = {"method": "immediate"}
    else:
        strategy = {
            "method": "static",
            "datetime": _iso(request.send_at),
            "options": {"is_local": request.local_time},
        }
    tracking: dict[str, Any] = {
        "is_tracking_opens": request.track_opens,
        "is_tracking_clicks": request.track_clicks,
        "add_tracking_params": bool(request.utm),
    }
    if request.utm:
        tracking["custom_tracking_params"] = [
            {"type": "static", "value": value, "name": name} for name, value in request.utm.items()
        ]
    attrs = {
        "name": request.name,
        "audiences": {"included": list(request.included), "excluded": list(request.excluded)},
        "send_strategy": strategy,
        "send_options": {"use_smart_sending": request.smart_sending},
        "tracking_options": tracking,
        "campaign-messages": {
            "data": [{"type": "campaign-message", "attributes": {"definition": message}}]
        },
    }
    return build_document("campaign", attributes=attrs)


async def publish(
    client: AsyncClient, request: PublishRequest, *, clock: Clock | None = None
) -> CampaignState:
    """Create, fill, check and schedule ``request`` (or leave it a Draft, ``request.draft``);
    the campaign as Klaviyo then reports it.

    Raises :class:`SendTimeInPastError` before anything is created,
    :class:`AudienceEmptyError` (the draft is deleted), and for a send that
    Klaviyo cancels at once :class:`SenderNotVerifiedError`/:class:`SendFailedError`.
    """
    clock = clock or SystemClock()
    _check_request(request, clock.now())
    with explained("create the campaign", CAMPAIGN_PUBLISH):
        try:
            doc = await client.get_document("create_campaign", json=_campaign_body(request))
        except InvalidRequestError as exc:
            pointer, detail = exc.source_pointer or "", (exc.detail or "").lower()
            in_past = "past" in detail or "future" in detail
            if "send_strategy/datetime" in pointer and in_past and request.send_at is not None:
                # Klaviyo's clock is the one that counts when ours lags behind it
                raise SendTimeInPastError(utc(request.send_at).isoformat(), None) from None
            raise
        created = doc.first
        if created is None or created.id is None:
            raise ValidationError("campaign", "Klaviyo answered the create without a campaign")
        campaign_id = created.id
    try:
        await _attach_content(client, campaign_id, request)
        if await _estimated_recipients(client, campaign_id, clock) == 0:
            raise AudienceEmptyError(request.included, campaign_id)
    except BaseException:
        # a half-made draft would linger beside the one a retry makes: remove it
        with explained("delete the unfinished draft", CAMPAIGN_PUBLISH):
            await client.campaigns.delete_campaign(campaign_id)
        raise
    if request.draft:
        with explained("read the campaign", CAMPAIGN_PUBLISH):
            return _state(await client.campaigns.get_campaign(campaign_id))
    return await _send(client, campaign_id, request.from_email, request.included)


async def _send(
    client: AsyncClient,
    campaign_id: str,
    from_email: str,
    audience: Sequence[str],
    workflow: Workflow = CAMPAIGN_PUBLISH,
) -> CampaignState:
    """Queue the send job and read the campaign back; a send cancelled at once raises."""
    with explained("schedule the send", workflow):
        await client.campaigns.send_campaign(campaign_id)
        state = _state(await client.campaigns.get_campaign(campaign_id))
    if state.status == "Cancelled: Misconfigured":
        raise SenderNotVerifiedError(campaign_id, from_email)
    if state.status == "Cancelled: No Recipients":
        raise AudienceEmptyError(audience, campaign_id)
    if state.status.startswith("Cancelled"):
        raise SendFailedError(campaign_id, state.status)
    return state


async def schedule(
    client: AsyncClient,
    campaign_id: str,
    *,
    send_at: datetime | None = None,
    clock: Clock | None = None,
) -> CampaignState:
    """Publish an existing Draft again (e.g. after :func:`revert`), optionally at a new time."""
    clock = clock or SystemClock()
    now = clock.now()
    if send_at is not None and utc(send_at) <= now:
        raise SendTimeInPastError(utc(send_at).isoformat(), now.isoformat())
    with explained("read the campaign", CAMPAIGN_SCHEDULE):
        campaign = await client.campaigns.get_campaign(campaign_id)
        if send_at is not None:
            # a new time keeps the campaign's local-time choice (the service would drop it)
            old = campaign.attributes.get("send_strategy") or {}
            strategy: dict[str, Any] = {"method": "static", "datetime": _iso(send_at)}
            if isinstance(old.get("options"), Mapping):
                strategy["options"] = {"is_local": bool(old["options"].get("is_local"))}
            body = build_document(
                "campaign", id=campaign_id, attributes={"send_strategy": strategy}
            )
            await client.get_document("update_campaign", path_params={"id": campaign_id}, json=body)
        messages = await client.campaigns.get_messages_for_campaign(campaign_id)
    audience = campaign.attributes.get("audiences") or {}
    content = messages[0].attributes.get("definition", {}).get("content", {}) if messages else {}
    return await _send(
        client,
        campaign_id,
        str(content.get("from_email") or ""),
        list(audience.get("included") or ()),
        CAMPAIGN_SCHEDULE,
    )


async def _attach_content(client: AsyncClient, campaign_id: str, request: PublishRequest) -> None:
    with explained("attach the content", CAMPAIGN_PUBLISH):
        messages = await client.campaigns.get_messages_for_campaign(campaign_id)
        message_id = messages[0].id if messages else None
        if message_id is None:
            raise ValidationError("campaign", f"campaign {campaign_id} has no message")
        if request.template_id is not None:
            await client.campaigns.assign_template_to_campaign_message(
                message_id, template_id=request.template_id
            )
            return
        made = await client.templates.create_template(
            name=f"{request.name} ({campaign_id})", html=request.html, text=request.text
        )
        assert made.id is not None
        try:
            await client.campaigns.assign_template_to_campaign_message(
                message_id, template_id=made.id
            )
        finally:
            # the message holds its own copy; the one made here would only clutter the library
            await client.templates.delete_template(made.id)


async def _estimated_recipients(client: AsyncClient, campaign_id: str, clock: Clock) -> int | None:
    """Klaviyo's count of who would receive the campaign now; None if it is not ready in time."""
    with explained("check the audience", CAMPAIGN_PUBLISH):
        body = {"data": {"type": "campaign-recipient-estimation-job", "id": campaign_id}}
        await client.get_document("refresh_campaign_recipient_estimation", json=body)
        for attempt in range(ESTIMATE_POLLS):
            job = await client.get_document(
                "get_campaign_recipient_estimation_job", path_params={"id": campaign_id}
            )
            if job.first is not None and job.first.attributes.get("status") == "complete":
                break
            if attempt == ESTIMATE_POLLS - 1:
                return None
            await clock.sleep(1.0)
        doc = await client.get_document(
            "get_campaign_recipient_estimation", path_params={"id": campaign_id}
        )
    count = doc.first.attributes.get("estimated_recipient_count") if doc.first else None
    return int(count) if isinstance(count, int | float) else None


async def campaign_status(client: AsyncClient, campaign_id: str) -> CampaignState:
    """The campaign's status now (with what to change when Klaviyo cancelled it)."""
    with explained("read the campaign", CAMPAIGN_CONTROL):
        return _state(await client.campaigns.get_campaign(campaign_id))


async def cancel(client: AsyncClient, campaign_id: str) -> CampaignState:
    """Stop a scheduled or sending campaign for good (it becomes ``Cancelled``)."""
    with explained("cancel the send", CAMPAIGN_CONTROL):
        await client.campaigns.cancel_campaign_send(campaign_id, action="cancel")
        return _state(await client.campaigns.get_campaign(campaign_id))


async def revert(client: AsyncClient, campaign_id: str) -> CampaignState:
    """Put a scheduled campaign back to ``Draft`` (a sending one can only be cancelled)."""
    with explained("revert the send", CAMPAIGN_CONTROL):
        await client.campaigns.cancel_campaign_send(campaign_id, action="revert")
        return _state(await client.campaigns.get_campaign(campaign_id))
