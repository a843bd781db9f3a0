"""``client.data_privacy``: ask Klaviyo to delete a person's data (tag *Data Privacy*)."""

from __future__ import annotations

from typing import Any

from kbridge.api.resources._base import Service
from kbridge.api.validation import ValidationError, check_email, check_phone

__all__ = ["DataPrivacyService"]


class DataPrivacyService(Service):
    async def request_profile_deletion(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        profile_id: str | None = None,
    ) -> None:
        """Queue deletion of every profile matching exactly one identifier (202, asynchronous)."""
        given = [
            k
            for k, v in (
                ("email", email),
                ("phone_number", phone_number),
                ("profile_id", profile_id),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValidationError(
                "profile",
                "give exactly one of email, phone_number, profile_id"
                + (f" (got {', '.join(given)})" if given else ""),
            )
        profile: dict[str, Any] = {"type": "profile"}
        if email is not None:
            profile["attributes"] = {"email": check_email(email)}
        elif phone_number is not None:
            profile["attributes"] = {"phone_number": check_phone(phone_number)}
        else:
            profile["id"] = profile_id
        body = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": profile}},
            }
        }
        await self._send("request_profile_deletion", json=body)
