"""Finding a subject's profiles: every spelling Klaviyo treats as the same person.

Email filters are exact, so the address is searched as given and lower-cased
(Klaviyo compares emails case-insensitively, and a profile created through
another channel may hold either spelling); a phone number is searched as
given. Email and phone may match different profiles: all of them are
returned, each once, in the order found.
"""

from __future__ import annotations

from collections.abc import Sequence

from kbridge.api import AsyncClient, Resource
from kbridge.api.filter_builder import F
from kbridge.privacy.subjects import Subject

__all__ = ["find_profiles", "remaining_profiles"]

#: ``any(id,[…])`` takes at most a page's worth of values
_ID_CHUNK = 100


async def find_profiles(
    client: AsyncClient, subject: Subject, *, consent: bool = False
) -> list[Resource]:
    """Every live profile holding the subject's email (any case variant) or phone number.

    With ``consent`` the profiles carry their ``subscriptions`` attribute.
    """
    extra = {"profile": ["subscriptions"]} if consent else None
    filters = []
    if subject.email is not None:
        filters.append(F.any("email", subject.email_variants()))
    if subject.phone_number is not None:
        filters.append(F.equals("phone_number", subject.phone_number))
    found: dict[str, Resource] = {}
    for expr in filters:
        async for profile in client.profiles.iter_profiles(filter=expr, additional_fields=extra):
            if profile.id is not None:
                found.setdefault(profile.id, profile)
    return list(found.values())


async def remaining_profiles(client: AsyncClient, profile_ids: Sequence[str]) -> list[str]:
    """Which of ``profile_ids`` still exist (a deleted profile is no longer found)."""
    left: list[str] = []
    ids = list(dict.fromkeys(profile_ids))
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        async for profile in client.profiles.iter_profiles(
            filter=F.any("id", chunk), fields={"profile": ["email"]}
        ):
            if profile.id is not None:
                left.append(profile.id)
    return left
