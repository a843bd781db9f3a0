"""Asynchronous jobs on the simulated clock: bulk profile import and (un)suppression,
plus the queue that bulk events and (un)subscribe use.

A job is ``queued`` when accepted and becomes ``complete`` once the simulated
clock reaches ``created + config.job_delay_seconds`` and ``run_due()`` runs
(http/ calls it before each request). Work happens at completion, so a
client sees exactly Klaviyo's "202 means accepted, not done".
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    not_found,
    page_of,
    page_outcome,
    relationship_ids,
)
from kbridge.emulator.backend.errors import ConflictError, InvalidError, NotFoundError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import JobRecord, JobStatus, ProfileRecord
from kbridge.emulator.backend.profiles import (
    apply_attributes,
    profile_payload_ok,
    profile_resource,
    validate_profile_payload,
)
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.store import Store
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["IMPORT_CHUNK", "JobsBackend"]

MAX_IMPORT_PROFILES = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_SUPPRESS = 100
IMPORT = "profile-bulk-import-job"
SUPPRESS = "profile-suppression-bulk-create-job"
UNSUPPRESS = "profile-suppression-bulk-delete-job"
_EXPIRY = 7 * 86400.0
#: rows of a bulk import :meth:`JobsBackend.work` imports at a time: a request that
#: arrives meanwhile waits for at most this many (a few milliseconds)
IMPORT_CHUNK = 500
_ROWS = "/data/attributes/profiles/data"


#: profiles from which an account's imported records are moved out of the collector's
#: sight (as EmulatorBackend does with a large generated account when it loads)
FREEZE_AT = 50_000


def _keep_out_of_collection(profiles: int) -> None:
    """After a bulk import into a large account: collect the young, freeze the rest.

    Its profiles live as long as the account, yet every full collection walks them
    all; the collector starts one each time its tracked objects grow by a quarter
    (~0.5 s a time near a million profiles, blocking every request). Frozen, they
    are never walked again (until the account is reset: see EmulatorBackend). The
    two young generations are collected first, so only garbage that reached the old
    one since the last job is frozen with them; a full collection here would walk
    the payloads of every job still waiting (~25 ms a job of 10,000 profiles).
    """
    if profiles >= FREEZE_AT:
        gc.collect(1)
        gc.freeze()


def _due_order(job: JobRecord) -> tuple[float, int]:
    return (job.due, job.seq)


class JobsBackend(TagBackend):
    operations = frozenset(
        {
            "bulk_import_profiles",
            "get_bulk_import_profiles_jobs",
            "get_bulk_import_profiles_job",
            "get_profiles_for_bulk_import_profiles_job",
            "get_profile_ids_for_bulk_import_profiles_job",
            "get_list_for_bulk_import_profiles_job",
            "get_list_ids_for_bulk_import_profiles_job",
            "get_errors_for_bulk_import_profiles_job",
            "bulk_suppress_profiles",
            "bulk_unsuppress_profiles",
            "get_bulk_suppress_profiles_jobs",
            "get_bulk_suppress_profiles_job",
            "get_bulk_unsuppress_profiles_jobs",
            "get_bulk_unsuppress_profiles_job",
        }
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handlers: dict[str, Callable[[JobRecord], None]] = {
            IMPORT: self._run_import,
            SUPPRESS: self._run_suppress,
            UNSUPPRESS: self._run_unsuppress,
        }
        #: jobs not complete yet (``store.jobs`` keeps every job for a week of reads)
        self._pending: list[JobRecord] = []

    # -- the queue ---------------------------------------------------------------

    def schedule(
        self,
        kind: str,
        payload: Any,
        *,
        total: int,
        list_ids: list[str] | None = None,
        segment_ids: list[str] | None = None,
    ) -> JobRecord:
        now = self.ctx.now()
        job = JobRecord(
            kind=kind,
            id=self.store.next_ulid(now),
            seq=self.store.next_seq(),
            created=now,
            due=now + self._queued_for() + self._working_for(kind, total),
            payload=payload,
            total_count=total,
            list_ids=list(list_ids or []),
            segment_ids=list(segment_ids or []),
        )
        self.store.jobs[job.id] = job
        self._pending.append(job)
        return job

    def _queued_for(self) -> float:
        return max(0.0, self.ctx.config.job_delay_seconds)

    def _working_for(self, kind: str, total: int) -> float:
        rate = self.ctx.config.import_profiles_per_second
        return total / rate if kind == IMPORT and rate else 0.0

    def run_due(self, *, complete_imports: bool = True) -> None:
        """Complete every job due by now, in the order they fall due (what :meth:`work`
        left of a bulk import's rows is done here).

        ``complete_imports=False`` stops at the first due bulk import, leaving its
        rows to :meth:`work` and it (with every job due after it) to the next call:
        the served emulator's answer to a request that reads no job (a new import).
        """
        self.store.settle()  # what work() imported joins the sorted orders
        if not self._pending:
            return
        now = self.ctx.now()
        for job in sorted(self._pending, key=_due_order):
            if job.status != JobStatus.QUEUED or job.due > now:
                continue
            if not complete_imports and job.kind == IMPORT:
                break
            working = self._working_for(job.kind, job.total_count)
            job.status, job.started_at = JobStatus.PROCESSING, max(job.created, job.due - working)
            self.handlers[job.kind](job)
            job.status, job.completed_at = JobStatus.COMPLETE, now
            job.payload = None  # the work is done; keep only the record
        # handlers may have scheduled more (appended to the list as it is now)
        self._pending = [j for j in self._pending if j.status == JobStatus.QUEUED]

    def work(self, rows: int = IMPORT_CHUNK) -> float | None:
        """Import up to ``rows`` rows of a bulk import job that has left the queue, ahead
        of its due time; what is done here :meth:`run_due` need not do at completion.

        The served emulator calls this between requests (its jobs runner), so that a
        job of 10,000 profiles is not processed on the request that follows it. The
        answer: ``0.0`` when rows may be ready at once, else the simulated seconds until
        the next job leaves the queue, or ``None`` when no import is waiting.
        """
        if not self._pending:
            return None  # the runner asks after every request: answer at once
        now = self.ctx.now()
        wait: float | None = None
        for job in sorted(self._pending, key=_due_order):
            if job.kind != IMPORT or job.status != JobStatus.QUEUED or job.payload is None:
                continue
            if job.done >= len(job.payload):
                continue
            begins = job.created + self._queued_for()
            if begins > now:
                wait = begins - now if wait is None else min(wait, begins - now)
                continue
            # the sorted orders wait for the next request (run_due) or the job's last
            # rows: bringing them up to date at every part would cost a pass over them
            self.store.open_bulk()
            stop = min(job.done + max(1, rows), len(job.payload))
            self._import_rows(job, stop, now)
            if stop == len(job.payload):
                self.store.settle()
                _keep_out_of_collection(len(self.store.profiles))
            return 0.0
        return wait

    # -- bulk import -------------------------------------------------------------

    def bulk_import_profiles(self, call: Call) -> Outcome:
        # http/ knows the request's length; only a call made without it re-serialises
        size = call.body_bytes if call.body_bytes is not None else len(orjson.dumps(call.body))
        if size > MAX_IMPORT_BYTES:
            raise InvalidError("a bulk import request must not exceed 5 MB", pointer="/data")
        data = data_of(call.body, IMPORT)
        attrs = attributes_of(data)
        rows = (
            (attrs.get("profiles") or {}).get("data")
            if isinstance(attrs.get("profiles"), dict)
            else None
        )
        if not isinstance(rows, list) or not rows:
            raise InvalidError(
                "profiles.data must be a non-empty list", pointer="/data/attributes/profiles/data"
            )
        if len(rows) > MAX_IMPORT_PROFILES:
            raise InvalidError(
                f"at most {MAX_IMPORT_PROFILES} profiles per import job (got {len(rows)})",
                pointer="/data/attributes/profiles/data",
            )
        list_ids = relationship_ids(data, "lists", "list", many=True)
        for k, lid in enumerate(list_ids):
            if lid not in self.store.lists:
                raise InvalidError(
                    f"list {lid!r} does not exist", pointer=f"/data/relationships/lists/data/{k}/id"
                )
        job = self.schedule(IMPORT, rows, total=len(rows), list_ids=list_ids)
        return Outcome(data=self._resource(job), status=202)

    def _run_import(self, job: JobRecord) -> None:
        self._import_rows(job, len(job.payload), self.ctx.now())
        _keep_out_of_collection(len(self.store.profiles))

    def _import_rows(self, job: JobRecord, stop: int, now: float) -> None:
        """Import rows ``job.done`` to ``stop`` of ``job``: each good row creates or
        updates its profile (and joins the job's lists), each bad one is an import error."""
        # no collection in the middle of the rows: they make no cycles, and the young
        # objects are walked once when it ends rather than again at every 700
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._import_each(job, stop, now)
        finally:
            if collecting:
                gc.enable()

    def _import_each(self, job: JobRecord, stop: int, now: float) -> None:
        store = self.store
        lists = [store.lists.get(lid) for lid in job.list_ids]
        members = [lst.members for lst in lists if lst is not None]
        seqs, errors = job.profile_seqs, job.errors
        rows, start = job.payload, job.done
        import_row = self._import_row
        failed = 0
        with store.bulk():
            for k in range(start, stop):
                row = rows[k]
                try:
                    p = import_row(store, row, k, now)
                except (InvalidError, ConflictError, NotFoundError) as exc:
                    original = row if isinstance(row, dict) else {"value": row}
                    failed += 1
                    pointer = exc.pointer or f"{_ROWS}/{k}"
                    errors.append((exc.code, exc.title, exc.detail, pointer, original))
                    continue
                seqs.append(p.seq)
                for joined in members:
                    joined.setdefault(p.seq, now)
        job.done = stop
        job.failed_count += failed
        job.completed_count += stop - start - failed
        store.touch()

    @staticmethod
    def _import_row(store: Store, row: Any, k: int, now: float) -> ProfileRecord:
        """Row ``k``'s profile, created or updated; pointers are built only for an error."""
        if not isinstance(row, dict) or row.get("type") != "profile":
            raise InvalidError(
                "each row must be a profile resource object", pointer=f"{_ROWS}/{k}/type"
            )
        attrs = row.get("attributes")
        if not isinstance(attrs, dict):
            raise InvalidError("attributes must be an object", pointer=f"{_ROWS}/{k}/attributes")
        if not profile_payload_ok(row, attrs, require_identifier=True):
            validate_profile_payload(row, attrs, require_identifier=True, base=f"{_ROWS}/{k}")
        target: ProfileRecord | None = None
        row_id = row.get("id")
        if row_id:
            target = store.profile(str(row_id))
            if target is None:
                raise InvalidError(f"profile {row_id!r} does not exist", pointer=f"{_ROWS}/{k}/id")
        # each identifier's holder, looked up once: the first found is the target, and
        # none may belong to another profile (nothing matched: nothing can)
        holders = store.identifier_holders(attrs)
        if holders:
            if target is None:
                target = holders[0][2]
            for field, value, held in holders:
                if held is not target:
                    raise ConflictError(
                        f"{field} {value!r} belongs to another profile ({held.id})",
                        code="duplicate_profile",
                        pointer=f"{_ROWS}/{k}/attributes/{field}",
                    )
        if target is None:
            return store.new_profile(now, apply_attributes, attrs, row)
        p = target
        store.change_profile(p, now, partial(apply_attributes, p, attrs, row))
        return p

    def _resource(self, job: JobRecord) -> Resource:
        if job.kind == IMPORT:
            status, started = job.status, job.started_at
            begins = job.created + self._queued_for()
            if status == JobStatus.QUEUED and self.ctx.now() >= begins:
                # out of the queue, working through its rows: the counts come at the end
                status, started = JobStatus.PROCESSING, begins
            attrs: dict[str, Any] = {
                "status": status,
                "created_at": iso(job.created),
                "total_count": job.total_count,
                # rows imported ahead of completion are not counted until it
                "completed_count": job.completed_count if status == JobStatus.COMPLETE else 0,
                "failed_count": job.failed_count if status == JobStatus.COMPLETE else 0,
                "completed_at": iso(job.completed_at),
                "expires_at": iso(job.created + _EXPIRY),
                "started_at": iso(started),
            }
            return Resource(
                IMPORT,
                job.id,
                attrs,
                relationships={"lists": [("list", lid) for lid in job.list_ids]},
                links_only=("profiles", "import-errors"),
            )
        attrs = {
            "status": job.status,
            "created_at": iso(job.created),
            "total_count": job.total_count,
            "completed_count": job.completed_count,
            "completed_at": iso(job.completed_at),
            "skipped_count": job.skipped_count,
        }
        return Resource(
            job.kind,
            job.id,
            attrs,
            relationships={
                "lists": [("list", lid) for lid in job.list_ids],
                "segments": [("segment", sid) for sid in job.segment_ids],
            },
        )

    def _job(self, call: Call, kind: str, param: str = "id") -> JobRecord:
        jid = call.path_params.get(param) or call.path_params.get("job_id") or ""
        job = self.store.jobs.get(jid)
        if job is None or job.kind != kind:
            raise not_found(kind, jid)
        return job

    def _list_jobs(self, call: Call, kind: str, sort_field: str) -> Outcome:
        jobs = {j.seq: j for j in self.store.jobs.values() if j.kind == kind}
        sort = call.query.sort
        desc = sort is not None and sort.descending

        def key(s: int) -> tuple[Any, ...]:
            return (jobs[s].created, s)

        getters: dict[str, Callable[[int], Any]] = {
            "status": lambda s: jobs[s].status,
            "list_id": lambda s: jobs[s].list_ids,
            "segment_id": lambda s: jobs[s].segment_ids,
        }
        page = page_of(call, sorted(jobs, key=key), key, getters, descending=desc)
        del sort_field  # both created and created_at sort by creation time
        return page_outcome(page, lambda s: self._resource(jobs[s]))

    def get_bulk_import_profiles_jobs(self, call: Call) -> Outcome:
        return self._list_jobs(call, IMPORT, "created_at")

    def get_bulk_import_profiles_job(self, call: Call) -> Outcome:
        job = self._job(call, IMPORT, "job_id")
        included: list[Resource] = []
        if "lists" in call.query.include:
            from kbridge.emulator.backend.lists import list_resource

            included = [
                list_resource(self.store.lists[lid], None)
                for lid in job.list_ids
                if lid in self.store.lists
            ]
        return Outcome(data=self._resource(job), included=included)

    def _job_profiles(self, call: Call, ids_only: bool) -> Outcome:
        job = self._job(call, IMPORT)
        P = self.store.profiles
        seqs = sorted(set(job.profile_seqs))
        page = page_of(call, seqs, lambda s: (s,), {}, alive=lambda s: not P[s].deleted)
        if ids_only:
            return page_outcome(
                page, lambda s: Resource("profile", P[s].id, {}), identifiers_only=True
            )
        return page_outcome(page, lambda s: profile_resource(P[s], call.query))

    def get_profiles_for_bulk_import_profiles_job(self, call: Call) -> Outcome:
        return self._job_profiles(call, ids_only=False)

    def get_profile_ids_for_bulk_import_profiles_job(self, call: Call) -> Outcome:
        return self._job_profiles(call, ids_only=True)

    def get_list_for_bulk_import_profiles_job(self, call: Call) -> Outcome:
        from kbridge.emulator.backend.lists import list_resource

        job = self._job(call, IMPORT)
        lists = [self.store.lists[lid] for lid in job.list_ids if lid in self.store.lists]
        return Outcome(data=[list_resource(lst, None) for lst in lists])

    def get_list_ids_for_bulk_import_profiles_job(self, call: Call) -> Outcome:
        job = self._job(call, IMPORT)
        return Outcome(
            data=[Resource("list", lid, {}) for lid in job.list_ids], identifiers_only=True
        )

    def get_errors_for_bulk_import_profiles_job(self, call: Call) -> Outcome:
        job = self._job(call, IMPORT)
        page = page_of(call, range(len(job.errors)), lambda k: (k,), {})
        items = []
        for k in page.items:
            code, title, detail, pointer, original = job.errors[k]
            items.append(
                Resource(
                    "import-error",
                    f"{job.id}-{k}",
                    {
                        "code": code,
                        "title": title,
                        "detail": detail,
                        "source": {"pointer": pointer},
                        "original_payload": original,
                    },
                )
            )
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)
        )

    # -- suppression -------------------------------------------------------------

    def _suppression_request(self, call: Call, kind: str) -> Outcome:
        data = data_of(call.body, kind)
        attrs = data.get("attributes") or {}
        rows = (
            (attrs.get("profiles") or {}).get("data")
            if isinstance(attrs, dict) and isinstance(attrs.get("profiles"), dict)
            else None
        )
        list_ids = relationship_ids(data, "list", "list", many=False)
        segment_ids = relationship_ids(data, "segment", "segment", many=False)
        emails: list[str] = []
        if rows is not None:
            if not isinstance(rows, list):
                raise InvalidError(
                    "profiles.data must be a list", pointer="/data/attributes/profiles/data"
                )
            if len(rows) > MAX_SUPPRESS:
                raise InvalidError(
                    f"at most {MAX_SUPPRESS} profiles per request (got {len(rows)})",
                    pointer="/data/attributes/profiles/data",
                )
            for k, row in enumerate(rows):
                email = ((row or {}).get("attributes") or {}).get("email")
                if not isinstance(email, str) or "@" not in email:
                    raise InvalidError(
                        "each profile needs a valid email",
                        pointer=f"/data/attributes/profiles/data/{k}/attributes/email",
                    )
                emails.append(email)
        if not emails and not list_ids and not segment_ids:
            raise InvalidError("give profiles, or a list or segment relationship", pointer="/data")
        if emails and (list_ids or segment_ids):
            raise InvalidError("give either profiles or a list/segment, not both", pointer="/data")
        for lid in list_ids:
            if lid not in self.store.lists:
                raise InvalidError(
                    f"list {lid!r} does not exist", pointer="/data/relationships/list/data/id"
                )
        for sid in segment_ids:
            if sid not in self.store.segments:
                raise InvalidError(
                    f"segment {sid!r} does not exist", pointer="/data/relationships/segment/data/id"
                )
        total = len(emails) or self._group_size(list_ids, segment_ids)
        job = self.schedule(kind, emails, total=total, list_ids=list_ids, segment_ids=segment_ids)
        return Outcome(data=self._resource(job), status=202)

    def _group_size(self, list_ids: list[str], segment_ids: list[str]) -> int:
        return len(self._group_members(list_ids, segment_ids))

    def _group_members(self, list_ids: list[str], segment_ids: list[str]) -> list[int]:
        seqs: set[int] = set()
        for lid in list_ids:
            lst = self.store.lists.get(lid)
            if lst is not None:
                seqs.update(lst.members)
        for sid in segment_ids:
            assert self.ctx.segments is not None
            seqs.update(self.ctx.segments.members(sid))
        return sorted(seqs)

    def _targets(self, job: JobRecord, create: bool) -> list[Any]:
        store, now = self.store, self.ctx.now()
        if not job.payload:
            return [store.profiles[s] for s in self._group_members(job.list_ids, job.segment_ids)]
        targets = []
        for email in job.payload:
            p = store.find_identifier("email", email)
            if p is None and create:
                p = store.new_profile(now)
                store.change_profile(p, now, partial(setattr, p, "email", email))
            if p is not None:
                targets.append(p)
        return targets

    def _run_suppress(self, job: JobRecord) -> None:
        now = self.ctx.now()
        for p in self._targets(job, create=True):
            if p.email_suppression:
                job.skipped_count += 1
                continue

            def suppress(p: Any = p) -> None:
                p.email_suppression = [("USER_SUPPRESSED", now)]
                p.email_last_updated = now

            self.store.change_profile(p, now, suppress)
            job.completed_count += 1

    def _run_unsuppress(self, job: JobRecord) -> None:
        now = self.ctx.now()
        for p in self._targets(job, create=False):
            keep = [(r, t) for r, t in p.email_suppression if r != "USER_SUPPRESSED"]
            if len(keep) == len(p.email_suppression):
                job.skipped_count += 1
                continue

            def unsuppress(p: Any = p, keep: list[tuple[str, float]] = keep) -> None:
                p.email_suppression = keep
                p.email_last_updated = now

            self.store.change_profile(p, now, unsuppress)
            job.completed_count += 1

    def bulk_suppress_profiles(self, call: Call) -> Outcome:
        return self._suppression_request(call, SUPPRESS)

    def bulk_unsuppress_profiles(self, call: Call) -> Outcome:
        return self._suppression_request(call, UNSUPPRESS)

    def get_bulk_suppress_profiles_jobs(self, call: Call) -> Outcome:
        return self._list_jobs(call, SUPPRESS, "created")

    def get_bulk_suppress_profiles_job(self, call: Call) -> Outcome:
        return Outcome(data=self._resource(self._job(call, SUPPRESS, "job_id")))

    def get_bulk_unsuppress_profiles_jobs(self, call: Call) -> Outcome:
        return self._list_jobs(call, UNSUPPRESS, "created")

    def get_bulk_unsuppress_profiles_job(self, call: Call) -> Outcome:
        return Outcome(data=self._resource(self._job(call, UNSUPPRESS, "job_id")))
