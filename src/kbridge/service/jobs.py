"""What each kind of job does: thin executors over the workflows in sync, privacy, campaigns.

An executor is ``async def run(ctx: JobContext) -> dict`` (the job's result).
It does the work by calling the workflow functions the CLI calls too, and
tells the worker how it ended by returning, by raising :class:`Postpone`
(come back later, not a failure: a deletion waiting for a sync) or by
raising anything else, which :func:`classify` turns into one line and the
decision whether trying again could help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Unpack

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from kbridge.analytics import AnalyticsError, rfm
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig, TokenProvider
from kbridge.api.errors import (
    ApiError,
    AuthenticationError,
    ChallengeError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    redact,
)
from kbridge.api.ratelimit import RateLimiter, parse_limit_factor
from kbridge.api.ratestore import RateBudgetStore
from kbridge.campaigns.errors import PublishError, SendFailedError
from kbridge.campaigns.publish import PublishRequest, publish
from kbridge.campaigns.publish import cancel as cancel_campaign
from kbridge.campaigns.publish import revert as revert_campaign
from kbridge.campaigns.publish import schedule as schedule_campaign
from kbridge.connections import (
    ConnectionNotFoundError,
    ConnectionRecord,
    ConnectionsError,
    SecretBox,
    explain_permission_error,
    open_credentials,
)
from kbridge.core import Clock, ConfigurationError
from kbridge.core.audit import AuditFields, audit_json
from kbridge.privacy import (
    PollPolicy,
    Subject,
    access_reports,
    execute_deletions,
    parse_subject,
    plan_deletions,
)
from kbridge.privacy.errors import PrivacyError
from kbridge.push.audiences import push_segment
from kbridge.report import build_report, has_data
from kbridge.service.appdb import DEFAULT_LEASE, AppDatabase
from kbridge.service.broker import is_redis_url
from kbridge.service.connection_store import ConnectionSettings, SqlConnectionStore
from kbridge.service.models import AuditEntry, Meta
from kbridge.service.ratebudgets import LocalRateBudgets
from kbridge.service.ratestore import RedisRateBudgetStore
from kbridge.service.sealing import SEALED_REPORTS, SEALED_SUBJECTS, open_sealed, sealed
from kbridge.service.views import JobView
from kbridge.sync import Callbacks, SyncError, SyncOptions
from kbridge.sync import run as run_sync
from kbridge.warehouse import (
    DestinationBusyError,
    DestinationLockedError,
    duckdb_path,
    open_warehouse,
)

__all__ = [
    "EXECUTORS",
    "AppPrivacyLog",
    "Executor",
    "Failure",
    "JobContext",
    "JobFailure",
    "LoadedConnection",
    "Postpone",
    "WorkerSettings",
    "classify",
    "default_warehouse_url",
    "privacy_access_job",
    "privacy_delete_job",
    "sync_job",
    "wait_for_held_warehouse",
]

_log = logging.getLogger(__name__)

#: the capability a kind of job needs (for the one line a 403 gets)
_CAPABILITY = {
    "sync": "sync",
    "privacy_access": "privacy-access",
    "privacy_delete": "privacy-delete",
    "campaign_publish": "campaigns-publish",
    "campaign_cancel": "campaigns-publish",
    "campaign_revert": "campaigns-publish",
    "campaign_schedule": "campaigns-publish",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSettings:
    """How a worker runs jobs; every duration is here so tests can shrink them."""

    #: where default warehouses live (``warehouses/<workspace>/<connection>.duckdb``)
    data_dir: Path
    #: opens the connections' sealed secrets
    master_key: bytes = field(repr=False)
    #: a Redis URL: every worker shares one rate budget per Klaviyo account there
    broker_url: str | None = field(default=None, repr=False)
    #: how long a silent worker keeps its job; renewed every ``lease / 3``
    lease: timedelta = DEFAULT_LEASE
    #: the first retry's wait; doubled each attempt, up to ``max_backoff``
    retry_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    #: how soon to look again at a job that waits for another (a sync of its connection)
    busy_retry: timedelta = timedelta(seconds=15)
    #: how long a deletion job polls Klaviyo for confirmation before it lets go of its worker
    confirm_within: timedelta = timedelta(minutes=2)
    #: then it comes back this much later, for up to ``confirm_for`` after it was queued
    confirm_every: timedelta = timedelta(minutes=10)
    confirm_for: timedelta = timedelta(days=3)
    #: how long a job waits, attempts unspent, for a warehouse file another process holds
    #: (a CLI ``kbridge sync`` of a large account runs for hours); then it fails
    warehouse_wait_for: timedelta = timedelta(hours=12)
    #: the longest pause between two looks at such a file
    warehouse_retry_max: timedelta = timedelta(minutes=5)
    #: without a broker: the rate budgets the jobs of this process share, one per Klaviyo
    #: account, and which the dashboard reads
    rate_budgets: LocalRateBudgets = field(
        default_factory=LocalRateBudgets, repr=False, compare=False
    )
    #: how often a job's 429s are written to its timeline while it runs
    rate_limited_every: timedelta = timedelta(seconds=2)

    @property
    def renew_every(self) -> timedelta:
        return self.lease / 3


class Postpone(Exception):
    """Not now: put the job back in the queue until ``delay`` has passed (no attempt spent).

    ``shown``: ``reason`` is the job's line meanwhile (in the dashboard and ``kbridge
    jobs``), for a wait the user may want to end.
    """

    def __init__(self, delay: timedelta, reason: str, *, shown: bool = False) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason
        self.shown = shown


def wait_for_held_warehouse(
    exc: DestinationLockedError, job: JobView, settings: WorkerSettings, now: datetime
) -> Postpone | Failure:
    """A job whose warehouse file another process holds: look again later, backing off
    as the wait grows, until ``settings.warehouse_wait_for`` after it was queued."""
    waited = max(now - job.created_at, timedelta(0))
    if waited >= settings.warehouse_wait_for:
        hours = settings.warehouse_wait_for.total_seconds() / 3600
        return Failure(
            _line(f"{exc}, still after {hours:g}h of waiting; stop that process and run again"),
            retry=False,
        )
    delay = min(max(waited / 4, settings.busy_retry), settings.warehouse_retry_max)
    return Postpone(
        delay,
        _line(
            f"waiting: {exc} (a kbridge sync outside the service?); "
            f"trying again in {max(delay.total_seconds(), 1):.0f}s"
        ),
        shown=True,
    )


@dataclass(frozen=True, slots=True)
class Failure:
    """How a job failed: one line for the user, and whether another attempt may succeed."""

    line: str
    retry: bool
    #: at least this long before the next attempt (``None``: the usual backoff)
    retry_after: timedelta | None = None


@dataclass(frozen=True, slots=True)
class LoadedConnection:
    record: ConnectionRecord
    settings: ConnectionSettings
    secrets: dict[str, Any] = field(repr=False)


class JobContext:
    """What an executor may use: its job, the app database, settings, and a progress slot."""

    def __init__(
        self,
        job: JobView,
        db: AppDatabase,
        settings: WorkerSettings,
        clock: Clock,
    ) -> None:
        self.job = job
        self.db = db
        self.settings = settings
        self.clock = clock
        #: the latest progress; the lease renewal writes it to the job
        self.progress: dict[str, Any] | None = None
        #: the connection's name once loaded (for the lines failures are told in)
        self.connection_name: str | None = None

    async def after_running_sync(
        self, reason: str = "waiting for the connection's running sync"
    ) -> None:
        """Postpone this job (no worker held) while a sync of its connection writes the
        warehouse: what it reads or purges must come after that sync's commit."""
        connection_id = self.job.connection_id
        if connection_id is not None and await asyncio.to_thread(
            self.db.sync_running, connection_id
        ):
            raise Postpone(self.settings.busy_retry, reason)

    def report(self, progress: dict[str, Any]) -> None:
        """Record where the job stands (written to the job at the next lease renewal)."""
        self.progress = progress

    def connection(self) -> LoadedConnection:
        """The job's connection, its settings and secrets (from the app database)."""
        if self.job.connection_id is None:
            raise ConfigurationError(f"a {self.job.kind} job needs a connection")
        store = SqlConnectionStore(
            self.db.engine, self.job.workspace_id, master_key=self.settings.master_key
        )
        name = store.name_of(self.job.connection_id)
        self.connection_name = name
        record, secrets = store.load(name)
        return LoadedConnection(record, store.settings(name), secrets)

    @contextlib.asynccontextmanager
    async def client(self, connection: LoadedConnection) -> AsyncIterator[AsyncClient]:
        """A client for ``connection``, paced to its rate limits, on the shared budget if any.

        An OAuth connection's client refreshes its tokens by itself: one process
        at a time per connection (the app database's refresh lock), the rotated
        tokens sealed in the app database before anyone uses them.
        """
        try:
            factor = parse_limit_factor(connection.settings.rate_limits)
        except ValueError as exc:
            raise ConfigurationError(f"rate_limits {exc}") from None
        async with contextlib.AsyncExitStack() as stack:
            api_key: str | None = None
            token_provider: TokenProvider | None = None
            if connection.record.kind == "oauth":
                store = SqlConnectionStore(
                    self.db.engine,
                    self.job.workspace_id,
                    master_key=self.settings.master_key,
                    clock=self.clock,
                )
                oauth_http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))
                credentials = await asyncio.to_thread(
                    open_credentials,
                    connection.record.name,
                    store=store,
                    clock=self.clock,
                    http=oauth_http,
                )
                token_provider = credentials.token_provider
            else:
                api_key = connection.secrets.get("api_key")
                if not api_key:
                    raise ConnectionsError(
                        f"connection {connection.record.name!r} has no stored key; connect it again"
                    )
            limiter_config = LimiterConfig(limit_factor=factor)
            budget: RateBudgetStore = self.settings.rate_budgets.store(connection.record.account_id)
            if is_redis_url(self.settings.broker_url):
                assert self.settings.broker_url is not None
                # one budget per Klaviyo account, whichever worker or key acts for it
                shared = RedisRateBudgetStore(
                    self.settings.broker_url,
                    clock=self.clock,
                    account_id=connection.record.account_id,
                )
                stack.push_async_callback(shared.aclose)
                budget = shared
            refused = _RateLimitedLog(self)
            await stack.enter_async_context(refused.flushing())
            limiter = RateLimiter(
                clock=self.clock,
                config=limiter_config,
                store=budget,
                on_rate_limited=refused.hit,
            )
            client = await stack.enter_async_context(
                AsyncClient(
                    api_key,
                    token_provider=token_provider,
                    installation_id=connection.record.account_id if token_provider else None,
                    base_url=connection.record.base_url,
                    config=ClientConfig(limiter=limiter_config),
                    clock=self.clock,
                    rate_limiter=limiter,
                )
            )
            yield client

    def warehouse_url(self, connection: LoadedConnection) -> str:
        """The connection's warehouse, or its DuckDB file under the data directory."""
        if connection.settings.warehouse:
            return connection.settings.warehouse
        url = default_warehouse_url(
            self.settings.data_dir, self.job.workspace_id, connection.record.name
        )
        Path(url.removeprefix("duckdb:///")).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return url


class _RateLimitedLog:
    """A job's 429s, written to its timeline every few seconds and when its client closes:
    the durable count a connection's page shows for the last 24 hours."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._since: datetime | None = None
        self._counts: dict[str, int] = {}

    def hit(self, operation_id: str | None) -> None:
        if self._since is None:
            self._since = self._ctx.clock.now()
        key = operation_id or "unknown"
        self._counts[key] = self._counts.get(key, 0) + 1

    async def flush(self) -> None:
        if self._since is None:
            return
        at, counts = self._since, self._counts
        self._since, self._counts = None, {}
        try:
            await asyncio.to_thread(self._ctx.db.record_rate_limited, self._ctx.job.id, at, counts)
        except Exception:  # a count lost must not fail the job that drew it
            _log.warning("cannot record the 429s of job %s", self._ctx.job.id, exc_info=True)

    @contextlib.asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        every = self._ctx.settings.rate_limited_every.total_seconds()

        async def keep_flushing() -> None:
            while True:
                # real time, like the lease renewal: a cadence, not a reading of the clock
                await asyncio.sleep(every)
                await self.flush()

        task = asyncio.create_task(keep_flushing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.shield(self.flush())


def default_warehouse_url(data_dir: Path, workspace_id: str, connection_name: str) -> str:
    """``duckdb:///DATA_DIR/warehouses/WORKSPACE/NAME.duckdb``: one file per connection.

    The workspace is in the path because connection names are unique only
    within one. The REST API reports it and the worker writes there: one definition.
    """
    path = Path(data_dir) / "warehouses" / workspace_id / f"{connection_name}.duckdb"
    return f"duckdb:///{path.resolve()}"


Executor = Callable[[JobContext], Awaitable[dict[str, Any]]]


# -- sync ---------------------------------------------------------------------------------------


def _start_date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"params.start_date: {value!r} is not an ISO date-time like 2024-01-01T00:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigurationError("params.start_date: give a timezone, e.g. 2024-01-01T00:00:00Z")
    return parsed


async def sync_job(ctx: JobContext) -> dict[str, Any]:
    """Sync the connection's account into its warehouse (params: ``streams``, ``start_date``)."""
    params = ctx.job.params
    connection = await asyncio.to_thread(ctx.connection)
    counts: dict[str, int] = {}

    def on_progress(stream: str, n: int) -> None:
        counts[stream] = counts.get(stream, 0) + n
        ctx.report({"streams": {name: {"records": c} for name, c in counts.items()}})

    streams = params.get("streams")
    options = SyncOptions(
        ctx.warehouse_url(connection),
        streams=list(streams) if streams else None,
        start_date=_start_date(params.get("start_date")),
        full_refresh=bool(params.get("full_refresh", False)),
        clock=ctx.clock,
        callbacks=Callbacks(on_progress=on_progress),
    )
    async with ctx.client(connection) as client:
        result = await run_sync(client, options)
    return {
        "account_id": result.account_id,
        "streams": {name: {"records": r.records} for name, r in result.streams.items()},
    }


# -- privacy ------------------------------------------------------------------------------------


class AppPrivacyLog:
    """The privacy workflows' :class:`~kbridge.privacy.AuditLog` in the app database.

    Entries go to ``audit_log`` (action ``privacy.access`` / ``privacy.delete``,
    target the job), subjects only by keyed hash; the hashing key is per
    workspace, sealed under the master key in ``meta``.
    """

    def __init__(
        self, db: AppDatabase, workspace_id: str, job_id: str, *, master_key: bytes, clock: Clock
    ) -> None:
        self._sessions = sessionmaker(db.engine, expire_on_commit=False)
        self._workspace_id = workspace_id
        self._job_id = job_id
        self._box = SecretBox(master_key)
        self._clock = clock

    def __repr__(self) -> str:
        return f"AppPrivacyLog(workspace_id={self._workspace_id!r})"

    def audit_key(self) -> bytes:
        name = f"privacy-key:{self._workspace_id}"
        aad = f"kbridge:{name}".encode()
        for _ in range(2):
            with self._sessions() as session, session.begin():
                row = session.get(Meta, name)
                if row is not None:
                    key = self._box.open_or_none(bytes(row.value), aad=aad)
                    if key is None:
                        raise ConnectionsError(
                            "cannot open the workspace's privacy key: wrong master key?"
                        )
                    return key
            try:
                with self._sessions() as session, session.begin():
                    fresh = secrets.token_bytes(32)
                    session.add(Meta(key=name, value=self._box.seal(fresh, aad=aad)))
                return fresh
            except IntegrityError:  # another worker made it first: read theirs
                continue
        raise ConnectionsError("the workspace's privacy key could not be stored")

    def append_audit(self, **fields: Unpack[AuditFields]) -> int:
        detail = audit_json(fields)
        entry = AuditEntry(
            workspace_id=self._workspace_id,
            at=self._clock.now(),
            actor="worker",
            action=f"privacy.{detail.pop('action')}",
            target_kind="job",
            target_id=self._job_id,
            detail=detail,
        )
        with self._sessions() as session, session.begin():
            session.add(entry)
            session.flush()
            return entry.id

    def audit_entries(
        self,
        *,
        batch_id: str | None = None,
        subject_hash: str | None = None,
        action: str | None = None,
    ) -> list[dict[str, Any]]:
        query = select(AuditEntry).where(
            AuditEntry.workspace_id == self._workspace_id,
            AuditEntry.action.like("privacy.%")
            if action is None
            else AuditEntry.action == f"privacy.{action}",
        )
        with self._sessions() as session:
            rows = session.scalars(query.order_by(AuditEntry.id)).all()
        found = []
        for row in rows:
            d = dict(row.detail or {})
            if batch_id is not None and d.get("batch_id") != batch_id:
                continue
            if subject_hash is not None and d.get("subject_hash") != subject_hash:
                continue
            found.append(
                {
                    "id": row.id,
                    "recorded_at": row.at,
                    "subject_hash": d.get("subject_hash", ""),
                    "action": row.action.removeprefix("privacy."),
                    "outcome": d.get("outcome", ""),
                    "batch_id": d.get("batch_id"),
                    "requested_at": _when(d.get("requested_at")),
                    "confirmed_at": _when(d.get("confirmed_at")),
                    "profile_ids": tuple(d.get("profile_ids") or ()),
                    "request_ids": tuple(d.get("request_ids") or ()),
                    "detail": d.get("detail"),
                }
            )
        return found


def _when(text: object) -> datetime | None:
    return None if not text else datetime.fromisoformat(str(text))


def _subjects(ctx: JobContext) -> list[Subject]:
    """The job's people: sealed (as the REST API stores them) or, from a direct caller, given."""
    params = ctx.job.params
    given = params.get("subjects")
    if SEALED_SUBJECTS in params:
        given = open_sealed(
            ctx.settings.master_key, ctx.job.workspace_id, SEALED_SUBJECTS, params[SEALED_SUBJECTS]
        )
    if not isinstance(given, list) or not given:
        raise ConfigurationError("params.subjects: give a list of emails or phone numbers")
    return [parse_subject(str(s)) for s in given]


def _privacy_log(ctx: JobContext) -> AppPrivacyLog:
    return AppPrivacyLog(
        ctx.db,
        ctx.job.workspace_id,
        ctx.job.id,
        master_key=ctx.settings.master_key,
        clock=ctx.clock,
    )


async def privacy_access_job(ctx: JobContext) -> dict[str, Any]:
    """Access reports for ``params.subjects`` (each recorded in the audit log)."""
    subjects = _subjects(ctx)
    connection = await asyncio.to_thread(ctx.connection)
    async with ctx.client(connection) as client:
        reports = await access_reports(
            client,
            subjects,
            audit=_privacy_log(ctx),
            events=bool(ctx.job.params.get("events", False)),
            clock=ctx.clock,
        )
    # the reports are the people's data: sealed in the job row, opened for the API's caller
    found = [r.to_dict() for r in reports]
    return {
        "report_count": len(found),
        SEALED_REPORTS: sealed(
            ctx.settings.master_key, ctx.job.workspace_id, SEALED_REPORTS, found
        ),
    }


async def privacy_delete_job(ctx: JobContext) -> dict[str, Any]:
    """Delete ``params.subjects`` in Klaviyo, confirm, and purge them from the warehouse.

    Waits (postponed, no worker held) while a sync of the connection runs, so
    the purge comes after that sync's commit. Deletions Klaviyo has not
    finished within ``confirm_within`` make the job come back after
    ``confirm_every``; the batch then resumes from its audit entries,
    confirming without requesting again.
    """
    settings = ctx.settings
    await ctx.after_running_sync("waiting for the connection's running sync to commit")
    params = ctx.job.params
    subjects = _subjects(ctx)
    connection = await asyncio.to_thread(ctx.connection)
    log = _privacy_log(ctx)
    url = ctx.warehouse_url(connection)
    warehouse = await asyncio.to_thread(open_warehouse, url) if _warehouse_exists(url) else None
    try:
        async with ctx.client(connection) as client:
            batch = await plan_deletions(client, subjects, audit=log)
            results = await execute_deletions(
                client,
                batch,
                audit=log,
                allow_ambiguous=bool(params.get("allow_ambiguous", False)),
                allow_unmatched=bool(params.get("allow_unmatched", False)),
                warehouse=warehouse,
                account_id=connection.record.account_id,
                clock=ctx.clock,
                poll=PollPolicy(
                    first_delay=min(5.0, settings.confirm_within.total_seconds() or 1.0),
                    timeout=settings.confirm_within.total_seconds(),
                ),
            )
    finally:
        if warehouse is not None:
            warehouse.close()
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    pending = outcomes.get("pending", 0) + outcomes.get("requested", 0)
    if pending and ctx.clock.now() - ctx.job.created_at < settings.confirm_for:
        raise Postpone(
            settings.confirm_every,
            f"{pending} deletion(s) not yet confirmed by Klaviyo; looking again later",
        )
    return {"batch_id": batch.batch_id, "outcomes": outcomes}


def _warehouse_exists(url: str) -> bool:
    """A DuckDB file that was never synced is not created just to purge it."""
    path = duckdb_path(url) if url.startswith("duckdb:") else None
    return path is None or Path(path).exists()


# -- campaigns ----------------------------------------------------------------------------------

_PUBLISH_FIELDS = (
    "name",
    "included",
    "subject",
    "excluded",
    "template_id",
    "html",
    "text",
    "preview_text",
    "local_time",
    "smart_sending",
    "track_opens",
    "track_clicks",
    "utm",
    "draft",
)


def _publish_request(params: Mapping[str, Any], connection: LoadedConnection) -> PublishRequest:
    values = {k: params[k] for k in _PUBLISH_FIELDS if k in params}
    for required in ("name", "included", "subject"):
        if not values.get(required):
            raise ConfigurationError(f"params.{required}: required to publish a campaign")
    sender = connection.record.sender
    from_email = params.get("from_email") or sender.email
    if not from_email:
        raise ConfigurationError("params.from_email: required (the account has no default sender)")
    values["from_email"] = from_email
    values["from_label"] = params.get("from_label") or sender.name or from_email
    values["included"] = tuple(values["included"])
    values["excluded"] = tuple(values.get("excluded") or ())
    send_at = params.get("send_at")
    if send_at is not None:
        values["send_at"] = _start_date(send_at)
    return PublishRequest(**values)


async def campaign_publish_job(ctx: JobContext) -> dict[str, Any]:
    """Create, fill, check and send (or schedule, ``params.send_at``) an email campaign;
    with ``params.draft`` it is left a Draft (a ``campaign_schedule`` job sends it later).

    Never retried by itself: a failure after Klaviyo accepted the send could
    otherwise send twice. Check the campaign, then retry the job.
    """
    connection = await asyncio.to_thread(ctx.connection)
    request = _publish_request(ctx.job.params, connection)
    async with ctx.client(connection) as client:
        try:
            state = await publish(client, request, clock=ctx.clock)
        except Exception as exc:
            failure = classify(exc, kind="campaign_publish", connection=connection.record.name)
            raise JobFailure(failure.line) from exc
    return state.as_json()


async def _campaign_control(ctx: JobContext, verb: str) -> dict[str, Any]:
    campaign_id = ctx.job.params.get("campaign_id")
    if not campaign_id:
        raise ConfigurationError("params.campaign_id: which campaign")
    connection = await asyncio.to_thread(ctx.connection)
    async with ctx.client(connection) as client:
        act = cancel_campaign if verb == "cancel" else revert_campaign
        state = await act(client, str(campaign_id))
    return state.as_json()


async def campaign_cancel_job(ctx: JobContext) -> dict[str, Any]:
    """Stop a queued or sending campaign for good (``params.campaign_id``)."""
    return await _campaign_control(ctx, "cancel")


async def campaign_revert_job(ctx: JobContext) -> dict[str, Any]:
    """Put a scheduled campaign back to Draft (``params.campaign_id``)."""
    return await _campaign_control(ctx, "revert")


async def campaign_schedule_job(ctx: JobContext) -> dict[str, Any]:
    """Publish a Draft campaign again (after a revert), at ``params.send_at`` or now."""
    campaign_id = ctx.job.params.get("campaign_id")
    if not campaign_id:
        raise ConfigurationError("params.campaign_id: which campaign")
    send_at = ctx.job.params.get("send_at")
    connection = await asyncio.to_thread(ctx.connection)
    async with ctx.client(connection) as client:
        state = await schedule_campaign(
            client,
            str(campaign_id),
            send_at=None if send_at is None else _start_date(send_at),
            clock=ctx.clock,
        )
    return state.as_json()


async def report_job(ctx: JobContext) -> dict[str, Any]:
    """Every analysis of the connection's synced warehouse as the offline HTML report.

    Written to ``DATA_DIR/reports/WORKSPACE/NAME.html``, mode 0600 (its tables name
    people), replaced atomically; waits while a sync of the connection writes the warehouse.
    """
    await ctx.after_running_sync()
    connection = await asyncio.to_thread(ctx.connection)
    url = ctx.warehouse_url(connection)
    if not _warehouse_exists(url):
        raise JobFailure("nothing synced yet for this connection: run a sync job first")
    account_id = connection.record.account_id
    target = (
        ctx.settings.data_dir / "reports" / ctx.job.workspace_id / f"{connection.record.name}.html"
    )

    def build() -> int:
        warehouse = open_warehouse(url)
        try:
            if not has_data(warehouse, account_id):
                raise JobFailure(
                    f"no profiles or events of account {account_id} in the warehouse: "
                    "run a sync job first"
                )
            html = build_report(warehouse, account_id, generated_at=ctx.clock.now())
        finally:
            warehouse.close()
        data = html.encode("utf-8")
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{ctx.job.id}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        partial.replace(target)
        return len(data)

    size = await asyncio.to_thread(build)
    return {"path": str(target), "bytes": size, "account_id": account_id}


async def segment_push_job(ctx: JobContext) -> dict[str, Any]:
    """An RFM segment of the connection's synced warehouse as a Klaviyo list's members.

    ``params``: ``segment`` (e.g. ``"At risk"``), ``list_name`` (default ``"RFM: SEGMENT"``),
    ``prune`` (also remove members who left it), ``by`` (``email`` or ``id``), ``full``.
    Changed rows only, through bulk import jobs, as ``kbridge analytics rfm --push`` does.
    """
    params = ctx.job.params
    segment = params.get("segment")
    if not isinstance(segment, str) or not segment.strip():
        raise ConfigurationError('params.segment: which RFM segment, e.g. "At risk"')
    by = str(params.get("by", "email"))
    if by not in ("email", "id"):
        raise ConfigurationError("params.by: email or id")
    await ctx.after_running_sync()
    connection = await asyncio.to_thread(ctx.connection)
    url = ctx.warehouse_url(connection)
    if not _warehouse_exists(url):
        raise JobFailure("nothing synced yet for this connection: run a sync job first")
    warehouse = await asyncio.to_thread(open_warehouse, url)
    try:
        try:
            result = await asyncio.to_thread(rfm, warehouse, connection.record.account_id)
            name = result.segment_name(segment)
        except AnalyticsError as exc:
            raise JobFailure(str(exc)) from None
        members = [
            (str(r["profile_id"]), r["email"])
            for r in result.profiles.records()
            if r["segment"] == name
        ]
        if not members:
            raise JobFailure(f"segment {name!r} has no profiles; nothing to push")
        list_name = params.get("list_name") or f"RFM: {name}"
        async with ctx.client(connection) as client:
            pushed = await push_segment(
                client,
                name,
                str(list_name),
                members,
                warehouse=warehouse,
                by=by,
                prune=bool(params.get("prune", False)),
                full=bool(params.get("full", False)),
            )
    finally:
        await asyncio.to_thread(warehouse.close)
    return {
        "segment": pushed.segment,
        "list_id": pushed.list_id,
        "list_name": pushed.list_name,
        "list_created": pushed.created,
        "profiles": pushed.profiles,
        "removed": pushed.removed,
        "push": dict(pushed.counts or {}),
    }


class JobFailure(Exception):
    """An executor's own verdict: ``line``, and no automatic retry."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


#: kind → executor
EXECUTORS: dict[str, Executor] = {
    "sync": sync_job,
    "privacy_access": privacy_access_job,
    "privacy_delete": privacy_delete_job,
    "campaign_publish": campaign_publish_job,
    "campaign_cancel": campaign_cancel_job,
    "campaign_revert": campaign_revert_job,
    "campaign_schedule": campaign_schedule_job,
    "report": report_job,
    "segment_push": segment_push_job,
}


# -- failures -----------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")


def _line(text: str) -> str:
    """One line, no credentials."""
    return _WHITESPACE.sub(" ", redact(text)).strip()


def classify(
    exc: BaseException, *, kind: str, connection: str | None = None, now: datetime | None = None
) -> Failure:
    """What ``exc`` means for a job of ``kind``: one line, and whether retrying can help.

    Failures that will not heal by themselves (a refused key, a missing
    scope, an unverified sender, bad parameters) stop at once; the network,
    Klaviyo's 5xx and 429s, a busy warehouse and anything unforeseen get
    further attempts.
    """
    named = f"connection {connection!r}" if connection else "the connection"
    if isinstance(exc, JobFailure):
        return Failure(exc.line, retry=False)
    if isinstance(exc, SyncError):
        failed = [r.exception for r in exc.result.streams.values() if r.exception is not None]
        verdicts = [classify(e, kind=kind, connection=connection, now=now) for e in failed]
        fatal = next((v for v in verdicts if not v.retry), None)
        if fatal is not None:
            return fatal
        return Failure(_line(str(exc)), retry=True)
    if isinstance(exc, AuthenticationError):
        return Failure(
            f"Klaviyo refused the credentials of {named} (401: a wrong or revoked key, or "
            "a revoked OAuth grant); connect it again",
            retry=False,
        )
    if isinstance(exc, PermissionDeniedError):
        return Failure(_line(explain_permission_error(exc, _CAPABILITY.get(kind))), retry=False)
    if isinstance(exc, QuotaExhaustedError):
        wait = None if now is None else max(exc.resets_at - now, timedelta(0))
        return Failure(_line(str(exc)), retry=True, retry_after=wait)
    if isinstance(exc, RateLimitedError):
        wait = None if exc.retry_after is None else timedelta(seconds=exc.retry_after)
        return Failure(_line(str(exc)), retry=True, retry_after=wait)
    transient = (
        ServerError,
        ChallengeError,
        TransportError,
        UnexpectedResponseError,
        DestinationBusyError,
    )
    if isinstance(exc, transient):
        return Failure(_line(str(exc)), retry=True)
    if isinstance(exc, ConnectionNotFoundError):
        return Failure("the job's connection no longer exists", retry=False)
    if isinstance(exc, SendFailedError):
        return Failure(_line(str(exc)), retry=False)
    if isinstance(exc, (ApiError, ConfigurationError, ConnectionsError, PublishError)):
        # 4xx other than 429, bad parameters, a tampered or undecryptable connection, an
        # unverified sender: the same attempt would fail the same way
        return Failure(_line(str(exc)), retry=False)
    if isinstance(exc, PrivacyError):
        return Failure(_line(str(exc)), retry=False)
    return Failure(_line(f"{type(exc).__name__}: {exc}"), retry=True)


def backoff(settings: WorkerSettings, attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: doubling from ``retry_backoff``, capped."""
    wait: timedelta = settings.retry_backoff * (2 ** max(attempts - 1, 0))
    return min(wait, settings.max_backoff)


def result_counts(result: Mapping[str, Any]) -> dict[str, int]:
    """``{"profiles": N, …}`` of a finished sync's result."""
    streams = result.get("streams") or {}
    return {name: int(value.get("records", 0)) for name, value in streams.items()}
