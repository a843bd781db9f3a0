"""Audiences from the analyses, pushed to Klaviyo: an RFM segment as a list's members, and
churn risk as a profile property.

Both go through :func:`~kbridge.push.push_profiles` (bulk import jobs, changed rows only,
resumable), with their push state in the same warehouse as the analyses. The CLI's
``analytics rfm --push`` / ``analytics churn --push`` and the service's ``segment_push``
job call these; the analyses themselves (which profiles, which scores) are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kbridge.api import AsyncClient
from kbridge.api.capabilities import ANALYTICS_PUSH
from kbridge.api.filter_builder import F
from kbridge.core import KbridgeError
from kbridge.push._engine import account_of, forget
from kbridge.push.profiles import push_profiles
from kbridge.warehouse import Warehouse

__all__ = ["CHURN_PROPERTY", "Pushed", "push_churn_risk", "push_segment"]


@dataclass(frozen=True, slots=True)
class Pushed:
    """What ``--push`` did: the list used (and whether it was created) and the ids sent."""

    segment: str
    list_id: str
    list_name: str
    created: bool
    profiles: int
    #: members removed for having left the segment (``prune`` only)
    removed: int = 0
    #: the push's counts, as ``kbridge push --json`` prints them
    counts: Mapping[str, int] | None = None


@ANALYTICS_PUSH.runs
async def push_segment(
    client: AsyncClient,
    segment: str,
    list_name: str,
    members: Sequence[tuple[str, str | None]],
    *,
    warehouse: Warehouse,
    by: str = "email",
    prune: bool = False,
    full: bool = False,
    on_job: Callable[[str | None, int], None] | None = None,
) -> Pushed:
    """Add ``profile_ids`` to the list named ``list_name``, created when no list has that name.

    ``members`` are (profile id, email) pairs; ``by`` names the one Klaviyo matches
    profiles on (``email``, or ``id`` for Klaviyo's own profile id). Klaviyo allows several
    lists with one name; the oldest is reused so that repeated pushes land on the same list.
    Members go in through profile bulk import jobs with the list attached, changed rows only
    (the push state lives in ``warehouse``): a member already pushed to this list is not
    sent again unless ``full``. With ``prune``, once
    the segment's profiles are on the list, the members outside it are removed (added
    first, so a current member is never off the list in between) and forgotten by the
    push state, so that they are added again should they rejoin.
    """
    found = [
        r
        # Klaviyo filters list names only by a list of values (any / equals with a list)
        async for r in client.lists.iter_lists(filter=F.any("name", [list_name]))
        if r.attributes.get("name") == list_name
    ]
    if found:
        target = min(found, key=lambda r: (str(r.attributes.get("created") or ""), r.id))
        list_id, created = target.id, False
    else:
        list_id, created = (await client.lists.create_list(name=list_name)).id, True
    if list_id is None:
        raise KbridgeError(f"Klaviyo answered without the id of list {list_name!r}")
    destination = f"analytics:rfm:{by}:{list_id}"
    account = await account_of(client)
    summary = await push_profiles(
        client,
        ({"id": pid, "email": email} for pid, email in members),
        warehouse=warehouse,
        id_column=by,
        properties=[],
        list_id=list_id,
        full=full,
        account_id=account,
        destination=destination,
        on_job=on_job,
    )
    removed = 0
    if prune and not created:
        keep = {pid for pid, _ in members}
        stale = [
            member
            async for member in client.lists.iter_profiles_for_list(
                list_id, fields={"profile": ["email"]}
            )
            if member.id and member.id not in keep
        ]
        if stale:
            removed = await client.lists.remove_profiles_from_list(
                list_id, profile_ids=[str(m.id) for m in stale]
            )
            # forgotten, so that a member who rejoins the segment is added again
            gone = [str(m.id if by == "id" else m.attributes.get("email") or "") for m in stale]
            forget(warehouse, account, destination, [g for g in gone if g])
    return Pushed(segment, list_id, list_name, created, len(members), removed, summary.as_dict())


@ANALYTICS_PUSH.runs
async def push_churn_risk(
    client: AsyncClient,
    scores: Sequence[tuple[str, str | None, float]],
    *,
    warehouse: Warehouse,
    by: str = "email",
    full: bool = False,
    on_job: Callable[[str | None, int], None] | None = None,
) -> Mapping[str, int]:
    """Set the ``churn_risk`` property of each scored profile (profile id, email, score),
    matched on ``by`` (``email`` or ``id``), through profile bulk import jobs, changed
    scores only; the push's counts."""
    summary = await push_profiles(
        client,
        ({"id": pid, "email": email, CHURN_PROPERTY: risk} for pid, email, risk in scores),
        warehouse=warehouse,
        id_column=by,
        properties=[CHURN_PROPERTY],
        full=full,
        destination=f"analytics:{CHURN_PROPERTY}:{by}",
        on_job=on_job,
    )
    return summary.as_dict()


#: the profile property ``analytics churn --push`` sets
CHURN_PROPERTY = "churn_risk"
