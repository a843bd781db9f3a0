"""The REST API: ``create_app`` and the routes under ``/api/v1``.

Every route but the docs needs ``Authorization: Bearer TOKEN``; the token's
workspace scopes every lookup, so another workspace's ids are simply not
found (404, never 403: a 403 would confirm that the id exists). The app
database is the truth: a job is stored first, then ``on_enqueued(job_id)``
wakes a worker; should that fail, the job is still queued and the next
start's ``recover_jobs`` finds it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kbridge import __version__
from kbridge.api import DEFAULT_BASE_URL, AsyncClient, ClientConfig, RetryPolicy
from kbridge.api.auth import PrivateKeyAuth, StaticTokenProvider
from kbridge.api.errors import (
    ApiError,
    AuthenticationError,
    InvalidCredentialsError,
    PermissionDeniedError,
    TransportError,
)
from kbridge.api.validation import ValidationError, check_email, check_phone
from kbridge.connections import (
    CAPABILITY_OPERATIONS,
    CAPABILITY_SUMMARIES,
    DEFAULT_PROBED,
    KEY_FILE_NAME,
    AccountInfo,
    ConnectionConflictError,
    ConnectionNotFoundError,
    ConnectionRecord,
    ConnectionsError,
    ConnectionStoreError,
    OAuthClient,
    OAuthClientInfo,
    OAuthDeniedError,
    OAuthError,
    Pkce,
    UnknownCapabilityError,
    authorize_url,
    check_callback,
    check_name,
    exchange_code,
    explain_permission_error,
    load_or_create_key_file,
    new_state,
    parse_capabilities,
    plan_scopes,
    probe_capabilities,
    verify_account,
)
from kbridge.connections.probe import ProbeReport
from kbridge.connections.service import VERIFIED_SCOPES, _token_secrets
from kbridge.core import Clock, ConfigurationError, SystemClock
from kbridge.privacy import Subject, subject_hash
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import ConnectionSettings, SqlConnectionStore
from kbridge.service.errors import ConflictError, InvalidScheduleError, NotFoundError
from kbridge.service.jobs import AppPrivacyLog
from kbridge.service.oauth_flows import OAuthFlows
from kbridge.service.privacy_requests import PrivacyRequestView
from kbridge.service.sealing import SEALED_REPORTS, SEALED_SUBJECTS, open_sealed, seal_subjects
from kbridge.service.views import JobView, ScheduleView, TokenIdentity
from kbridge.web.params import (
    check_job_params,
    check_rate_limits,
    check_warehouse,
    default_warehouse,
    redact_url,
)
from kbridge.web.problems import ApiProblem, install_problem_handlers, invalid
from kbridge.web.schemas import (
    CampaignOut,
    CapabilityScopesOut,
    ConnectionIn,
    ConnectionOut,
    ErrorOut,
    JobCreated,
    JobEventOut,
    JobIn,
    JobOut,
    JobState,
    OAuthStartIn,
    OAuthStartOut,
    PrivacyRequestIn,
    PrivacyRequestJob,
    PrivacyRequestOut,
    RotateIn,
    ScheduleIn,
    ScheduleOut,
    ScopeCheckOut,
)

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
_log = logging.getLogger("kbridge.web")
_bearer = HTTPBearer(
    auto_error=False, description="an API token of one workspace (`kbridge tokens add`)"
)
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
#: someone waits on the answer: a few quick retries, not a sync's five minutes of them
_VERIFY_RETRY = RetryPolicy(max_attempts=3, total_deadline=30.0)
#: how long a started OAuth flow waits for its callback (someone is at the consent screen)
_OAUTH_FLOW_TTL = timedelta(minutes=15)


@dataclass
class _Context:
    """What the routes share: the app database, where defaults live, the wake-up call."""

    appdb: AppDatabase
    data_dir: Path
    master_key: bytes = field(repr=False)
    on_enqueued: Callable[[str], None] | None
    clock: Clock | None = None
    _stores: dict[str, SqlConnectionStore] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self, workspace_id: str) -> SqlConnectionStore:
        with self._lock:
            found = self._stores.get(workspace_id)
            if found is None:
                found = SqlConnectionStore(
                    self.appdb.engine, workspace_id, master_key=self.master_key, clock=self.clock
                )
                self._stores[workspace_id] = found
            return found

    def now(self) -> datetime:
        return (self.clock or SystemClock()).now()

    def oauth_flows(self) -> OAuthFlows:
        return OAuthFlows(self.appdb.engine, master_key=self.master_key, clock=self.clock)

    def privacy_key(self, workspace_id: str) -> bytes:
        """The key the workspace's privacy audit log hashes subjects under (made on first use)."""
        log = AppPrivacyLog(
            self.appdb,
            workspace_id,
            "",
            master_key=self.master_key,
            clock=self.clock or SystemClock(),
        )
        return log.audit_key()

    def enqueued(self, job_id: str) -> None:
        if self.on_enqueued is None:
            return
        try:
            self.on_enqueued(job_id)
        except Exception as exc:  # the job is stored; recover_jobs re-sends it on next start
            # the type only: a broker's error text may carry its URL
            _log.warning(
                "job %s is queued but the broker was not told (%s)", job_id, type(exc).__name__
            )


def _context(request: Request) -> _Context:
    context: _Context = request.app.state.kbridge
    return context


Context = Annotated[_Context, Depends(_context)]


def _identity(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenIdentity:
    if credentials is None or not credentials.credentials.strip():
        raise ApiProblem(
            401,
            "send Authorization: Bearer TOKEN (make one with `kbridge tokens add`)",
            headers=_UNAUTHORIZED,
        )
    who = context.appdb.authenticate(credentials.credentials.strip())
    if who is None:
        raise ApiProblem(401, "the token is unknown or revoked", headers=_UNAUTHORIZED)
    return who


Who = Annotated[TokenIdentity, Depends(_identity)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no token, or an unknown or revoked one"},
    422: {"model": ErrorOut, "description": "bad input; `error.field` names what to fix"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no such object in this workspace"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "not possible in the object's present state"}
}


def create_app(
    appdb: AppDatabase,
    *,
    data_dir: Path,
    master_key: bytes | None = None,
    on_enqueued: Callable[[str], None] | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The service's ASGI app: the REST API under ``/api/v1``, its OpenAPI document at
    ``/api/v1/openapi.json`` and interactive docs at ``/api/v1/docs``.

    ``data_dir`` holds the default warehouses (``warehouses/<workspace id>/<name>.duckdb``);
    ``master_key`` seals connection secrets in the app database (default: the 0600 key file
    ``master.key`` in ``data_dir``, made on first use, as the CLI's store does);
    ``on_enqueued(job_id)`` is
    called after a job is stored as queued (the broker's wake-up; ``None``: nobody to wake);
    ``clock`` stamps connections (the app database has its own).
    """
    app = FastAPI(
        title="kbridge",
        version=__version__,
        description="The kbridge service: Klaviyo connections, jobs (sync, privacy, "
        "campaigns) and their schedules, per workspace.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    data_dir = Path(data_dir).resolve()
    if master_key is None:
        master_key = load_or_create_key_file(data_dir / KEY_FILE_NAME)
    app.state.kbridge = _Context(appdb, data_dir, master_key, on_enqueued, clock)
    install_problem_handlers(app)
    app.include_router(_oauth, prefix=API_PREFIX)
    app.include_router(_connections, prefix=API_PREFIX)
    app.include_router(_jobs, prefix=API_PREFIX)
    app.include_router(_schedules, prefix=API_PREFIX)
    app.include_router(_privacy, prefix=API_PREFIX)
    app.include_router(_campaigns, prefix=API_PREFIX)
    # imported here: the dashboard's pages build on this module's context and routes
    from kbridge.web.dashboard import install_dashboard

    install_dashboard(app)
    return app


def _audit(context: _Context, who: TokenIdentity, action: str, kind: str, target: str) -> None:
    context.appdb.audit(
        workspace_id=who.workspace_id,
        actor=f"token:{who.token_id}",
        action=action,
        target_kind=kind,
        target_id=target,
    )


def _connection_id(context: _Context, who: TokenIdentity, ref: str) -> str:
    """The id of the workspace's connection ``ref`` (an id or a name); 422 naming it if none."""
    store = context.store(who.workspace_id)
    try:
        store.name_of(ref)
        return ref
    except ConnectionNotFoundError:
        pass
    try:
        return store.get(ref).id
    except ConnectionNotFoundError:
        raise invalid("connection", "no such connection in this workspace") from None


# -- connections ------------------------------------------------------------------------------

_connections = APIRouter(tags=["connections"], responses=_ERRORS)


def _connection_out(record: ConnectionRecord, settings: ConnectionSettings) -> ConnectionOut:
    return ConnectionOut(
        id=record.id,
        name=record.name,
        kind=record.kind,
        account_id=record.account_id,
        account_name=record.account_name,
        base_url=record.base_url,
        rate_limits=settings.rate_limits,
        warehouse=redact_url(settings.warehouse or ""),
        capabilities=list(record.capabilities),
        scopes=list(record.scopes),
        connected_at=record.connected_at,
        rotated_at=record.rotated_at,
    )


@_connections.post(
    "/connections", status_code=201, response_model=ConnectionOut, responses=_CONFLICT
)
async def create_connection(body: ConnectionIn, who: Who, context: Context) -> ConnectionOut:
    """Verify the key against Klaviyo, probe what it can do, then store it (sealed).

    A key Klaviyo refuses is a 422 naming `api_key`, and nothing is stored.
    """
    try:
        name = check_name(body.name)
    except ConnectionStoreError as exc:
        raise invalid("name", str(exc)) from None
    base_url = _http_url("base_url", body.base_url or DEFAULT_BASE_URL)
    rate_limits = check_rate_limits(body.rate_limits)
    warehouse = (
        check_warehouse(body.warehouse)
        if body.warehouse is not None
        else default_warehouse(context.data_dir, who.workspace_id, name)
    )
    api_key = _key_shape(body.api_key.get_secret_value())
    store = await anyio.to_thread.run_sync(context.store, who.workspace_id)
    if await anyio.to_thread.run_sync(store.exists, name):
        raise ApiProblem(
            409, f"name: a connection called {name!r} already exists here", field="name"
        )
    account, report = await _verify_key(api_key, base_url)
    if warehouse.startswith("duckdb:"):
        Path(warehouse.removeprefix("duckdb:///")).parent.mkdir(
            mode=0o700, parents=True, exist_ok=True
        )

    def save() -> tuple[ConnectionRecord, ConnectionSettings]:
        record = store.upsert(
            name,
            kind="api_key",
            base_url=base_url,
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=report.granted,
            secrets={"api_key": api_key},
            rate_limits=rate_limits,
            warehouse=warehouse,
            mode="create",
        )
        _audit(context, who, "connection.create", "connection", record.id)
        return record, store.settings(name)

    try:
        record, settings = await anyio.to_thread.run_sync(save)
    except (ConnectionConflictError, ConnectionStoreError) as exc:
        # another request created the name since the check above: theirs stays as it is
        raise ApiProblem(409, f"name: {exc}", field="name") from None
    return _connection_out(record, settings)


def _http_url(field: str, url: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise invalid(field, "give an http(s):// URL")
    return url.rstrip("/")


def _key_shape(text: str) -> str:
    api_key = text.strip()
    try:
        PrivateKeyAuth(api_key)
    except InvalidCredentialsError as exc:  # the message never repeats the key
        raise invalid("api_key", str(exc)) from None
    return api_key


async def _verify_key(
    api_key: str | None,
    base_url: str,
    *,
    token_provider: StaticTokenProvider | None = None,
    field: str = "api_key",
) -> tuple[AccountInfo, ProbeReport]:
    """The credential's account and what it can do; a refused one is a 422 naming ``field``."""
    try:
        config = ClientConfig(retry=_VERIFY_RETRY)
        async with AsyncClient(
            api_key, base_url=base_url, config=config, token_provider=token_provider
        ) as client:
            account = await verify_account(client)
            report = await probe_capabilities(client, DEFAULT_PROBED, known_granted=VERIFIED_SCOPES)
    except AuthenticationError:
        raise invalid(field, "Klaviyo refused this credential (wrong or revoked)") from None
    except PermissionDeniedError:
        raise invalid(
            field, "the credential may not read the account: it needs accounts:read"
        ) from None
    except TransportError:
        raise invalid("base_url", f"could not reach {base_url}") from None
    except ConfigurationError as exc:
        raise invalid("base_url", str(exc)) from None
    except ApiError as exc:
        raise ApiProblem(502, f"Klaviyo could not verify the key now ({exc}); try again") from None
    return account, report


def _named(context: _Context, who: TokenIdentity, connection_id: str) -> ConnectionRecord:
    store = context.store(who.workspace_id)
    try:
        return store.get(store.name_of(connection_id))
    except ConnectionNotFoundError:
        raise ApiProblem(404, "no such connection in this workspace") from None


@_connections.post(
    "/connections/{connection_id}/rotate",
    response_model=ConnectionOut,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def rotate_connection(
    connection_id: str, body: RotateIn, who: Who, context: Context
) -> ConnectionOut:
    """Replace the connection's private key: the new one is verified first, and must be of
    the same Klaviyo account; if Klaviyo refuses it (422 naming `api_key`) the old key stays.
    """
    record = await anyio.to_thread.run_sync(_named, context, who, connection_id)
    if record.kind != "api_key":
        raise ApiProblem(409, "an OAuth connection is renewed by connecting it again")
    api_key = _key_shape(body.api_key.get_secret_value())
    account, report = await _verify_key(api_key, record.base_url)
    if account.id != record.account_id:
        raise invalid(
            "api_key",
            f"the key is for Klaviyo account {account.id}, not this connection's "
            f"{record.account_id}; connect that account as a new connection",
        )
    store = await anyio.to_thread.run_sync(context.store, who.workspace_id)

    def save() -> tuple[ConnectionRecord, ConnectionSettings]:
        rotated = store.upsert(
            record.name,
            kind="api_key",
            base_url=record.base_url,
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=report.granted,
            secrets={"api_key": api_key},
            mode="replace",
        )
        _audit(context, who, "connection.rotate", "connection", rotated.id)
        return rotated, store.settings(record.name)

    try:
        rotated, settings = await anyio.to_thread.run_sync(save)
    except ConnectionNotFoundError:  # deleted while the key was being verified
        raise ApiProblem(404, "no such connection in this workspace") from None
    return _connection_out(rotated, settings)


@_connections.get(
    "/connections/{connection_id}/scopes", response_model=ScopeCheckOut, responses=_NOT_FOUND
)
def connection_scopes(connection_id: str, who: Who, context: Context) -> ScopeCheckOut:
    """Per capability, the least scopes it needs and those the credential lacks.

    Granted scopes are those found when the key was verified (connect or rotate).
    """
    record = _named(context, who, connection_id)
    granted = set(record.scopes)
    capabilities = []
    for capability in CAPABILITY_OPERATIONS:
        needs = plan_scopes([capability]).scopes
        missing = [scope for scope in needs if scope not in granted]
        capabilities.append(
            CapabilityScopesOut(
                capability=capability,
                summary=CAPABILITY_SUMMARIES.get(capability, ""),
                needs=list(needs),
                missing=missing,
                ok=not missing,
            )
        )
    return ScopeCheckOut(connection=record.id, granted=sorted(granted), capabilities=capabilities)


@_connections.get("/connections", response_model=list[ConnectionOut])
def list_connections(who: Who, context: Context) -> list[ConnectionOut]:
    """The workspace's connections, by name (never their secrets)."""
    store = context.store(who.workspace_id)
    return [_connection_out(r, store.settings(r.name)) for r in store.list()]


@_connections.get(
    "/connections/{connection_id}", response_model=ConnectionOut, responses=_NOT_FOUND
)
def get_connection(connection_id: str, who: Who, context: Context) -> ConnectionOut:
    """One connection of the workspace."""
    store = context.store(who.workspace_id)
    try:
        name = store.name_of(connection_id)
        return _connection_out(store.get(name), store.settings(name))
    except ConnectionNotFoundError:
        raise ApiProblem(404, "no such connection in this workspace") from None


@_connections.delete(
    "/connections/{connection_id}", status_code=204, response_class=Response, responses=_NOT_FOUND
)
def delete_connection(connection_id: str, who: Who, context: Context) -> Response:
    """Forget the connection and its secret; its schedules go with it, its jobs stay.

    The warehouse is left as it is: its data is the workspace's to keep or drop.
    """
    store = context.store(who.workspace_id)
    try:
        store.delete(store.name_of(connection_id))
    except ConnectionNotFoundError:
        raise ApiProblem(404, "no such connection in this workspace") from None
    _audit(context, who, "connection.delete", "connection", connection_id)
    return Response(status_code=204)


# -- jobs -------------------------------------------------------------------------------------

_jobs = APIRouter(tags=["jobs"], responses=_ERRORS)


def _job_out(job: JobView, context: _Context | None = None) -> JobOut:
    """The job as the API shows it: sealed subjects never (their count instead); an access
    job's sealed reports opened for the one job asked for (``context``), else counted."""
    params = {k: v for k, v in job.params.items() if k != SEALED_SUBJECTS}
    result = job.result
    if result is not None and SEALED_REPORTS in result:
        blob = result[SEALED_REPORTS]
        result = {k: v for k, v in result.items() if k != SEALED_REPORTS}
        if context is not None:
            result["reports"] = open_sealed(
                context.master_key, job.workspace_id, SEALED_REPORTS, blob
            )
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=job.state,  # type: ignore[arg-type]  # the database's CHECK keeps it one of them
        connection=job.connection_id,
        params=params,
        progress=job.progress,
        error=job.last_error,
        result=result,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _get_job(context: _Context, who: TokenIdentity, job_id: str) -> JobView:
    try:
        return context.appdb.job(who.workspace_id, job_id)
    except NotFoundError:
        raise ApiProblem(404, "no such job in this workspace") from None


@_jobs.post("/jobs", status_code=202, response_model=JobCreated)
def create_job(body: JobIn, who: Who, context: Context, response: Response) -> JobCreated:
    """Queue a job; a worker picks it up. Poll `GET /jobs/{id}` for its state."""
    params = check_job_params(body.kind, body.params, now=context.now())
    if "subjects" in params:  # the people a privacy job is about: sealed in the job row
        params = seal_subjects(context.master_key, who.workspace_id, params)
    connection_id = _connection_id(context, who, body.connection)
    try:
        job = context.appdb.enqueue_job(
            who.workspace_id, body.kind, params, connection_id=connection_id
        )
    except NotFoundError:  # deleted between the look-up and the insert
        raise invalid("connection", "no such connection in this workspace") from None
    _audit(context, who, "job.create", "job", job.id)
    context.enqueued(job.id)
    response.headers["Location"] = f"{API_PREFIX}/jobs/{job.id}"
    return JobCreated(id=job.id, state="queued")


@_jobs.get("/jobs", response_model=list[JobOut])
def list_jobs(
    who: Who,
    context: Context,
    state: Annotated[
        list[JobState] | None, Query(description="only jobs in these states (repeatable)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[JobOut]:
    """The workspace's jobs, newest first."""
    jobs = context.appdb.jobs(who.workspace_id, states=state or ())
    return [_job_out(job) for job in jobs[:limit]]


@_jobs.get("/jobs/{job_id}", response_model=JobOut, responses=_NOT_FOUND)
def get_job(job_id: str, who: Who, context: Context) -> JobOut:
    """One job: its state, progress, last error and result."""
    return _job_out(_get_job(context, who, job_id), context)


@_jobs.post("/jobs/{job_id}/cancel", response_model=JobOut, responses={**_NOT_FOUND, **_CONFLICT})
def cancel_job(job_id: str, who: Who, context: Context) -> JobOut:
    """Cancel: a queued job at once, a running one when its worker next checks in."""
    try:
        job = context.appdb.cancel_job(who.workspace_id, job_id)
    except NotFoundError:
        raise ApiProblem(404, "no such job in this workspace") from None
    except ConflictError as exc:
        raise ApiProblem(409, str(exc)) from None
    _audit(context, who, "job.cancel", "job", job_id)
    return _job_out(job)


@_jobs.post(
    "/jobs/{job_id}/retry",
    status_code=202,
    response_model=JobOut,
    responses={**_NOT_FOUND, **_CONFLICT},
)
def retry_job(job_id: str, who: Who, context: Context) -> JobOut:
    """Queue a failed or cancelled job again (same id, attempts afresh)."""
    if _get_job(context, who, job_id).connection_id is None:
        raise ApiProblem(409, f"job {job_id}'s connection was deleted: it cannot run again")
    try:
        job = context.appdb.retry_job(who.workspace_id, job_id)
    except NotFoundError:
        raise ApiProblem(404, "no such job in this workspace") from None
    except ConflictError as exc:
        raise ApiProblem(409, str(exc)) from None
    _audit(context, who, "job.retry", "job", job_id)
    context.enqueued(job.id)
    return _job_out(job)


@_jobs.get("/jobs/{job_id}/events", response_model=list[JobEventOut], responses=_NOT_FOUND)
def job_events(job_id: str, who: Who, context: Context) -> list[JobEventOut]:
    """The job's timeline, oldest first: queued, claimed, retry, succeeded…"""
    try:
        events = context.appdb.job_events(who.workspace_id, job_id)
    except NotFoundError:
        raise ApiProblem(404, "no such job in this workspace") from None
    return [JobEventOut(at=e.at, event=e.event, detail=e.detail) for e in events]


# -- schedules --------------------------------------------------------------------------------

_schedules = APIRouter(tags=["schedules"], responses=_ERRORS)


def _schedule_out(row: ScheduleView) -> ScheduleOut:
    return ScheduleOut(
        id=row.id,
        connection=row.connection_id,
        kind=row.kind,
        params=row.params,
        daily_at=row.daily_at,
        cron=row.cron,
        timezone=row.timezone,
        enabled=row.enabled,
        next_due=row.next_due,
    )


@_schedules.post("/schedules", status_code=201, response_model=ScheduleOut)
def create_schedule(body: ScheduleIn, who: Who, context: Context) -> ScheduleOut:
    """Repeat a job: `daily_at` "HH:MM" in `timezone`, or a 5-field `cron` read in it."""
    if body.daily_at is None and body.cron is None:
        raise invalid("daily_at", 'give daily_at ("HH:MM") or cron')
    if body.daily_at is not None and body.cron is not None:
        raise invalid("cron", "give daily_at or cron, not both")
    params = check_job_params(body.kind, body.params)
    connection_id = _connection_id(context, who, body.connection)
    try:
        row = context.appdb.create_schedule(
            who.workspace_id,
            connection_id,
            body.kind,
            daily_at=body.daily_at,
            cron=body.cron,
            timezone=body.timezone,
            params=params,
        )
    except InvalidScheduleError as exc:
        message = str(exc).removeprefix(f"{exc.field}:").strip()
        raise invalid(exc.field, message) from None
    except NotFoundError:
        raise invalid("connection", "no such connection in this workspace") from None
    _audit(context, who, "schedule.create", "schedule", row.id)
    return _schedule_out(row)


@_schedules.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(who: Who, context: Context) -> list[ScheduleOut]:
    """The workspace's schedules, oldest first."""
    return [_schedule_out(row) for row in context.appdb.schedules(who.workspace_id)]


@_schedules.delete(
    "/schedules/{schedule_id}", status_code=204, response_class=Response, responses=_NOT_FOUND
)
def delete_schedule(schedule_id: str, who: Who, context: Context) -> Response:
    """Stop repeating; jobs it already made stay."""
    try:
        context.appdb.delete_schedule(who.workspace_id, schedule_id)
    except NotFoundError:
        raise ApiProblem(404, "no such schedule in this workspace") from None
    _audit(context, who, "schedule.delete", "schedule", schedule_id)
    return Response(status_code=204)


# -- privacy requests -------------------------------------------------------------------------

_privacy = APIRouter(tags=["privacy"], responses=_ERRORS)


def _privacy_out(view: PrivacyRequestView) -> PrivacyRequestOut:
    return PrivacyRequestOut(
        id=view.id,
        kind="access" if view.action == "access" else "deletion",
        connection=view.connection_id,
        regulation=view.regulation,
        subject_type=view.subject_type,
        subject_hash=view.subject_hash,
        state=view.state,  # type: ignore[arg-type]  # the database's CHECK keeps it one of them
        job=None
        if view.job_id is None
        else PrivacyRequestJob(id=view.job_id, state=view.job_state),  # type: ignore[arg-type]
        detail=view.detail,
        received_at=view.received_at,
        due_at=view.due_at,
        requested_at=view.requested_at,
        confirmed_at=view.confirmed_at,
    )


def _subject(body: PrivacyRequestIn) -> tuple[str, Subject]:
    """The subject's type and its normalised identifier; the 422s never echo it."""
    if body.email is not None and body.phone is not None:
        raise invalid("phone", "give email or phone, not both (one request per identifier)")
    if body.email is not None:
        try:
            return "email", Subject(email=check_email(body.email))
        except ValidationError:
            raise invalid("email", "not a valid email address") from None
    if body.phone is not None:
        try:
            return "phone", Subject(phone_number=check_phone(body.phone))
        except ValidationError:
            raise invalid(
                "phone", "not an E.164 phone number (like +15005550006: '+', then digits)"
            ) from None
    raise invalid("email", "give the subject's email (or phone)")


@_privacy.post("/privacy-requests", status_code=202, response_model=PrivacyRequestOut)
def create_privacy_request(
    body: PrivacyRequestIn, who: Who, context: Context, response: Response
) -> PrivacyRequestOut:
    """Receive a data subject's access or deletion request and queue its job.

    The due date runs from now: 30 days under GDPR, 45 under CCPA. The request
    keeps the subject only as the keyed hash the privacy audit log uses.
    """
    subject_type, subject = _subject(body)
    connection_id = _connection_id(context, who, body.connection)
    digest = subject_hash(context.privacy_key(who.workspace_id), subject)
    identifier = subject.email or subject.phone_number
    try:
        request, job = context.appdb.create_privacy_request(
            who.workspace_id,
            connection_id,
            action="access" if body.kind == "access" else "delete",
            regulation=body.regulation,
            subject_type=subject_type,
            subject_hash=digest,
            params=seal_subjects(context.master_key, who.workspace_id, {"subjects": [identifier]}),
        )
    except NotFoundError:  # deleted between the look-up and the insert
        raise invalid("connection", "no such connection in this workspace") from None
    _audit(context, who, "privacy_request.create", "privacy_request", request.id)
    context.enqueued(job.id)
    response.headers["Location"] = f"{API_PREFIX}/privacy-requests/{request.id}"
    return _privacy_out(request)


@_privacy.get("/privacy-requests", response_model=list[PrivacyRequestOut])
def list_privacy_requests(who: Who, context: Context) -> list[PrivacyRequestOut]:
    """The workspace's privacy requests, newest first, each with its state and due date."""
    return [_privacy_out(v) for v in context.appdb.privacy_requests(who.workspace_id)]


@_privacy.get(
    "/privacy-requests/{request_id}", response_model=PrivacyRequestOut, responses=_NOT_FOUND
)
def get_privacy_request(request_id: str, who: Who, context: Context) -> PrivacyRequestOut:
    """One request: received → requested (Klaviyo accepted the deletion) → confirmed."""
    try:
        return _privacy_out(context.appdb.privacy_request(who.workspace_id, request_id))
    except NotFoundError:
        raise ApiProblem(404, "no such privacy request in this workspace") from None


# -- OAuth connect ----------------------------------------------------------------------------

_oauth = APIRouter(tags=["connections"], responses=_ERRORS)


@_oauth.post("/connections/oauth/start", response_model=OAuthStartOut, responses=_CONFLICT)
def start_oauth(body: OAuthStartIn, who: Who, context: Context, request: Request) -> OAuthStartOut:
    """Start connecting through an OAuth app: the URL to open for consent in Klaviyo.

    Klaviyo then redirects the browser to `redirect_uri` (this API's callback, as
    registered with the app), which exchanges the code (PKCE S256) and stores the
    connection. The flow is good for 15 minutes, once.
    """
    try:
        name = check_name(body.name)
    except ConnectionStoreError as exc:
        raise invalid("name", str(exc)) from None
    base_url = _http_url("base_url", body.base_url or DEFAULT_BASE_URL)
    endpoints = body.oauth_base_url or (None if base_url == DEFAULT_BASE_URL else base_url)
    if endpoints is not None:
        endpoints = _http_url("oauth_base_url", endpoints)
    try:
        capabilities = parse_capabilities(body.capabilities)
        scopes = plan_scopes(("connect", *capabilities)).scopes
    except UnknownCapabilityError as exc:
        raise invalid("capabilities", str(exc)) from None
    rate_limits = check_rate_limits(body.rate_limits)
    warehouse = (
        check_warehouse(body.warehouse)
        if body.warehouse is not None
        else default_warehouse(context.data_dir, who.workspace_id, name)
    )
    redirect_uri = _http_url(
        "redirect_uri", body.redirect_uri or str(request.url_for("oauth_callback"))
    )
    if context.store(who.workspace_id).exists(name):
        raise ApiProblem(
            409, f"name: a connection called {name!r} already exists here", field="name"
        )
    secret = body.client_secret.get_secret_value()
    client = (
        OAuthClient.at(endpoints, body.client_id, secret)
        if endpoints is not None
        else OAuthClient(body.client_id, secret)
    )
    pkce = Pkce.generate()
    state = new_state()
    expires_at = context.now() + _OAUTH_FLOW_TTL
    context.oauth_flows().put(
        state,
        {
            "workspace_id": who.workspace_id,
            "token_id": who.token_id,
            "name": name,
            "client_id": client.client_id,
            "client_secret": secret,
            "token_url": client.token_url,
            "revoke_url": client.revoke_url,
            "verifier": pkce.verifier,
            "redirect_uri": redirect_uri,
            "base_url": base_url,
            "rate_limits": rate_limits,
            "warehouse": warehouse,
        },
        expires_at=expires_at,
    )
    _audit(context, who, "connection.oauth_start", "connection", name)
    return OAuthStartOut(
        authorize_url=authorize_url(client, redirect_uri, scopes, state, pkce),
        redirect_uri=redirect_uri,
        scopes=list(scopes),
        expires_at=expires_at,
    )


@_oauth.get(
    "/connections/oauth/callback",
    name="oauth_callback",
    status_code=201,
    response_model=ConnectionOut,
    responses=_CONFLICT,
)
async def oauth_callback(request: Request, context: Context) -> ConnectionOut:
    """Where Klaviyo sends the browser back (`code`, `state`): no token is needed, the
    state names the flow and its workspace. Exchanges the code, verifies, stores."""
    query = dict(request.query_params)
    state = query.get("state")
    if not state:
        raise invalid("state", "missing; open the authorize URL from /connections/oauth/start")
    flow = await anyio.to_thread.run_sync(context.oauth_flows().take, state)
    if flow is None:
        raise invalid("state", "unknown, already used or expired; start again")
    try:
        code = check_callback(query, state)
    except OAuthDeniedError as exc:
        raise invalid("error", str(exc)) from None
    except OAuthError as exc:
        raise invalid("code", str(exc)) from None
    client = OAuthClient(
        flow["client_id"],
        flow["client_secret"],
        token_url=flow["token_url"],
        revoke_url=flow["revoke_url"],
    )
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            tokens = await exchange_code(
                http, client, code, flow["verifier"], flow["redirect_uri"], now=context.now()
            )
    except OAuthError as exc:  # its text is redacted: no code, verifier or secret
        raise invalid("code", str(exc)) from None
    account, report = await _verify_key(
        None,
        flow["base_url"],
        token_provider=StaticTokenProvider(tokens.access_token),
        field="code",
    )
    who = TokenIdentity(flow["token_id"], flow["workspace_id"], "")
    store = await anyio.to_thread.run_sync(context.store, who.workspace_id)
    warehouse: str = flow["warehouse"]
    if warehouse.startswith("duckdb:"):
        Path(warehouse.removeprefix("duckdb:///")).parent.mkdir(
            mode=0o700, parents=True, exist_ok=True
        )

    def save() -> tuple[ConnectionRecord, ConnectionSettings]:
        record = store.upsert(
            flow["name"],
            kind="oauth",
            base_url=flow["base_url"],
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=tokens.scopes or report.granted,
            secrets={"client_secret": client.client_secret, **_token_secrets(tokens)},
            oauth=OAuthClientInfo(
                client_id=client.client_id,
                token_url=client.token_url,
                revoke_url=client.revoke_url,
                installation_id=account.id,
            ),
            rate_limits=flow["rate_limits"],
            warehouse=warehouse,
            mode="create",
        )
        _audit(context, who, "connection.create", "connection", record.id)
        return record, store.settings(record.name)

    try:
        record, settings = await anyio.to_thread.run_sync(save)
    except (ConnectionConflictError, ConnectionStoreError) as exc:
        raise ApiProblem(409, f"name: {exc}", field="name") from None
    return _connection_out(record, settings)


# -- campaigns --------------------------------------------------------------------------------

_campaigns = APIRouter(tags=["campaigns"], responses=_ERRORS)
_CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")


@_campaigns.get(
    "/campaigns", response_model=list[CampaignOut], responses={**_NOT_FOUND, **_CONFLICT}
)
async def list_campaigns(
    who: Who,
    context: Context,
    connection: Annotated[str, Query(description="the connection's id (or its name)")],
    channel: Annotated[str, Query(description="email, sms or mobile_push")] = "email",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CampaignOut]:
    """The account's campaigns of one channel, read from Klaviyo through the connection."""
    if channel not in _CAMPAIGN_CHANNELS:
        raise invalid("channel", f"one of {', '.join(_CAMPAIGN_CHANNELS)}")
    store = await anyio.to_thread.run_sync(context.store, who.workspace_id)

    def load() -> tuple[ConnectionRecord, dict[str, Any]]:
        try:
            name = store.name_of(connection)
        except ConnectionNotFoundError:
            name = connection  # a name, or nothing of this workspace's
        try:
            return store.load(name)
        except ConnectionNotFoundError:
            raise ApiProblem(404, "no such connection in this workspace") from None

    record, secrets = await anyio.to_thread.run_sync(load)
    api_key = secrets.get("api_key")
    if record.kind != "api_key" or not api_key:
        raise ApiProblem(409, f"connection {record.name!r} has no API key to read campaigns with")
    found: list[CampaignOut] = []
    try:
        config = ClientConfig(retry=_VERIFY_RETRY)
        async with AsyncClient(api_key, base_url=record.base_url, config=config) as client:
            async for campaign in client.campaigns.iter_campaigns(channel=channel):
                attrs = campaign.attributes
                found.append(
                    CampaignOut(
                        id=campaign.id or "",
                        name=str(attrs.get("name") or ""),
                        status=str(attrs.get("status") or ""),
                        channel=channel,
                        send_time=attrs.get("send_time"),
                        created_at=attrs.get("created_at"),
                        updated_at=attrs.get("updated_at"),
                    )
                )
                if len(found) >= limit:
                    break
    except AuthenticationError:
        raise ApiProblem(
            409,
            f"Klaviyo refused the key of connection {record.name!r}; rotate it "
            f"(POST {API_PREFIX}/connections/{record.id}/rotate)",
        ) from None
    except PermissionDeniedError as exc:
        raise ApiProblem(409, explain_permission_error(exc, "campaigns-publish")) from None
    except (ApiError, ConnectionsError) as exc:
        raise ApiProblem(502, f"Klaviyo could not list the campaigns now ({exc})") from None
    return found
