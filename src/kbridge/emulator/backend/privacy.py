"""Data privacy: ``POST /api/data-privacy-deletion-jobs`` removes a profile and its events.

The request names exactly one identifier (``email``, ``phone_number`` or the
profile ``id``) and is answered 202 with no body. The deletion runs as a job
``config.deletion_delay_seconds`` later on the simulated clock; identifiers
are matched then, so every profile holding the identifier at that moment
goes. A deleted profile:

- is gone from every identifier index (a filter search no longer finds it,
  and the email is free for a new profile) and ``GET`` by id is 404;
- keeps no personal data: identifiers, names, location and properties are
  cleared in the record that stays behind as the ``deleted`` tombstone;
- leaves every list (segments follow, as they skip deleted profiles);
- loses its events: they leave the time, metric and profile indexes (so
  event queries need no extra check) and their ids answer 404
  (``store.deleted_events``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    check_email,
    check_phone,
    data_of,
    required_jobs,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.models import JobRecord, ProfileRecord

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["DELETION_JOB", "PrivacyBackend", "delete_profile"]

DELETION_JOB = "data-privacy-deletion-job"
_PTR = "/data/attributes/profile/data"


def _remove(index: array[int], i: int, key: tuple[float, int], ts: Any) -> None:
    """Drop event ``i`` from an index sorted by ``(ts, i)``."""
    k = bisect_left(index, key, key=lambda j: (ts[j], j))
    if k < len(index) and index[k] == i:
        del index[k]
    elif i in index:  # not where its key says: slow path, still correct
        index.remove(i)


def delete_profile(ctx: Context, p: ProfileRecord) -> int:
    """Remove ``p`` and its events from the account; returns how many events went."""
    store = ctx.store
    now = ctx.now()

    def forget() -> None:
        p.deleted = True
        p.email = p.phone_number = p.external_id = None
        p.first_name = p.last_name = p.organization = p.title = p.image = None
        p.locale = None
        p.location = None
        p.properties = {}
        p.predictive = None

    store.change_profile(p, now, forget)
    for lst in store.lists.values():
        lst.members.pop(p.seq, None)
    ev = store.events
    mine = store.events_by_profile.pop(p.seq, array("l"))
    for i in mine:
        key = (ev.ts[i], i)
        _remove(store.event_order, i, key, ev.ts)
        by_metric = store.events_by_metric.get(ev.metric[i])
        if by_metric is not None:
            _remove(by_metric, i, key, ev.ts)
        _, unique_id = ev.extra.pop(i, ({}, None))
        if unique_id is not None:
            store.unique_ids.pop((ev.metric[i], p.seq, unique_id), None)
        store.delete_event(i)
    store.touch()
    return len(mine)


class PrivacyBackend(TagBackend):
    operations = frozenset({"request_profile_deletion"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        jobs = required_jobs(ctx)
        self._jobs = jobs
        jobs.handlers[DELETION_JOB] = self._run

    def request_profile_deletion(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, DELETION_JOB))
        profile = attrs.get("profile")
        pdata = profile.get("data") if isinstance(profile, dict) else None
        if not isinstance(pdata, dict) or pdata.get("type") != "profile":
            raise InvalidError("profile.data must be a {type: 'profile', …} object", pointer=_PTR)
        pattrs = pdata.get("attributes") or {}
        if not isinstance(pattrs, dict):
            raise InvalidError("profile attributes must be an object", pointer=f"{_PTR}/attributes")
        given = self._identifiers(pdata, pattrs)
        if len(given) != 1:
            named = ", ".join(f for f, _ in given) or "none"
            raise InvalidError(
                f"give exactly one identifier (email, phone_number or the profile id); got {named}",
                pointer=_PTR,
            )
        field, value = given[0]
        job = self._jobs.schedule(DELETION_JOB, (field, value), total=1)
        job.due = job.created + max(0.0, self.ctx.config.deletion_delay_seconds)
        return Outcome(status=202)

    @staticmethod
    def _identifiers(pdata: dict[str, Any], attrs: dict[str, Any]) -> list[tuple[str, str]]:
        given: list[tuple[str, str]] = []
        if pdata.get("id") is not None:
            if not isinstance(pdata["id"], str) or not pdata["id"]:
                raise InvalidError("id must be a profile id", pointer=f"{_PTR}/id")
            given.append(("id", pdata["id"]))
        if attrs.get("email") is not None:
            given.append(("email", check_email(attrs["email"], f"{_PTR}/attributes/email")))
        if attrs.get("phone_number") is not None:
            phone = check_phone(attrs["phone_number"], f"{_PTR}/attributes/phone_number")
            given.append(("phone_number", phone))
        return given

    def _run(self, job: JobRecord) -> None:
        field, value = job.payload
        p = self.store.find_identifier(field, value)
        if p is None:
            job.skipped_count = 1
            return
        delete_profile(self.ctx, p)
        job.completed_count = 1
        job.profile_seqs.append(p.seq)
