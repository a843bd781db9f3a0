"""Bulk subscribe and unsubscribe: 202 with no body, applied as a job.

Subscribing sets consent to SUBSCRIBED (``consented_at`` only with
``historical_import``, as Klaviyo requires), clears UNSUBSCRIBE,
SPAM_COMPLAINT and USER_SUPPRESSED suppressions and, when a list is given,
adds the profile to it. Double opt-in lists are not emulated as pending
confirmation: the profile is subscribed at once with ``double_optin`` set.
Unsubscribing from a list removes the profile from it and records a list
suppression; when the profile is not on the given list, or no list is given,
the unsubscribe is global (Klaviyo's documented rule).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    check_email,
    check_phone,
    data_of,
    relationship_ids,
    required_jobs,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.events import resolve_profile
from kbridge.emulator.backend.models import JobRecord, ProfileRecord

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.jobs import JobsBackend

__all__ = ["SubscriptionsBackend"]

MAX_SUBSCRIBE = 1000
MAX_UNSUBSCRIBE = 100
SUBSCRIBE = "profile-subscription-bulk-create-job"
UNSUBSCRIBE = "profile-subscription-bulk-delete-job"
_CLEARED_BY_SUBSCRIBE = frozenset({"UNSUBSCRIBE", "SPAM_COMPLAINT", "USER_SUPPRESSED"})

#: (profile data, email consent, sms marketing, sms transactional, consented_at)
_Row = tuple[dict[str, Any], bool, bool, bool, float | None]


class SubscriptionsBackend(TagBackend):
    operations = frozenset({"bulk_subscribe_profiles", "bulk_unsubscribe_profiles"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs.handlers[SUBSCRIBE] = self._run_subscribe
        self.jobs.handlers[UNSUBSCRIBE] = self._run_unsubscribe

    @property
    def jobs(self) -> JobsBackend:
        return required_jobs(self.ctx)

    def bulk_subscribe_profiles(self, call: Call) -> Outcome:
        return self._accept(call, SUBSCRIBE, MAX_SUBSCRIBE, "SUBSCRIBED")

    def bulk_unsubscribe_profiles(self, call: Call) -> Outcome:
        return self._accept(call, UNSUBSCRIBE, MAX_UNSUBSCRIBE, "UNSUBSCRIBED")

    def _accept(self, call: Call, kind: str, limit: int, consent: str) -> Outcome:
        data = data_of(call.body, kind)
        attrs = attributes_of(data)
        base = "/data/attributes/profiles/data"
        profiles = attrs.get("profiles")
        rows = profiles.get("data") if isinstance(profiles, dict) else None
        if not isinstance(rows, list) or not rows:
            raise InvalidError("profiles.data must be a non-empty list", pointer=base)
        if len(rows) > limit:
            raise InvalidError(
                f"at most {limit} profiles per request (got {len(rows)})", pointer=base
            )
        historical = bool(attrs.get("historical_import"))
        list_ids = relationship_ids(data, "list", "list", many=False)
        for lid in list_ids:
            if lid not in self.store.lists:
                raise InvalidError(
                    f"list {lid!r} does not exist", pointer="/data/relationships/list/data/id"
                )
        parsed = [self._row(row, f"{base}/{k}", consent, historical) for k, row in enumerate(rows)]
        payload = {"rows": parsed, "source": attrs.get("custom_source")}
        self.jobs.schedule(kind, payload, total=len(parsed), list_ids=list_ids)
        return Outcome(status=202)

    def _row(self, row: Any, ptr: str, consent: str, historical: bool) -> _Row:
        if not isinstance(row, dict) or row.get("type") != "profile":
            raise InvalidError(
                "each entry must be a profile resource object", pointer=f"{ptr}/type"
            )
        attrs = attributes_of(row, f"{ptr}/attributes")
        if attrs.get("email") is not None:
            check_email(attrs["email"], f"{ptr}/attributes/email")
        if attrs.get("phone_number") is not None:
            check_phone(attrs["phone_number"], f"{ptr}/attributes/phone_number")
        if not attrs.get("email") and not attrs.get("phone_number") and not row.get("id"):
            raise InvalidError(
                "each profile needs an email or phone_number", pointer=f"{ptr}/attributes"
            )
        subs = attrs.get("subscriptions")
        if not isinstance(subs, dict):
            raise InvalidError(
                "subscriptions is required", pointer=f"{ptr}/attributes/subscriptions"
            )
        sptr = f"{ptr}/attributes/subscriptions"
        email = self._channel(subs, "email", "marketing", consent, sptr)
        sms = self._channel(subs, "sms", "marketing", consent, sptr)
        sms_tx = self._channel(subs, "sms", "transactional", consent, sptr)
        consented_at: float | None = None
        for channel, kind in (("email", "marketing"), ("sms", "marketing")):
            block = subs.get(channel)
            entry = block.get(kind) if isinstance(block, dict) else None
            if not isinstance(entry, dict):
                continue
            if entry.get("consented_at") is not None:
                at_ptr = f"{sptr}/{channel}/{kind}/consented_at"
                if not historical:
                    raise InvalidError(
                        "consented_at requires historical_import: true", pointer=at_ptr
                    )
                consented_at = timestamp_attr(entry["consented_at"], at_ptr)
                if consented_at > self.ctx.now():
                    raise InvalidError("consented_at must be in the past", pointer=at_ptr)
        if email and not attrs.get("email"):
            raise InvalidError("email consent needs an email", pointer=f"{ptr}/attributes/email")
        if (sms or sms_tx) and not attrs.get("phone_number"):
            raise InvalidError(
                "sms consent needs a phone_number", pointer=f"{ptr}/attributes/phone_number"
            )
        pdata = {
            "id": row.get("id"),
            "attributes": {k: attrs[k] for k in ("email", "phone_number") if attrs.get(k)},
        }
        return (pdata, email, sms, sms_tx, consented_at)

    @staticmethod
    def _channel(subs: dict[str, Any], channel: str, kind: str, consent: str, ptr: str) -> bool:
        block = subs.get(channel)
        entry = block.get(kind) if isinstance(block, dict) else None
        if entry is None:
            return False
        if not isinstance(entry, dict) or entry.get("consent") != consent:
            raise InvalidError(
                f"consent must be {consent!r}", pointer=f"{ptr}/{channel}/{kind}/consent"
            )
        return True

    def _run_subscribe(self, job: JobRecord) -> None:
        now = self.ctx.now()
        store = self.store
        lst = store.lists.get(job.list_ids[0]) if job.list_ids else None
        double_optin = lst is not None and lst.opt_in_process == "double_opt_in"
        source = job.payload.get("source")
        for pdata, email, sms, sms_tx, consented_at in job.payload["rows"]:
            try:
                p = resolve_profile(self.ctx, pdata, "/data")
            except InvalidError:
                job.failed_count += 1
                continue
            at = consented_at if consented_at is not None else now
            change = partial(_subscribe, p, (email, sms, sms_tx), at, now, source, double_optin)
            store.change_profile(p, now, change)
            if lst is not None:
                lst.members.setdefault(p.seq, now)
            job.completed_count += 1
        store.touch()

    def _run_unsubscribe(self, job: JobRecord) -> None:
        now = self.ctx.now()
        store = self.store
        lst = store.lists.get(job.list_ids[0]) if job.list_ids else None
        for pdata, email, sms, sms_tx, _ in job.payload["rows"]:
            p = self._existing(pdata)
            if p is None:
                job.skipped_count += 1
                continue
            if lst is not None and p.seq in lst.members:
                del lst.members[p.seq]
                store.change_profile(p, now, partial(_list_unsubscribe, p, lst.id, now))
            else:
                store.change_profile(p, now, partial(_unsubscribe, p, (email, sms, sms_tx), now))
            job.completed_count += 1
        store.touch()

    def _existing(self, pdata: dict[str, Any]) -> ProfileRecord | None:
        if pdata.get("id"):
            return self.store.profile(str(pdata["id"]))
        for field in ("email", "phone_number"):
            value = pdata["attributes"].get(field)
            if isinstance(value, str):
                p = self.store.find_identifier(field, value)
                if p is not None:
                    return p
        return None


def _subscribe(
    p: ProfileRecord,
    channels: tuple[bool, bool, bool],
    at: float,
    now: float,
    source: str | None,
    double_optin: bool,
) -> None:
    email, sms, sms_tx = channels
    if email:
        p.email_consent, p.email_consent_ts, p.email_last_updated = "SUBSCRIBED", at, now
        p.email_method, p.email_method_detail = "API", source
        p.email_double_optin = double_optin
        p.email_suppression = [s for s in p.email_suppression if s[0] not in _CLEARED_BY_SUBSCRIBE]
    if sms:
        p.sms_consent, p.sms_consent_ts, p.sms_last_updated = "SUBSCRIBED", at, now
        p.sms_method = "API"
    if sms_tx:
        p.sms_tx_consent = "SUBSCRIBED"


def _unsubscribe(p: ProfileRecord, channels: tuple[bool, bool, bool], now: float) -> None:
    email, sms, sms_tx = channels
    if email:
        p.email_consent, p.email_consent_ts = "UNSUBSCRIBED", now
        p.email_last_updated, p.email_method = now, "API"
        if not any(r == "UNSUBSCRIBE" for r, _ in p.email_suppression):
            p.email_suppression = [*p.email_suppression, ("UNSUBSCRIBE", now)]
    if sms:
        p.sms_consent, p.sms_consent_ts, p.sms_last_updated = "UNSUBSCRIBED", now, now
    if sms_tx:
        p.sms_tx_consent = "UNSUBSCRIBED"


def _list_unsubscribe(p: ProfileRecord, list_id: str, now: float) -> None:
    p.email_list_suppressions = [*p.email_list_suppressions, (list_id, "UNSUBSCRIBE", now)]
