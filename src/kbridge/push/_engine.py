"""What every push shares: encoding rows once, the changed-rows test, job packing by count
and bytes, and the warehouse bookkeeping that makes a push resumable.

Each row is encoded to its JSON bytes exactly once: those bytes are hashed for the
changed-rows test, measured for the size split and spliced into the job body as an
``orjson.Fragment`` (never re-encoded). The state kept in memory is one set of 64-bit
payload hashes per destination, not a dict of identities, so a million rows cost tens of
megabytes rather than hundreds.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import orjson

from kbridge.api import AsyncClient, InvalidRequestError
from kbridge.core import Clock, KbridgeError
from kbridge.push.tables import (
    BATCHES,
    JOB_BATCH,
    PUSH_ERRORS,
    PUSH_JOBS,
    PUSH_LOG,
    PUSH_LOG_ADOPTED,
    PUSH_STATE,
    PUSH_TABLES,
    of_destination,
    upgrade_log,
)
from kbridge.warehouse import Batch, DeleteWhere, Warehouse

__all__ = [
    "JobInfo",
    "JobLimits",
    "Ledger",
    "Packer",
    "PushInputError",
    "PushSummary",
    "account_of",
    "encode",
    "forget",
    "forget_logged",
    "payload_hash",
]

Row = tuple[Any, ...]
#: called after each job is recorded: (job id or ``None`` for body-less jobs, rows in it)
OnJob = Callable[[str | None, int], None]


class PushInputError(KbridgeError):
    """The rows cannot be pushed as given (a missing column, no identity): nothing was sent."""


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Klaviyo's per-request ceilings for one kind of job."""

    max_rows: int
    #: the encoded request body, envelope included; kept under Klaviyo's 5 MB with room to spare
    max_bytes: int = 5 * 1024 * 1024 - 64 * 1024
    #: one row's encoded payload; larger rows are refused into ``push_errors`` unsent
    max_row_bytes: int = 100 * 1024


@dataclass(slots=True)
class PushSummary:
    """The counts every push reports (``--json`` prints exactly these)."""

    rows: int = 0
    sent: int = 0
    unchanged: int = 0
    skipped_no_consent: int = 0
    errors: int = 0
    jobs: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "sent": self.sent,
            "unchanged": self.unchanged,
            "skipped_no_consent": self.skipped_no_consent,
            "errors": self.errors,
            "jobs": self.jobs,
        }


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS


def encode(obj: Any) -> bytes:
    """A row's payload as JSON, keys sorted so that equal payloads hash alike."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def payload_hash(encoded: bytes) -> int:
    """A signed 64-bit hash of an encoded payload (a warehouse ``bigint``)."""
    return int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "little", signed=True)


def jsonable(value: Any) -> Any:
    """A warehouse value as JSON takes it (dates as ISO text)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@dataclass(slots=True)
class Packer:
    """Collects encoded rows into jobs that respect both the row count and the byte limit."""

    limits: JobLimits
    envelope: int
    rows: list[bytes] = field(default_factory=list)
    keys: list[tuple[str, int]] = field(default_factory=list)
    size: int = 0

    def fits(self, encoded: bytes) -> bool:
        if not self.rows:
            return True
        if len(self.rows) >= self.limits.max_rows:
            return False
        return self.envelope + self.size + len(encoded) + 1 <= self.limits.max_bytes

    def add(self, encoded: bytes, identity: str, digest: int) -> None:
        self.rows.append(encoded)
        self.keys.append((identity, digest))
        self.size += len(encoded) + 1

    def take(self) -> tuple[orjson.Fragment, list[tuple[str, int]]]:
        body = orjson.Fragment(b"[" + b",".join(self.rows) + b"]")
        keys = self.keys
        self.rows, self.keys, self.size = [], [], 0
        return body, keys


_THREADS: weakref.WeakKeyDictionary[Warehouse, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_THREADS_LOCK = threading.Lock()


def _thread_of(warehouse: Warehouse) -> ThreadPoolExecutor:
    """One thread per warehouse for a push's warehouse calls.

    They are serialised by the warehouse's lock anyway; run on whichever of a pool's
    threads was free, each thread kept its own allocator caches, and a push of a million
    profiles held some 30 MB more than on one thread."""
    with _THREADS_LOCK:
        pool = _THREADS.get(warehouse)
        if pool is None:
            pool = _THREADS[warehouse] = ThreadPoolExecutor(1, "kbridge-push-warehouse")
        return pool


def iso(clock: Clock) -> str:
    return clock.now().isoformat()


class Ledger:
    """The warehouse side of one destination: the hashes already sent, the jobs in flight,
    and the errors. Every write is one transaction (a :class:`Batch`)."""

    def __init__(
        self, warehouse: Warehouse, account_id: str, destination: str, clock: Clock
    ) -> None:
        self.warehouse = warehouse
        self.account_id = account_id
        self.destination = destination
        self.clock = clock

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        # drivers block; keep the event loop (and the rate limiter's timers) free
        return await self.run(partial(fn, *args))

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` off the event loop (warehouse calls block), on the warehouse's thread."""
        return await asyncio.get_running_loop().run_in_executor(_thread_of(self.warehouse), fn)

    async def prepare(self) -> None:
        await self._run(self.warehouse.migrate, PUSH_TABLES)
        if self.warehouse.capabilities.dialect == "duckdb":
            await self._run(upgrade_log, self.warehouse)

    def _unlog(self, *, identities: Sequence[str] = (), job_id: str | None = None) -> None:
        """Forget rows in DuckDB's ``push_log`` too (where the DuckDB path keeps them).

        Run just before the batch that forgets them in ``push_state`` commits: a crash
        between the two only makes the next push send those rows again."""
        if self.warehouse.capabilities.dialect == "duckdb":
            forget_logged(
                self.warehouse, self.account_id, self.destination, identities, job_id=job_id
            )

    async def sent_hashes(self) -> set[int]:
        rows = await self._run(
            self.warehouse.query,
            "SELECT hash FROM push_state WHERE account_id = ? AND destination = ?",
            [self.account_id, self.destination],
        )
        return {int(r[0]) for r in rows}

    async def pending_jobs(self) -> dict[str, JobInfo]:
        rows = await self._run(
            self.warehouse.query,
            "SELECT job_id, kind, row_count, submitted_at FROM push_jobs "
            "WHERE account_id = ? AND destination = ? "
            "AND status NOT IN ('complete', 'cancelled', 'lost')",
            [self.account_id, self.destination],
        )
        return {str(r[0]): JobInfo(str(r[1]), int(r[2] or 0), _text_time(r[3])) for r in rows}

    async def record_job(
        self, job_id: str | None, kind: str, keys: Sequence[tuple[str, int]]
    ) -> JobInfo:
        """The job and the hashes of its rows, in one transaction: from here on a rerun
        treats these rows as sent (and polls the job) rather than sending them again."""
        now = iso(self.clock)
        info = JobInfo(kind, len(keys), now)
        batch = Batch(self.account_id)
        if job_id is not None:
            batch.upsert(PUSH_JOBS, [self._job_row(job_id, info, "queued", 0, None)])
        batch.upsert(
            PUSH_STATE,
            [(self.account_id, self.destination, ident, h, job_id, now) for ident, h in keys],
        )
        await self._run(self.warehouse.commit, batch)
        return info

    def _job_row(
        self, job_id: str, info: JobInfo, status: str, failed: int, finished: str | None
    ) -> Row:
        return (
            self.account_id,
            job_id,
            self.destination,
            info.kind,
            info.rows,
            status,
            failed,
            info.submitted_at,
            finished,
        )

    async def record_errors(self, job_id: str, errors: Sequence[tuple[str, str, str]]) -> None:
        """Rows refused before any job took them (identity, field, reason)."""
        if errors:
            batch = Batch(self.account_id)
            self._errors(batch, job_id, errors)
            await self.run(partial(self._unlog, identities=[i for i, _, _ in errors]))
            await self._run(self.warehouse.commit, batch)

    def _errors(self, batch: Batch, job_id: str, errors: Sequence[tuple[str, str, str]]) -> None:
        now = iso(self.clock)
        batch.upsert(
            PUSH_ERRORS,
            [(self.account_id, self.destination, job_id, i, f, r, now) for i, f, r in errors],
        )
        # a refused row's hash is forgotten so that the next push retries it
        for ident in dict.fromkeys(i for i, _, _ in errors):
            batch.delete(
                DeleteWhere(PUSH_STATE, {"destination": self.destination, "identity": ident})
            )

    async def finish_job(
        self,
        job_id: str,
        info: JobInfo,
        status: str,
        errors: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """The job's outcome, its refused rows and their forgotten hashes, in one transaction."""
        batch = Batch(self.account_id)
        if status != "complete":
            # cancelled or gone: none of its rows can be trusted to have landed
            batch.delete(
                DeleteWhere(PUSH_STATE, {"destination": self.destination, "job_id": job_id})
            )
        if errors:
            self._errors(batch, job_id, errors)
        batch.upsert(PUSH_JOBS, [self._job_row(job_id, info, status, len(errors), iso(self.clock))])
        if status != "complete" or errors:
            await self.run(
                partial(
                    self._unlog,
                    identities=[i for i, _, _ in errors],
                    job_id=None if status == "complete" else job_id,
                )
            )
        await self._run(self.warehouse.commit, batch)

    async def finish_clean(self, jobs: Sequence[tuple[str, JobInfo]]) -> None:
        """Jobs complete without a refused row, in one transaction (a push's jobs mostly
        finish between two looks at the job list)."""
        if jobs:
            now = iso(self.clock)
            batch = Batch(self.account_id)
            batch.upsert(
                PUSH_JOBS, [self._job_row(j, info, "complete", 0, now) for j, info in jobs]
            )
            await self._run(self.warehouse.commit, batch)


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A submitted job as the warehouse records it."""

    kind: str
    rows: int
    submitted_at: str


def forget(
    warehouse: Warehouse, account_id: str, destination: str, identities: Sequence[str]
) -> None:
    """Forget that ``identities`` were pushed to ``destination``, so the next push sends them
    (a list member removed by hand or by ``--prune`` is added again when it rejoins)."""
    if identities:
        batch = Batch(account_id)
        for ident in dict.fromkeys(identities):
            batch.delete(DeleteWhere(PUSH_STATE, {"destination": destination, "identity": ident}))
        if warehouse.capabilities.dialect == "duckdb":
            upgrade_log(warehouse)
            forget_logged(warehouse, account_id, destination, identities)
        warehouse.commit(batch)


def forget_logged(
    warehouse: Warehouse,
    account_id: str,
    destination: str,
    identities: Sequence[str],
    *,
    job_id: str | None = None,
) -> None:
    """Delete ``identities`` (and the rows of ``job_id``) from DuckDB's ``push_log``: one
    statement for all of them, as the log has no index to look each one up by."""
    if identities:
        warehouse.query(
            f"DELETE FROM {PUSH_LOG} WHERE batch IN (SELECT batch FROM ({BATCHES})) "  # noqa: S608
            "AND key IN (SELECT hash(unnest(CAST(? AS VARCHAR[]))))",
            [*of_destination(account_id, destination), list(dict.fromkeys(identities))],
        )
    if job_id is not None:
        warehouse.query(
            f"DELETE FROM {PUSH_LOG} WHERE batch IN (SELECT {JOB_BATCH.format('?', '?')} "  # noqa: S608
            f"UNION ALL SELECT batch FROM {PUSH_LOG_ADOPTED} WHERE account_id = ? "
            "AND destination = ? AND job_id = ?)",
            [account_id, job_id, account_id, destination, job_id],
        )


def _text_time(value: Any) -> str:
    return value.isoformat() if isinstance(value, (datetime, date)) else str(value)


async def account_of(client: AsyncClient) -> str:
    """The Klaviyo account id the key belongs to (the push state is kept per account)."""
    doc = await client.get_document("get_accounts")
    data = doc.data
    first = data[0] if isinstance(data, tuple) and data else data
    ident = getattr(first, "id", None)
    if not ident:
        raise KbridgeError("Klaviyo answered GET /api/accounts without an account id")
    return str(ident)


def field_of(pointer: str, base: str) -> str:
    """``/data/attributes/profiles/data/3/attributes/properties/plan`` → ``properties.plan``."""
    rest = pointer[len(base) :] if pointer.startswith(base) else pointer
    parts = [p for p in rest.split("/") if p]
    if parts and parts[0].isdigit():
        parts = parts[1:]
    if parts and parts[0] == "attributes":
        parts = parts[1:]
    return ".".join(parts) or "profile"


def text_of(value: Any) -> str:
    return "" if value is None else str(value).strip()


def mapping_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


_ROW_INDEX = re.compile(r"^/data/attributes/[^/]+/data/(\d+)(?:/(.*))?$")


async def send_accepted(
    client: AsyncClient,
    operation_id: str,
    make_body: Callable[[orjson.Fragment], dict[str, Any]],
    rows: list[bytes],
    keys: list[tuple[str, int]],
    ledger: Ledger,
    kind: str,
) -> tuple[int, list[tuple[str, str, str]]]:
    """Send one body-less (202) job; the rows sent and the rows refused.

    Klaviyo validates such a job whole and refuses it for one bad row, naming the row
    in the error's pointer: that row is set aside (kept in ``push_errors``) and the rest
    sent again, so one bad row never stops the good ones.
    """
    refused: list[tuple[str, str, str]] = []
    while rows:
        fragment = orjson.Fragment(b"[" + b",".join(rows) + b"]")
        try:
            await client.request(operation_id, json=make_body(fragment))
        except InvalidRequestError as exc:
            found = _ROW_INDEX.match(exc.details.source_pointer or "")
            k = int(found.group(1)) if found else -1
            if not 0 <= k < len(rows):
                raise
            rest = (found.group(2) if found else None) or ""
            named = [p for p in rest.split("/") if p and not p.isdigit() and p != "attributes"]
            field = named[-1] if named else "row"
            reason = exc.details.detail or exc.details.title or "refused"
            refused.append((keys[k][0], field, reason))
            del rows[k], keys[k]
            continue
        await ledger.record_job(None, kind, keys)
        return len(keys), refused
    return 0, refused
