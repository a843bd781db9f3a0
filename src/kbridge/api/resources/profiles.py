"""``client.profiles``: create, read, list and update profiles (Klaviyo tag *Profiles*)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Unpack

from kbridge.api.filter_builder import F
from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params, shared_args
from kbridge.api.validation import (
    ValidationError,
    check_email,
    check_payload_size,
    check_phone,
)

__all__ = ["LOCATION_KEYS", "MAX_FILTER_VALUES", "ProfilesService", "profile_attributes"]

#: values one ``any(field,[…])`` filter carries (Klaviyo caps list filters at 100)
MAX_FILTER_VALUES = 100

LOCATION_KEYS = (
    "address1",
    "address2",
    "city",
    "country",
    "region",
    "zip",
    "timezone",
    "latitude",
    "longitude",
    "ip",
)


def profile_attributes(
    *,
    email: str | None = None,
    phone_number: str | None = None,
    external_id: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    organization: str | None = None,
    title: str | None = None,
    image: str | None = None,
    locale: str | None = None,
    location: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Profile attributes, validated; ``None`` means "leave unchanged" and is not sent."""
    attrs: dict[str, Any] = {}
    if email is not None:
        attrs["email"] = check_email(email)
    if phone_number is not None:
        attrs["phone_number"] = check_phone(phone_number)
    simple = {
        "external_id": external_id,
        "first_name": first_name,
        "last_name": last_name,
        "organization": organization,
        "title": title,
        "image": image,
        "locale": locale,
    }
    attrs.update({k: v for k, v in simple.items() if v is not None})
    for name, value in (("location", location), ("properties", properties)):
        if value is not None and not isinstance(value, Mapping):
            raise ValidationError(name, f"must be a mapping (a JSON object), not {value!r:.40}")
    if location is not None:
        unknown = sorted(set(location) - set(LOCATION_KEYS))
        if unknown:
            raise ValidationError(
                "location", f"unknown key(s) {', '.join(unknown)}; use {', '.join(LOCATION_KEYS)}"
            )
        attrs["location"] = dict(location)
    if properties is not None:
        check_payload_size(properties, "properties")
        attrs["properties"] = dict(properties)
    check_payload_size(attrs, "profile")
    return attrs


#: the profile fields' help, for every method that writes a profile
_PROFILE_ARGS = """
    Args:
        email: email address
        phone_number: E.164 phone number, e.g. +15005550006
        external_id: your system's id
        image: image URL
        locale: e.g. en-US
        location: address fields, e.g. {"city": "Paris"}
        properties: custom properties
"""


def _require_identifier(
    email: str | None, phone_number: str | None, external_id: str | None
) -> None:
    """A new profile needs something Klaviyo can identify it by."""
    if email is None and phone_number is None and external_id is None:
        raise ValidationError(
            "email", "a profile needs at least one of email, phone_number, external_id"
        )


class ProfilesService(Service):
    """Profiles: the people in the account, keyed by email, phone, external id or Klaviyo id."""

    async def get_profiles(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """The first page of profiles (``iter_profiles`` walks them all)."""
        return await self._page("get_profiles", query)

    def iter_profiles(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Every profile matching ``filter``, page by page."""
        return self._all("get_profiles", query)

    async def get_profile(
        self,
        profile_id: str,
        *,
        fields: Mapping[str, str | Sequence[str]] | None = None,
        include: str | Sequence[str] | None = None,
        additional_fields: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Resource:
        params = list_params(
            "get_profile", fields=fields, include=include, additional_fields=additional_fields
        )
        return await self._one("get_profile", path_params={"id": profile_id}, params=params)

    @shared_args(_PROFILE_ARGS)
    async def create_profile(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """Create a profile (409 ``ConflictError`` with ``duplicate_profile_id`` if one exists)."""
        _require_identifier(email, phone_number, external_id)
        attrs = profile_attributes(
            email=email,
            phone_number=phone_number,
            external_id=external_id,
            first_name=first_name,
            last_name=last_name,
            organization=organization,
            title=title,
            image=image,
            locale=locale,
            location=location,
            properties=properties,
        )
        return await self._one("create_profile", json=build_document("profile", attributes=attrs))

    @shared_args(_PROFILE_ARGS)
    async def update_profile(
        self,
        profile_id: str,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """Change the given attributes; the others stay as they are."""
        attrs = profile_attributes(
            email=email,
            phone_number=phone_number,
            external_id=external_id,
            first_name=first_name,
            last_name=last_name,
            organization=organization,
            title=title,
            image=image,
            locale=locale,
            location=location,
            properties=properties,
        )
        body = build_document("profile", id=profile_id, attributes=attrs)
        return await self._one("update_profile", path_params={"id": profile_id}, json=body)

    @shared_args(_PROFILE_ARGS)
    async def create_or_update_profile(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """Create the profile, or update the one already holding an identifier (Klaviyo's
        profile import: email, then phone number, then external id pick the profile).

        Unlike :meth:`create_profile` an existing person is no 409: the given attributes
        are written to them and the others stay as they are.

        """
        _require_identifier(email, phone_number, external_id)
        attrs = profile_attributes(
            email=email,
            phone_number=phone_number,
            external_id=external_id,
            first_name=first_name,
            last_name=last_name,
            organization=organization,
            title=title,
            image=image,
            locale=locale,
            location=location,
            properties=properties,
        )
        body = build_document("profile", attributes=attrs)
        return await self._one("create_or_update_profile", json=body)

    async def profile_ids_for_emails(self, emails: Sequence[str]) -> dict[str, str]:
        """Each given email (as given) that has a profile → that profile's id.

        Emails are matched without regard to case, as Klaviyo stores them; an email
        without a profile is absent from the result.
        """
        wanted = {check_email(e).lower(): e for e in emails}
        found: dict[str, str] = {}
        keys = list(wanted)
        step = MAX_FILTER_VALUES // 2
        for start in range(0, len(keys), step):
            # as typed and in lower case: whether a filter matches case-insensitively is
            # not documented, and stored addresses are mostly lower case
            chunk = list(
                dict.fromkeys(
                    v for k in keys[start : start + step] for v in (check_email(wanted[k]), k)
                )
            )
            query: ListQuery = {
                "filter": str(F.any("email", chunk)),
                "fields": {"profile": ["email"]},
                "page_size": MAX_FILTER_VALUES,
            }
            async for profile in self._all("get_profiles", query):
                email = str(profile.attributes.get("email") or "").lower()
                if email in wanted and profile.id:
                    found[wanted[email]] = profile.id
        return found
