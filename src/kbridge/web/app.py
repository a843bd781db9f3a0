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
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kbridge import __version__
from kbridge.connections import (
    KEY_FILE_NAME,
    ConnectionNotFoundError,
    ConnectionRecord,
    load_or_create_key_file,
)
from kbridge.core import Clock
from kbridge.service.appdb import AppDatabase
from kbridge.service.connection_store import ConnectionSettings, SqlConnectionStore
from kbridge.service.errors import ConflictError, InvalidScheduleError, NotFoundError
from kbridge.service.views import JobView, ScheduleView, TokenIdentity
from kbridge.web.connecting import connect_by_key
from kbridge.web.params import (
    check_job_params,
    redact_url,
)
from kbridge.web.problems import ApiProblem, install_problem_handlers, invalid
from kbridge.web.schemas import (
    ConnectionIn,
    ConnectionOut,
    ErrorOut,
    JobCreated,
    JobEventOut,
    JobIn,
    JobOut,
    JobState,
    ScheduleIn,
    ScheduleOut,
)

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
_log = logging.getLogger("kbridge.web")
_bearer = HTTPBearer(
    auto_error=False, description="an API token of one workspace (`kbridge tokens add`)"
)
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


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
    app.include_router(_connections, prefix=API_PREFIX)
    app.include_router(_jobs, prefix=API_PREFIX)
    app.include_router(_schedules, prefix=API_PREFIX)
    # imported here: the dashboard's pages build on this module's context
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
    store = await anyio.to_thread.run_sync(context.store, who.workspace_id)
    record, settings = await connect_by_key(
        store,
        data_dir=context.data_dir,
        name=body.name,
        api_key=body.api_key.get_secret_value(),
        base_url=body.base_url,
        rate_limits=body.rate_limits,
        warehouse=body.warehouse,
    )
    await anyio.to_thread.run_sync(
        _audit, context, who, "connection.create", "connection", record.id
    )
    return _connection_out(record, settings)


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


def _job_out(job: JobView) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=job.state,  # type: ignore[arg-type]  # the database's CHECK keeps it one of them
        connection=job.connection_id,
        params=job.params,
        progress=job.progress,
        error=job.last_error,
        result=job.result,
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
    params = check_job_params(body.kind, body.params)
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
    return _job_out(_get_job(context, who, job_id))


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
