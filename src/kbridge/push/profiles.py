"""Warehouse rows → Klaviyo profiles through profile bulk import jobs.

One pass over the rows: each is encoded once, skipped when its payload hash was
already sent to this destination, and packed into jobs of at most 10,000
profiles and under 5 MB. A job's id and its rows' hashes are committed to the
warehouse before the next job is submitted. Once every job is submitted the jobs
are polled through the job list (one request covers up to 100 jobs, at the same
tier as creation, so polling never competes with submission), backing off while
they are queued; each finished job's import errors land in ``push_errors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import orjson

from kbridge.api import AsyncClient, NotFoundError
from kbridge.api.capabilities import PUSH_PROFILES
from kbridge.core import Clock, SystemClock
from kbridge.push import _sqlpath
from kbridge.push._engine import (
    JobInfo,
    JobLimits,
    Ledger,
    OnJob,
    Packer,
    PushInputError,
    PushSummary,
    account_of,
    encode,
    field_of,
    iso,
    mapping_of,
    payload_hash,
    text_of,
)
from kbridge.push.source import Source
from kbridge.warehouse import Warehouse

__all__ = [
    "IDENTITY_COLUMNS",
    "PROFILE_LIMITS",
    "PUSH_PROFILES",
    "PollPolicy",
    "push_profiles",
]


PROFILE_LIMITS = JobLimits(max_rows=10_000)
#: ``id`` is Klaviyo's own profile id (a synced profile's), sent beside the attributes
IDENTITY_COLUMNS = ("email", "phone_number", "external_id", "id")
#: columns that are profile attributes in their own right; every other column is a property
_ATTRIBUTES = frozenset(
    {"email", "phone_number", "external_id", "first_name", "last_name", "organization"}
    | {"title", "image", "locale"}
)
_KIND = "profile-bulk-import-job"
_ROWS_POINTER = "/data/attributes/profiles/data/"
_DONE = frozenset({"complete", "cancelled"})


class PollPolicy:
    """How long to wait between looks at the job list while jobs are still queued."""

    __slots__ = ("factor", "first", "longest")

    def __init__(self, *, first: float = 0.5, factor: float = 1.5, longest: float = 10.0) -> None:
        self.first, self.factor, self.longest = first, factor, longest


def _envelope(list_id: str | None) -> int:
    rel = f',"relationships":{{"lists":{{"data":[{{"type":"list","id":"{list_id}"}}]}}}}'
    bare = len('{"data":{"type":"","attributes":{"profiles":{"data":[]}}}}') + len(_KIND)
    return bare + (len(rel) if list_id else 0)


def _split(columns: Sequence[str], id_column: str) -> tuple[list[str], list[str]]:
    """The columns that are profile attributes and those that are its properties."""
    cols = [c for c in columns if c != id_column]
    return [c for c in cols if c in _ATTRIBUTES], [c for c in cols if c not in _ATTRIBUTES]


def destination_of(id_column: str, list_id: str | None) -> str:
    """The key under which a profile push's state is kept: same identity and list, same state."""
    return f"profiles:{id_column}:{list_id or '-'}"


async def push_profiles(
    client: AsyncClient,
    rows: Iterable[Mapping[str, Any]],
    *,
    warehouse: Warehouse,
    id_column: str = "email",
    properties: Sequence[str] | None = None,
    list_id: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    account_id: str | None = None,
    limits: JobLimits = PROFILE_LIMITS,
    poll: PollPolicy | None = None,
    clock: Clock | None = None,
    on_job: OnJob | None = None,
    destination: str | None = None,
) -> PushSummary:
    """Create or update one profile per row through bulk import jobs; the counts.

    ``id_column`` names the identity (``email``, ``phone_number`` or ``external_id``);
    ``properties`` the columns sent (default: every other column of each row).
    Standard attributes (``first_name`` …) go to the profile's attributes, the rest to its
    ``properties``. Rows whose payload was already sent to this destination are
    skipped unless ``full``; ``dry_run`` counts what would be sent and sends nothing.
    Rows Klaviyo refuses are counted in ``errors`` and kept in ``push_errors``.
    ``destination`` names the state kept for this push (default
    ``profiles:<id_column>:<list_id or ->``): pushes of different payloads to the same
    profiles keep apart so that neither resends the other's rows.
    """
    if id_column not in IDENTITY_COLUMNS:
        raise PushInputError(
            f"--id-column must be one of {', '.join(IDENTITY_COLUMNS)}, not {id_column!r}"
        )
    clock = clock or SystemClock()
    with PUSH_PROFILES.calls():
        account = account_id or await account_of(client)
        ledger = Ledger(
            warehouse, account, destination or destination_of(id_column, list_id), clock
        )
        await ledger.prepare()
        pending = {} if dry_run else await ledger.pending_jobs()
        summary = PushSummary()
        packer = Packer(limits, _envelope(list_id))
        refused: list[tuple[str, str, str]] = []

        async def post(body: orjson.Fragment) -> str:
            data: dict[str, Any] = {
                "type": _KIND,
                "attributes": {"profiles": {"data": body}},
            }
            if list_id:
                data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
            response = await client.request("bulk_import_profiles", json={"data": data})
            job = response.document.data if response.document is not None else None
            job_id = getattr(job, "id", None)
            if not job_id:
                raise PushInputError("Klaviyo accepted a bulk import job without an id")
            return str(job_id)

        if (
            isinstance(rows, Source)
            and rows.warehouse is warehouse
            and warehouse.capabilities.dialect == "duckdb"
        ):
            # the rows and the state share one DuckDB: it does the per-row work
            cols = (
                list(properties)
                if properties is not None
                else [c for c in rows.columns if c != id_column]
            )
            attr_cols, prop_cols = _split(cols, id_column)
            # one thread and a bounded cache: the push waits on Klaviyo's pace anyway
            settings = await ledger.run(partial(_sqlpath.settle, warehouse))
            try:
                if not dry_run:
                    await ledger.run(
                        partial(
                            _sqlpath.adopt,
                            warehouse,
                            account_id=account,
                            destination=ledger.destination,
                        )
                    )
                plan = await ledger.run(
                    partial(
                        _sqlpath.plan,
                        warehouse,
                        account_id=account,
                        destination=ledger.destination,
                        attrs=attr_cols,
                        props=prop_cols,
                        id_column=id_column,
                        limits=limits,
                        envelope=_envelope(list_id),
                        full=full,
                        types=dict(zip(rows.columns, rows.types, strict=True))
                        if rows.types
                        else None,
                    )
                )
                summary.rows, summary.unchanged = rows.count, plan.unchanged
                refused.extend(plan.refused)
                try:
                    for planned in plan.jobs:
                        summary.jobs += 1
                        summary.sent += planned.rows
                        if dry_run:
                            continue
                        body = await ledger.run(
                            partial(_sqlpath.job_body, warehouse, plan, planned)
                        )
                        job_id = await post(orjson.Fragment(body))
                        now = iso(clock)
                        await ledger.run(
                            partial(
                                _sqlpath.record_job,
                                warehouse,
                                account_id=account,
                                destination=ledger.destination,
                                job_id=job_id,
                                kind=_KIND,
                                job=planned,
                                now=now,
                                repeats=plan.repeats,
                                fresh=plan.fresh,
                            )
                        )
                        pending[job_id] = JobInfo(_KIND, planned.rows, now)
                        if on_job is not None:
                            on_job(job_id, planned.rows)
                finally:
                    await ledger.run(partial(_sqlpath.drop, warehouse))
            finally:
                await ledger.run(partial(_sqlpath.restore, warehouse, settings))
            rows = ()
        sent_before = set() if full or not rows else await ledger.sent_hashes()

        async def submit() -> None:
            body, keys = packer.take()
            summary.jobs += 1
            summary.sent += len(keys)
            if dry_run:
                return
            job_id = await post(body)
            pending[job_id] = await ledger.record_job(job_id, _KIND, keys)
            if on_job is not None:
                on_job(job_id, len(keys))

        splits: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        fixed = _split(properties, id_column) if properties is not None else None
        max_row = limits.max_row_bytes
        by_id = id_column == "id"
        for row in rows:
            summary.rows += 1
            identity = text_of(row.get(id_column))
            if not identity:
                refused.append(("", id_column, f"no {id_column}"))
                continue
            if fixed is None:
                keys = tuple(row)
                split = splits.get(keys)
                if split is None:
                    split = splits[keys] = _split(keys, id_column)
            else:
                split = fixed
            attr_cols, prop_cols = split
            attrs: dict[str, Any] = {c: row.get(c) for c in attr_cols}
            if prop_cols:
                attrs["properties"] = {c: row.get(c) for c in prop_cols}
            if by_id:
                encoded = encode({"type": "profile", "id": identity, "attributes": attrs})
            else:
                attrs[id_column] = identity
                encoded = encode({"type": "profile", "attributes": attrs})
            if len(encoded) > max_row:
                refused.append(
                    (identity, "profile", f"payload of {len(encoded)} bytes exceeds 100 KB")
                )
                continue
            digest = payload_hash(encoded)
            if digest in sent_before:
                summary.unchanged += 1
                continue
            if not packer.fits(encoded):
                await submit()
            packer.add(encoded, identity, digest)
        if packer.rows:
            await submit()
        summary.errors += len(refused)
        if not dry_run:
            await ledger.record_errors("", refused)
            summary.errors += await _wait(
                client, ledger, pending, poll or PollPolicy(), clock, id_column
            )
        return summary


async def _wait(
    client: AsyncClient,
    ledger: Ledger,
    pending: dict[str, JobInfo],
    poll: PollPolicy,
    clock: Clock,
    id_column: str,
) -> int:
    """Poll until every job in ``pending`` is done; the rows their import errors refused."""
    failed = 0
    delay = poll.first
    while pending:
        statuses = await _statuses(client, set(pending))
        clean: list[tuple[str, JobInfo]] = []
        for job_id, (status, failed_count) in statuses.items():
            if status not in _DONE and status != "lost":
                continue
            info = pending.pop(job_id)
            if status == "complete" and not failed_count:
                clean.append((job_id, info))
                continue
            errors = (
                await _import_errors(client, job_id, id_column)
                if status == "complete" and failed_count
                else []
            )
            failed += len(errors)
            await ledger.finish_job(job_id, info, status, errors)
        await ledger.finish_clean(clean)
        if pending:
            await clock.sleep(delay)
            delay = min(delay * poll.factor, poll.longest)
    return failed


async def _statuses(client: AsyncClient, wanted: set[str]) -> dict[str, tuple[str, int]]:
    """The status of each wanted job: from the job list (newest first, 100 a page) while
    that is cheaper than asking for each, then one by one for any not found there."""
    found: dict[str, tuple[str, int]] = {}
    if len(wanted) > 2:
        params = {"sort": "-created_at", "page[size]": 100}
        pages = 0
        async for page in client.iter_pages("get_bulk_import_profiles_jobs", params=params):
            pages += 1
            for job in page.records:
                if job.get("id") in wanted:
                    attrs = mapping_of(job.get("attributes"))
                    found[str(job["id"])] = (
                        str(attrs.get("status")),
                        int(attrs.get("failed_count") or 0),
                    )
            # our jobs are the newest unless another pusher shares the account
            if len(found) == len(wanted) or pages * 100 >= 4 * len(wanted):
                break
    for job_id in wanted - found.keys():
        try:
            doc = await client.get_document(
                "get_bulk_import_profiles_job", path_params={"job_id": job_id}
            )
        except NotFoundError:
            found[job_id] = ("lost", 0)
            continue
        attrs = mapping_of(getattr(doc.data, "attributes", None))
        found[job_id] = (str(attrs.get("status")), int(attrs.get("failed_count") or 0))
    return found


async def _import_errors(
    client: AsyncClient, job_id: str, id_column: str
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    async for page in client.iter_pages(
        "get_errors_for_bulk_import_profiles_job", path_params={"id": job_id}
    ):
        for err in page.records:
            attrs = mapping_of(err.get("attributes"))
            original = mapping_of(attrs.get("original_payload"))
            identity = text_of(
                original.get("id")
                if id_column == "id"
                else mapping_of(original.get("attributes")).get(id_column)
            )
            pointer = str(mapping_of(attrs.get("source")).get("pointer") or "")
            reason = str(attrs.get("detail") or attrs.get("title") or attrs.get("code") or "")
            out.append((identity, field_of(pointer, _ROWS_POINTER), reason))
    return out
