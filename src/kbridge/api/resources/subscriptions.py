"""``client.subscriptions``: marketing consent for email and SMS (bulk jobs on *Profiles*).

Klaviyo takes up to 1000 profiles per subscribe job and 100 per
unsubscribe job; larger inputs are split and sent concurrently within the
client's limiter. Both answer 202 (queued).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kbridge.api.resources._base import Progress, Service, chunked
from kbridge.api.validation import ValidationError, check_email, check_phone

__all__ = [
    "CHANNELS",
    "MAX_SUBSCRIBE",
    "MAX_UNSUBSCRIBE",
    "Contact",
    "SubscriptionsService",
]

MAX_SUBSCRIBE = 1000
MAX_UNSUBSCRIBE = 100
CHANNELS = ("email", "sms")


@dataclass(frozen=True, kw_only=True, slots=True)
class Contact:
    """Someone to (un)subscribe: an email, an E.164 phone number, or both."""

    email: str | None = None
    phone_number: str | None = None

    @classmethod
    def parse(cls, text: str) -> Contact:
        """``+15005550006`` is a phone number, anything else an email."""
        return cls(phone_number=text) if text.startswith("+") else cls(email=text)


def _channels(channels: Sequence[str]) -> tuple[bool, bool]:
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        raise ValidationError("channels", f"choose from {', '.join(CHANNELS)}; got {channels!r}")
    return "email" in channels, "sms" in channels


def _profile(
    contact: Contact, index: int, email_on: bool, sms_on: bool, consent: str
) -> dict[str, Any]:
    where = f"profiles[{index}]"
    attrs: dict[str, Any] = {}
    subs: dict[str, Any] = {}
    if contact.email is not None:
        attrs["email"] = check_email(contact.email, f"{where}.email")
    if contact.phone_number is not None:
        attrs["phone_number"] = check_phone(contact.phone_number, f"{where}.phone_number")
    if email_on and "email" in attrs:
        subs["email"] = {"marketing": {"consent": consent}}
    if sms_on and "phone_number" in attrs:
        subs["sms"] = {"marketing": {"consent": consent}}
    if not subs:
        raise ValidationError(
            where,
            "has no identifier for the chosen channel(s) (email needs an email, "
            "sms a phone number)",
        )
    attrs["subscriptions"] = subs
    return {"type": "profile", "attributes": attrs}


def _contacts(profiles: Sequence[Contact | str]) -> list[Contact]:
    if not profiles:
        raise ValidationError("profiles", "give at least one email or phone number")
    return [p if isinstance(p, Contact) else Contact.parse(p) for p in profiles]


class SubscriptionsService(Service):
    async def bulk_subscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        custom_source: str | None = None,
        historical_import: bool | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Subscribe to marketing (optionally into ``list_id``); returns how many were sent.

        Args:
            list_id: the list to subscribe into
            channels: email and/or sms (repeatable; default email)
            custom_source: where the consent was collected, e.g. a form's name
            historical_import: consent collected in the past (no confirmation sent)
        """
        email_on, sms_on = _channels(channels)
        contacts = _contacts(profiles)
        rows = [_profile(c, i, email_on, sms_on, "SUBSCRIBED") for i, c in enumerate(contacts)]

        async def send(chunk: Sequence[Any]) -> None:
            attrs: dict[str, Any] = {"profiles": {"data": list(chunk)}}
            if custom_source is not None:
                attrs["custom_source"] = custom_source
            if historical_import is not None:
                attrs["historical_import"] = historical_import
            data: dict[str, Any] = {
                "type": "profile-subscription-bulk-create-job",
                "attributes": attrs,
            }
            if list_id is not None:
                data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
            await self._send("bulk_subscribe_profiles", json={"data": data})

        await self._run_chunks(chunked(rows, MAX_SUBSCRIBE), send, progress)
        return len(rows)

    async def bulk_unsubscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        progress: Progress | None = None,
    ) -> int:
        """Unsubscribe from marketing; with ``list_id`` a non-member is unsubscribed globally.

        Args:
            list_id: the list to unsubscribe from
            channels: email and/or sms (repeatable; default email)
        """
        email_on, sms_on = _channels(channels)
        contacts = _contacts(profiles)
        rows = [_profile(c, i, email_on, sms_on, "UNSUBSCRIBED") for i, c in enumerate(contacts)]

        async def send(chunk: Sequence[Any]) -> None:
            data: dict[str, Any] = {
                "type": "profile-subscription-bulk-delete-job",
                "attributes": {"profiles": {"data": list(chunk)}},
            }
            if list_id is not None:
                data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
            await self._send("bulk_unsubscribe_profiles", json={"data": data})

        await self._run_chunks(chunked(rows, MAX_UNSUBSCRIBE), send, progress)
        return len(rows)
