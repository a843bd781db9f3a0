"""Data-subject deletion: plan, request, confirm, purge — and record every step.

1. **Plan** (:func:`plan_deletions`): find every profile each subject matches
   (email and phone may match different ones). An *unfinished* batch (a run
   interrupted, or a job requested and not yet seen done) run again skips the
   subjects the audit log shows finished, and resumes confirming the requested
   ones (without requesting them again). Once every subject of a batch has an
   outcome and none is in flight, the same subjects are a new request and a
   new batch: the person may have signed up again since.
2. **Guard**: a subject matching more than one profile (an email and a phone
   of different people: a shared number, or a typo in a CSV row) is
   ``refused`` unless ``allow_ambiguous`` (the CLI's ``--allow-ambiguous``),
   and one matching none unless ``allow_unmatched`` (the CLI's ``--yes``).
   Deleting two people must be its own decision: the ``--yes`` every script
   passes is not one.
3. **Request** one deletion job per matched profile, by profile id, so what
   is deleted is exactly what was shown. With no match, a job is still
   requested for the identifiers (Klaviyo may hold data kbridge cannot see).
4. **Confirm**: search until the profiles are gone, with bounded backoff on
   the injected clock; still there at the deadline is ``pending``, never
   success.
5. **Purge** the profiles from the warehouse (:func:`kbridge.warehouse.purge_profiles`),
   and once the batch ends rewrite it without their bytes where deleted rows would
   otherwise stay readable in the file (DuckDB: :func:`kbridge.warehouse.compact_warehouse`).

Each subject's request and final outcome are appended to the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import count
from typing import Any

from kbridge.api import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    PermissionDeniedError,
    Resource,
)
from kbridge.api.capabilities import PRIVACY_DELETE
from kbridge.core import Clock, SystemClock
from kbridge.privacy.audit import FINAL_OUTCOMES, AuditEntry, AuditLog, read_log
from kbridge.privacy.batch import DEFAULT_CONCURRENCY, run_each
from kbridge.privacy.confirm import Confirmer, PollPolicy
from kbridge.privacy.lookup import find_profiles
from kbridge.privacy.subjects import Subject, batch_id, subject_hash
from kbridge.warehouse import Warehouse, compact_warehouse, purge_profiles

__all__ = [
    "DeletionBatch",
    "DeletionPlan",
    "DeletionResult",
    "MatchedProfile",
    "PollPolicy",
    "execute_deletions",
    "plan_deletions",
]

_JOB = "data-privacy-deletion-job"
#: outcomes after which a batch run again only confirms (the job was already requested)
_RESUMABLE = frozenset({"requested", "pending"})


@dataclass(frozen=True, slots=True)
class MatchedProfile:
    """A profile a subject matched, with the identifiers that show why."""

    id: str
    email: str | None
    phone_number: str | None

    @classmethod
    def of(cls, resource: Resource) -> MatchedProfile:
        """From a profile resource."""
        a = resource.attributes
        return cls(resource.id or "", a.get("email"), a.get("phone_number"))


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletionPlan:
    """What will happen to one subject."""

    subject: Subject
    subject_hash: str
    matches: tuple[MatchedProfile, ...] = ()
    #: the last audit entry of this subject in this batch (a resumed batch)
    prior: AuditEntry | None = None
    #: why the profiles could not be looked up (the subject then fails, the batch goes on)
    error: str | None = None

    @property
    def finished(self) -> bool:
        """Done in an earlier run of the batch: skipped."""
        return self.prior is not None and self.prior.outcome in FINAL_OUTCOMES

    @property
    def resuming(self) -> bool:
        """Requested in an earlier run, not yet confirmed: only confirmation is left."""
        return self.prior is not None and self.prior.outcome in _RESUMABLE

    @property
    def ambiguous(self) -> bool:
        """Matches more than one profile (the guard wants ``allow_ambiguous``)."""
        return self._new and len(self.matches) > 1

    @property
    def unmatched(self) -> bool:
        """Matches no profile (the guard wants ``allow_unmatched``)."""
        return self._new and not self.matches

    @property
    def _new(self) -> bool:
        return not (self.finished or self.resuming or self.error is not None)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletionBatch:
    """The plans of one batch; ``batch_id`` is stable for the same subjects while the
    batch is unfinished (then the same subjects start a new batch)."""

    batch_id: str
    plans: tuple[DeletionPlan, ...]

    @property
    def to_run(self) -> tuple[DeletionPlan, ...]:
        """Plans not finished in an earlier run."""
        return tuple(p for p in self.plans if not p.finished)

    @property
    def ambiguous(self) -> tuple[DeletionPlan, ...]:
        """Plans matching more than one profile: refused unless ``allow_ambiguous``."""
        return tuple(p for p in self.plans if p.ambiguous)

    @property
    def unmatched(self) -> tuple[DeletionPlan, ...]:
        """Plans matching no profile: refused unless ``allow_unmatched``."""
        return tuple(p for p in self.plans if p.unmatched)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletionResult:
    """How one subject's deletion ended."""

    subject: Subject
    subject_hash: str
    outcome: str
    profile_ids: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    requested_at: datetime | None = None
    confirmed_at: datetime | None = None
    purged: int | None = None
    detail: str | None = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the subject as given: this goes to the user, not the log)."""
        return {
            "subject": self.subject.label,
            "subject_hash": self.subject_hash,
            "outcome": self.outcome,
            "skipped": self.skipped,
            "profile_ids": list(self.profile_ids),
            "request_ids": list(self.request_ids),
            "requested_at": None if self.requested_at is None else self.requested_at.isoformat(),
            "confirmed_at": None if self.confirmed_at is None else self.confirmed_at.isoformat(),
            "warehouse_purged": self.purged,
            "detail": self.detail,
        }


def _fatal(exc: ApiError) -> bool:
    """Errors every other subject would hit too: stop the batch instead of logging each."""
    return isinstance(exc, AuthenticationError | PermissionDeniedError)


def _describe(exc: ApiError) -> str:
    """The error for the log: class, status and code only (Klaviyo's text may echo an address)."""
    d = exc.details
    parts = [type(exc).__name__]
    if d.status is not None:
        parts.append(str(d.status))
    if d.code:
        parts.append(d.code)
    return " ".join(parts)


@PRIVACY_DELETE.runs
async def plan_deletions(
    client: AsyncClient,
    subjects: Sequence[Subject],
    *,
    audit: AuditLog,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[DeletionPlan], None] | None = None,
) -> DeletionBatch:
    """Look up every subject's profiles (skipping lookups the batch's log makes needless).

    ``on_done`` hears of each plan as it is made (a progress bar).
    """
    # the log may be a file (the connection store): its I/O stays off the event loop
    key = await asyncio.to_thread(audit.audit_key)
    # "Ann@x.io" and "ann@x.io" are one person: keep the first spelling of each hash
    by_hash: dict[str, Subject] = {}
    for s in subjects:
        by_hash.setdefault(subject_hash(key, s), s)
    unique = list(by_hash.values())
    hashes = {s: h for h, s in by_hash.items()}
    batch, last = await asyncio.to_thread(
        _open_batch, audit, batch_id("delete", hashes.values()), set(hashes.values())
    )

    async def one(subject: Subject) -> DeletionPlan:
        hashed = hashes[subject]
        prior = last.get(hashed)
        if prior is not None and (prior.outcome in FINAL_OUTCOMES or prior.outcome in _RESUMABLE):
            return DeletionPlan(subject=subject, subject_hash=hashed, prior=prior)
        try:
            found = await find_profiles(client, subject)
        except ApiError as exc:
            if _fatal(exc):
                raise
            return DeletionPlan(
                subject=subject, subject_hash=hashed, prior=prior, error=_describe(exc)
            )
        matches = tuple(MatchedProfile.of(r) for r in found)
        return DeletionPlan(subject=subject, subject_hash=hashed, matches=matches, prior=prior)

    plans = await run_each(unique, one, concurrency=concurrency, on_done=on_done)
    return DeletionBatch(batch_id=batch, plans=tuple(plans))


def _open_batch(audit: AuditLog, base: str, hashes: set[str]) -> tuple[str, dict[str, AuditEntry]]:
    """The batch these subjects resume, or the new one they start, with each subject's
    last entry in it.

    The same subjects have one batch id per request: ``base``, then ``base-2``, … A
    batch is over once every subject has an outcome and none is in flight (requested
    or pending), and the next id is taken: resuming it would skip a person who was
    erased, signed up again and asked again. A refused or failed subject does not keep
    it open (the next request tries it again with everyone else).
    """
    for n in count(1):
        candidate = base if n == 1 else f"{base}-{n}"
        last: dict[str, AuditEntry] = {}
        for entry in read_log(audit, batch_id=candidate, action="delete"):
            last[entry.subject_hash] = entry
        over = bool(last) and all(h in last and last[h].outcome not in _RESUMABLE for h in hashes)
        if not over:
            return candidate, last
    raise AssertionError("unreachable")  # count() never ends


async def _request(client: AsyncClient, profile: dict[str, Any]) -> str | None:
    """One deletion job; the request id (if Klaviyo gave one) for the audit log.

    Sent through ``client.request`` rather than ``client.data_privacy`` because
    the 202 has no body and the request id is the only receipt there is.
    """
    body = {"data": {"type": _JOB, "attributes": {"profile": {"data": profile}}}}
    response = await client.request("request_profile_deletion", json=body)
    return response.request_id


def _targets(plan: DeletionPlan) -> list[dict[str, Any]]:
    if plan.matches:
        return [{"type": "profile", "id": m.id} for m in plan.matches]
    subject = plan.subject
    identifiers = []
    if subject.email is not None:
        identifiers.append({"type": "profile", "attributes": {"email": subject.email}})
    if subject.phone_number is not None:
        identifiers.append(
            {"type": "profile", "attributes": {"phone_number": subject.phone_number}}
        )
    return identifiers


def _refusal(plan: DeletionPlan, allow_ambiguous: bool, allow_unmatched: bool) -> str | None:
    """Why the guard stops ``plan`` (for the result and the log), or None."""
    if plan.ambiguous and not allow_ambiguous:
        return f"ambiguous: matched {len(plan.matches)} profiles; not deleted without allowing it"
    if plan.unmatched and not allow_unmatched:
        return "matched no profile; not requested without confirmation"
    return None


@PRIVACY_DELETE.runs
async def execute_deletions(
    client: AsyncClient,
    batch: DeletionBatch,
    *,
    audit: AuditLog,
    allow_ambiguous: bool = False,
    allow_unmatched: bool = False,
    warehouse: Warehouse | None = None,
    account_id: str | None = None,
    clock: Clock | None = None,
    poll: PollPolicy | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[DeletionResult], None] | None = None,
) -> list[DeletionResult]:
    """Carry out ``batch``: one result per plan, in order (finished ones marked ``skipped``).

    A subject matching more than one profile is ``refused`` (and logged so) unless
    ``allow_ambiguous``; one matching none unless ``allow_unmatched`` (its job is then
    requested for the identifiers).
    ``warehouse`` (left open) is purged of each deleted profile under
    ``account_id`` (default: the client's account, read once).
    """
    clock = clock or SystemClock()
    poll = poll or PollPolicy()
    if warehouse is not None and account_id is None:
        accounts = await client.accounts.get_accounts()
        account_id = accounts[0].id if accounts else None
    warehouse_lock = asyncio.Lock()
    # Only the requests take a slot: waiting for confirmation is the shared confirmer's
    # job, so a thousand pending subjects do not stop the next request from going out.
    gate = asyncio.Semaphore(concurrency)

    async def record(plan: DeletionPlan, outcome: str, **fields: Any) -> None:
        await asyncio.to_thread(
            partial(
                audit.append_audit,
                subject_hash=plan.subject_hash,
                action="delete",
                outcome=outcome,
                batch_id=batch.batch_id,
                **fields,
            )
        )

    purged_any = False

    async def purge(ids: Sequence[str]) -> int | None:
        nonlocal purged_any
        if warehouse is None or account_id is None or not ids:
            return None
        async with warehouse_lock:  # one warehouse connection: one writer at a time
            # the file is rewritten once for the batch, not once a subject
            found = await asyncio.to_thread(
                partial(purge_profiles, warehouse, account_id, ids, compact=False)
            )
            purged_any = True
            return found

    async def one(plan: DeletionPlan, confirmer: Confirmer) -> DeletionResult:
        made = partial(DeletionResult, subject=plan.subject, subject_hash=plan.subject_hash)
        if plan.finished:
            prior = plan.prior
            assert prior is not None
            return made(
                outcome=prior.outcome,
                profile_ids=prior.profile_ids,
                request_ids=prior.request_ids,
                requested_at=prior.requested_at,
                confirmed_at=prior.confirmed_at,
                skipped=True,
            )
        if plan.error is not None:
            await record(plan, "failed", detail=plan.error)
            return made(outcome="failed", detail=plan.error)
        try:
            if plan.resuming:
                prior = plan.prior
                assert prior is not None
                ids, request_ids, requested = (
                    prior.profile_ids,
                    prior.request_ids,
                    prior.requested_at,
                )
            else:
                ids = tuple(m.id for m in plan.matches)
                detail = _refusal(plan, allow_ambiguous, allow_unmatched)
                if detail is not None:
                    await record(plan, "refused", profile_ids=ids, detail=detail)
                    return made(outcome="refused", profile_ids=ids, detail=detail)
                async with gate:
                    requested = clock.now()
                    receipts = [await _request(client, t) for t in _targets(plan)]
                request_ids = tuple(r for r in receipts if r)
                await record(
                    plan,
                    "requested",
                    requested_at=requested,
                    profile_ids=ids,
                    request_ids=request_ids,
                )
            gone = await confirmer.wait(ids)
        except ApiError as exc:
            if _fatal(exc):
                raise
            detail = _describe(exc)
            ids = tuple(m.id for m in plan.matches)
            await record(plan, "failed", profile_ids=ids, detail=detail)
            return made(outcome="failed", profile_ids=ids, detail=detail)
        confirmed = clock.now() if gone else None
        outcome = ("confirmed" if ids else "not_found") if gone else "pending"
        # The request is made and cannot be taken back: the warehouse copy goes now even
        # while Klaviyo's job is pending (a sync before it finishes could bring it back).
        purged = await purge(ids)
        await record(
            plan,
            outcome,
            requested_at=requested,
            confirmed_at=confirmed,
            profile_ids=ids,
            request_ids=request_ids,
        )
        return made(
            outcome=outcome,
            profile_ids=ids,
            request_ids=request_ids,
            requested_at=requested,
            confirmed_at=confirmed,
            purged=purged,
        )

    try:
        async with Confirmer(client, clock=clock, poll=poll) as confirmer:
            return await run_each(
                batch.plans,
                partial(one, confirmer=confirmer),
                concurrency=max(1, len(batch.plans)),
                on_done=on_done,
            )
    finally:
        # also when the batch stops early: rows already purged must not linger in the file
        if purged_any and warehouse is not None:
            await asyncio.to_thread(compact_warehouse, warehouse)
