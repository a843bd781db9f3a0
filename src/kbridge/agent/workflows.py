"""Workflow tools: privacy access and two-step deletion, campaign control with dry runs, scopes.

``privacy_delete`` never deletes on the first call: it looks the person up and
answers with every matched profile and a short-lived, single-use
``confirm_token``. Only a call with that token, for the same person on the same
connection, before it expires, deletes — and then it looks the person up again
and refuses if the matches changed, so what is deleted is what was shown. It
then waits for Klaviyo's confirmation as ``kbridge privacy delete`` does, purges
the person from the warehouse (when one is configured) and writes the same audit log.

The campaign tools (``campaign_schedule``, ``campaign_cancel``,
``campaign_revert``) default to a dry run that reads the campaign and says what
would happen; ``dry_run: false`` acts.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kbridge import catalog
from kbridge.agent.tools import ToolSpec, plain
from kbridge.api.capabilities import (
    CAMPAIGN_CONTROL,
    CAMPAIGN_PUBLISH,
    CAMPAIGN_SCHEDULE,
    PRIVACY_ACCESS,
    PRIVACY_DELETE,
    Workflow,
)
from kbridge.api.validation import ValidationError
from kbridge.campaigns import PublishRequest, campaign_status, cancel, publish, revert, schedule
from kbridge.core import Clock, KbridgeError
from kbridge.privacy import (
    DeletionBatch,
    Subject,
    access_reports,
    execute_deletions,
    parse_subject,
    plan_deletions,
)
from kbridge.warehouse import open_warehouse

if TYPE_CHECKING:
    from kbridge.agent.server import Call

__all__ = ["WORKFLOW_CONVENTIONS", "ConfirmTokenError", "ConfirmTokens", "workflow_tools"]


class ConfirmTokenError(KbridgeError):
    """A confirm_token that is unknown, expired, used, or for someone else."""


@dataclass(frozen=True, slots=True)
class _Pending:
    connection: str
    subject: tuple[str, ...]
    profile_ids: tuple[str, ...]
    expires: float


class ConfirmTokens:
    """Single-use deletion tokens, each for one person on one connection, expiring on ``clock``."""

    def __init__(self, clock: Clock, *, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._pending: dict[str, _Pending] = {}

    @property
    def ttl(self) -> float:
        return self._ttl

    def issue(self, connection: str, subject: Subject, profile_ids: tuple[str, ...]) -> str:
        now = self._clock.monotonic()
        self._pending = {t: p for t, p in self._pending.items() if p.expires > now}
        token = secrets.token_urlsafe(18)
        self._pending[token] = _Pending(
            connection, subject.normalised, profile_ids, now + self._ttl
        )
        return token

    def redeem(self, token: str, connection: str, subject: Subject) -> tuple[str, ...]:
        """The profile ids the token was issued for; it cannot be used again."""
        pending = self._pending.pop(token, None)
        if pending is None:
            raise ConfirmTokenError(
                "confirm_token is unknown or already used: call privacy_delete without it first"
            )
        if pending.expires <= self._clock.monotonic():
            raise ConfirmTokenError(
                "confirm_token has expired: call privacy_delete without it for a new one"
            )
        if pending.connection != connection or pending.subject != subject.normalised:
            raise ConfirmTokenError("confirm_token was issued for another person or connection")
        return pending.profile_ids


def _scopes(*workflows: Workflow) -> tuple[str, ...]:
    return tuple(
        sorted({s for w in workflows for op in w.operations for s in catalog.get(op).scopes})
    )


def _subject(args: Mapping[str, Any]) -> Subject:
    email, phone = args.get("email"), args.get("phone")
    if not email and not phone:
        raise ValidationError("email", "give email or phone")
    return Subject(
        email=parse_subject(str(email)).email if email else None,
        phone_number=parse_subject(str(phone)).phone_number if phone else None,
    )


# -- privacy -------------------------------------------------------------------------------
async def _access(call: Call, args: Mapping[str, Any]) -> Any:
    subject = _subject(args)
    reports = await access_reports(
        call.account.client, [subject], audit=call.agent.audit, events=bool(args.get("events"))
    )
    return plain(reports[0])


def _matches(batch: DeletionBatch) -> list[dict[str, Any]]:
    return [
        {"id": m.id, "email": m.email, "phone_number": m.phone_number}
        for p in batch.plans
        for m in p.matches
    ]


async def _delete(call: Call, args: Mapping[str, Any]) -> Any:
    subject = _subject(args)
    agent, account = call.agent, call.account
    token = args.get("confirm_token")
    batch = await plan_deletions(account.client, [subject], audit=agent.audit)
    plan = batch.plans[0]
    if plan.error is not None:
        raise ConfirmTokenError(f"could not look the person up: {plan.error}")
    found = tuple(sorted(m.id for m in plan.matches))
    if token is None:
        issued = agent.tokens.issue(account.name, subject, found)
        return {
            "deleted": False,
            "matched_profiles": _matches(batch),
            "confirm_token": issued,
            "expires_in_seconds": agent.tokens.ttl,
            "next": "call privacy_delete again with this confirm_token to delete "
            + (f"these {len(found)} profile(s)" if found else "by identifier (no profile matched)"),
        }
    shown = agent.tokens.redeem(str(token), account.name, subject)
    if not plan.resuming and shown != found:
        raise ConfirmTokenError(
            "the matched profiles changed since the token was issued: nothing deleted; "
            "call privacy_delete without a token to see them again"
        )
    # as `kbridge privacy delete` does, the warehouse copy goes too (a writable connection
    # for this one purge: the SQL tools' connections are read-only and closed after each call)
    url = agent.warehouse_url
    if agent.warehouse is not None:
        # one process may not hold the file read-only and read-write at once
        await asyncio.to_thread(agent.warehouse.release)
    warehouse = None if url is None else await asyncio.to_thread(open_warehouse, url)
    try:
        results = await execute_deletions(
            account.client,
            batch,
            audit=agent.audit,
            allow_ambiguous=True,  # every match was shown and confirmed with the token
            allow_unmatched=True,
            warehouse=warehouse,
            account_id=account.account_id,
            clock=agent.config.clock,
            poll=agent.config.poll,
        )
    finally:
        if warehouse is not None:
            warehouse.close()
    return {"deleted": True, **results[0].to_dict()}


# -- campaigns -----------------------------------------------------------------------------
def _campaign_id(args: Mapping[str, Any]) -> str:
    value = args.get("campaign_id")
    if not isinstance(value, str) or not value:
        raise ValidationError("campaign_id", "is required")
    return value


def _dry(args: Mapping[str, Any]) -> bool:
    value = args.get("dry_run", True)
    if not isinstance(value, bool):
        raise ValidationError("dry_run", "must be true or false")
    return value


async def _status(call: Call, args: Mapping[str, Any]) -> Any:
    return plain(await campaign_status(call.account.client, _campaign_id(args)))


def _control_tool(verb: str, act: Any, description: str, would: str) -> ToolSpec:
    """The ``campaign_<verb>`` tool: a dry run reads the campaign and says what it ``would``
    do; ``dry_run: false`` calls ``act``."""

    async def run(call: Call, args: Mapping[str, Any]) -> Any:
        client, campaign = call.account.client, _campaign_id(args)
        if _dry(args):
            state = await campaign_status(client, campaign)
            return {"dry_run": True, "campaign": plain(state), "would": would}
        return {"dry_run": False, "campaign": plain(await act(client, campaign))}

    run.__name__ = verb
    return ToolSpec(
        name=f"campaign_{verb}",
        description=description,
        handler=run,
        properties={**_CAMPAIGN, **_DRY},
        required=("campaign_id",),
        read_only=False,
        destructive=True,
        idempotent=True,
        scopes=_scopes(CAMPAIGN_CONTROL),
    )


async def _schedule(call: Call, args: Mapping[str, Any]) -> Any:
    client, campaign = call.account.client, _campaign_id(args)
    send_at = _datetime(args, "send_at")
    if _dry(args):
        state = await campaign_status(client, campaign)
        when = send_at.isoformat() if send_at else "now"
        return {"dry_run": True, "campaign": plain(state), "would": f"send the draft at {when}"}
    done = await schedule(client, campaign, send_at=send_at, clock=call.agent.config.clock)
    return {"dry_run": False, "campaign": plain(done)}


async def _publish(call: Call, args: Mapping[str, Any]) -> Any:
    request = _publish_request(args)
    now = call.agent.config.clock.now()
    if request.send_at is not None and request.send_at <= now:
        raise ValidationError("send_at", f"{request.send_at.isoformat()} is in the past")
    if _dry(args):
        content = f"template {request.template_id}" if request.template_id else "the HTML"
        when = request.send_at.isoformat() if request.send_at else "now"
        return {
            "dry_run": True,
            "would": f"create email campaign {request.name!r} to {len(request.included)} "
            f"audience(s) with {content}, check the audience is not empty, send at {when}",
        }
    done = await publish(call.account.client, request, clock=call.agent.config.clock)
    return {"dry_run": False, "campaign": plain(done)}


def _text(args: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(name, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be text")
    return value


def _ids(args: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = args.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(name, "must be a list of list or segment ids")
    return tuple(value)


def _publish_request(args: Mapping[str, Any]) -> PublishRequest:
    template_id, html = _text(args, "template_id"), _text(args, "html")
    if (template_id is None) == (html is None):
        raise ValidationError("template_id", "give exactly one of template_id or html")
    included = _ids(args, "included")
    if not included:
        raise ValidationError("included", "name at least one list or segment")
    return PublishRequest(
        name=_text(args, "name", required=True) or "",
        included=included,
        excluded=_ids(args, "excluded"),
        subject=_text(args, "subject", required=True) or "",
        from_email=_text(args, "from_email", required=True) or "",
        from_label=_text(args, "from_label", required=True) or "",
        template_id=template_id,
        html=html,
        preview_text=_text(args, "preview_text"),
        send_at=_datetime(args, "send_at"),
    )


def _datetime(args: Mapping[str, Any], name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(name, f"{raw!r} is not ISO 8601") from None
    if value.tzinfo is None:
        raise ValidationError(name, "needs a timezone offset")
    return value


# -- scopes --------------------------------------------------------------------------------
async def _scopes_tool(call: Call, args: Mapping[str, Any]) -> Any:
    agent, account = call.agent, call.account
    hidden = {
        t.name: why
        for t in agent.tools.values()
        if (why := agent.why_hidden(t, account)) is not None
    }
    return {
        "connection": account.name,
        "account_id": account.account_id,
        "missing_scopes": sorted(account.missing),
        "read_only": agent.config.read_only,
        "warehouse": agent.warehouse_url is not None,
        "hidden_tools": hidden,
    }


_CAMPAIGN = {"campaign_id": {"type": "string"}}
_DRY = {"dry_run": {"type": "boolean"}}

WORKFLOW_CONVENTIONS = (
    "campaign_publish, _schedule, _cancel and _revert default to dry_run: true (read, and "
    "say what would happen); pass dry_run: false to act. privacy_delete deletes only with "
    "the confirm_token its first call returns."
)
_WHO = {
    "email": {"type": "string"},
    "phone": {"type": "string", "description": "+E.164"},
}


def workflow_tools() -> list[ToolSpec]:
    """Privacy, campaign-control and scopes tools."""
    return [
        ToolSpec(
            name="privacy_access",
            description="Everything the account holds about a person (profiles, consent, lists)",
            handler=_access,
            properties={**_WHO, "events": {"type": "boolean"}},
            scopes=_scopes(PRIVACY_ACCESS),
        ),
        ToolSpec(
            name="privacy_delete",
            description=(
                "Delete a person in two steps: without confirm_token, see the matches and get "
                "a token; with it, delete and confirm"
            ),
            handler=_delete,
            properties={**_WHO, "confirm_token": {"type": "string"}},
            read_only=False,
            destructive=True,
            idempotent=True,
            scopes=_scopes(PRIVACY_DELETE),
        ),
        ToolSpec(
            name="campaign_status",
            description="A campaign's status (and why Klaviyo cancelled it)",
            handler=_status,
            properties=_CAMPAIGN,
            required=("campaign_id",),
            # a read: the control workflow's write scope would hide it from a read-only key
            scopes=catalog.get("get_campaign").scopes,
        ),
        ToolSpec(
            name="campaign_publish",
            description="Create an email campaign with content and send or schedule it",
            handler=_publish,
            properties={
                "name": {"type": "string"},
                "included": {"type": "array", "items": {"type": "string"}},
                "excluded": {"type": "array", "items": {"type": "string"}},
                "subject": {"type": "string"},
                "from_email": {"type": "string"},
                "from_label": {"type": "string"},
                "template_id": {"type": "string", "description": "or html"},
                "html": {"type": "string"},
                "preview_text": {"type": "string"},
                "send_at": {"type": "string", "format": "date-time"},
                **_DRY,
            },
            required=("name", "included", "subject", "from_email", "from_label"),
            read_only=False,
            destructive=True,
            idempotent=False,
            scopes=_scopes(CAMPAIGN_PUBLISH),
        ),
        ToolSpec(
            name="campaign_schedule",
            description="Send a draft campaign now or at send_at",
            handler=_schedule,
            properties={
                **_CAMPAIGN,
                "send_at": {"type": "string", "format": "date-time"},
                **_DRY,
            },
            required=("campaign_id",),
            read_only=False,
            destructive=True,
            idempotent=False,
            scopes=_scopes(CAMPAIGN_SCHEDULE),
        ),
        _control_tool(
            "cancel", cancel, "Cancel a scheduled send for good", "cancel the send for good"
        ),
        _control_tool(
            "revert",
            revert,
            "Revert a scheduled campaign to a draft",
            "revert the campaign to a draft",
        ),
        ToolSpec(
            name="scopes",
            description="This connection's missing scopes and which tools are hidden, and why",
            handler=_scopes_tool,
            api=True,
        ),
    ]
