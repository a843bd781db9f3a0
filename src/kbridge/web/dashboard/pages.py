"""The dashboard's routes: sign-in, connections, jobs, and the pages still to come.

Roles nest: an admin may do all an operator may (and manage connections); an
operator runs jobs; a viewer only looks. The buttons a role may not press are
not drawn, and the POST behind each is checked again on the server, so a
forged one is refused (403) all the same. Every POST needs the session's CSRF
token. Another workspace's ids are not found (404), as in the API.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import SecretStr

from kbridge.analytics import DEFAULT_SEGMENTS
from kbridge.connections import (
    CAPABILITY_SUMMARIES,
    ConnectionNotFoundError,
    plan_scopes,
    same_account,
    same_account_warning,
)
from kbridge.connections.model import ConnectionRecord
from kbridge.privacy import subject_hash
from kbridge.service.errors import ConflictError, NotFoundError
from kbridge.service.jobs import AppPrivacyLog, default_warehouse_url
from kbridge.service.users import UserView, check_password, normalise_email, user
from kbridge.service.views import JobView, TokenIdentity
from kbridge.warehouse import STATE_TABLE, WarehouseError, duckdb_path, open_warehouse
from kbridge.web.app import (
    _Context,
    _subject,
    create_connection,
    create_job,
    create_privacy_request,
    create_schedule,
    delete_connection,
    delete_schedule,
    get_job,
    get_privacy_request,
    list_privacy_requests,
    list_schedules,
    oauth_callback,
    rotate_connection,
    start_oauth,
)
from kbridge.web.dashboard import churn_table, overview
from kbridge.web.dashboard.sessions import COOKIE_NAME, Session, SessionSigner, SignInThrottle
from kbridge.web.dashboard.warehouse_cache import VersionedCache
from kbridge.web.params import check_job_params, redact_url
from kbridge.web.problems import ApiProblem
from kbridge.web.schemas import (
    ConnectionIn,
    JobIn,
    OAuthStartIn,
    PrivacyRequestIn,
    PrivacyRequestOut,
    RotateIn,
    ScheduleIn,
)

__all__ = ["install_dashboard"]

_HERE = Path(__file__).parent
_RANK = {"viewer": 0, "operator": 1, "admin": 2}
_JOBS_SHOWN = 100
#: what a page says after an action (``?done=KEY``): fixed texts, so a crafted link cannot put
#: words of its own on our page
_DONE = {
    "connected": "Connected.",
    "rotated": "Key rotated.",
    "disconnected": "Disconnected: its key is forgotten. Campaigns already scheduled in "
    "Klaviyo will still send.",
    "sync": "Sync queued.",
    "cancelled": "Cancelled.",
    "retried": "Queued again.",
    "privacy": "Request received: its job is queued.",
    "scheduled": "Schedule added.",
    "unscheduled": "Schedule removed.",
    "campaign_publish": "Campaign queued: it shows here once Klaviyo has it.",
    "campaign_cancel": "Cancel queued. A cancel is permanent: the campaign will not send.",
    "campaign_draft": "Draft queued: it is made in Klaviyo and listed under Drafts.",
    "campaign_revert": "Revert queued: the campaign goes back to a draft, to edit or schedule "
    "again.",
    "campaign_schedule": "Schedule queued: the draft is published for its send time.",
    "report": "Report queued: its link appears here once built.",
    "segment_push": "Segment push queued.",
}
#: the notices of jobs queued from pages that do not refresh themselves (the calendar,
#: analytics): they link to Jobs, where the job can be watched
_QUEUED = frozenset(
    {
        "campaign_publish",
        "campaign_cancel",
        "campaign_draft",
        "campaign_revert",
        "campaign_schedule",
        "report",
        "segment_push",
    }
)
_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
#: the pages load only their own files; no other site may frame them
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class _Dashboard:
    signer: SessionSigner
    throttle: SignInThrottle


@dataclass
class _Visit:
    """One request's view of who is asking."""

    context: _Context
    dashboard: _Dashboard
    session: Session
    user: UserView | None
    fresh: bool  # the session was made for this request: the answer sets its cookie

    @property
    def csrf_token(self) -> str:
        return self.dashboard.signer.csrf_token(self.session)

    def may(self, role: str) -> bool:
        return self.user is not None and _RANK[self.user.role] >= _RANK[role]


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard's pages at ``/`` and its static files at ``/static`` on ``app``."""
    context: _Context = app.state.kbridge
    clock = context.clock or context.appdb.clock
    app.state.dashboard = _Dashboard(
        SessionSigner(context.master_key, clock), SignInThrottle(clock)
    )
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.include_router(_router, include_in_schema=False)
    # imported here: the campaign pages build on this module's helpers
    from kbridge.web.dashboard.campaign_pages import router as campaign_router

    app.include_router(campaign_router, include_in_schema=False)


_router = APIRouter()


# -- plumbing ---------------------------------------------------------------------------------


def _visit(request: Request) -> _Visit:
    context: _Context = request.app.state.kbridge
    dashboard: _Dashboard = request.app.state.dashboard
    session = dashboard.signer.load(request.cookies.get(COOKIE_NAME))
    fresh = session is None
    if session is None:
        session = dashboard.signer.new(None)
    who: UserView | None = None
    if session.user_id is not None:
        try:
            who = user(context.appdb, session.user_id)
        except NotFoundError:  # the user was removed: the session speaks for nobody
            who = None
    return _Visit(context, dashboard, session, who, fresh)


def _finish(request: Request, response: Response, visit: _Visit) -> Response:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if visit.fresh:
        _set_cookie(request, response, visit)
    return response


def _set_cookie(request: Request, response: Response, visit: _Visit) -> None:
    response.set_cookie(
        COOKIE_NAME,
        visit.dashboard.signer.dump(visit.session),
        httponly=True,
        samesite="lax",
        # behind TLS (directly, or a proxy uvicorn trusts) the cookie never travels in clear
        secure=request.url.scheme == "https",
        path="/",
    )


def _page(
    request: Request,
    visit: _Visit,
    template: str,
    *,
    status: int = 200,
    section: str | None = None,
    **values: Any,
) -> Response:
    html = _env.get_template(template).render(
        user=visit.user,
        csrf_token=visit.csrf_token,
        section=section,
        can_admin=visit.may("admin"),
        can_operate=visit.may("operator"),
        flash=_DONE.get(request.query_params.get("done", "")),
        flash_jobs=request.query_params.get("done", "") in _QUEUED,
        **values,
    )
    return _finish(request, HTMLResponse(html, status_code=status), visit)


def _message(request: Request, visit: _Visit, status: int, title: str, message: str) -> Response:
    return _page(
        request, visit, "message.html", status=status, title=title, message=message, error=True
    )


def _redirect(request: Request, visit: _Visit, to: str) -> Response:
    return _finish(request, RedirectResponse(to, status_code=303), visit)


async def _form(request: Request, visit: _Visit, role: str) -> dict[str, str] | Response:
    """The POSTed form if its CSRF token holds and the user's role may act, else the refusal."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not visit.dashboard.signer.csrf_ok(visit.session, form.get("csrf_token")):
        return _message(
            request,
            visit,
            403,
            "Refused",
            "This form was refused: its security token is missing or stale. "
            "Reload the page and try again.",
        )
    if role and visit.user is None:
        return _redirect(request, visit, "/login")
    if role and not visit.may(role):
        return _message(
            request, visit, 403, "Refused", f"Your role may not do this (it needs {role})."
        )
    return form


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


# -- sign-in ----------------------------------------------------------------------------------


@_router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    visit = _visit(request)
    return _redirect(request, visit, "/connections" if visit.user else "/login")


@_router.get("/favicon.ico")
def favicon() -> Response:
    return Response(
        (_HERE / "static" / "favicon.svg").read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "max-age=86400"},
    )


@_router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is not None:
        return _redirect(request, visit, "/connections")
    return _page(request, visit, "login.html", title="Sign in", error=None, email="")


@_router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "")
    if isinstance(form, Response):
        return form
    email = normalise_email(form.get("email", ""))
    throttle = visit.dashboard.throttle
    wait = throttle.wait(email)
    if wait > 0:
        return _page(
            request,
            visit,
            "login.html",
            status=429,
            title="Sign in",
            email=email,
            error=f"Too many failed sign-ins for this email: wait {int(wait + 0.999)} s "
            "and try again.",
        )
    found = await anyio.to_thread.run_sync(
        check_password, visit.context.appdb, email, form.get("password", "")
    )
    if found is None:
        throttle.failed(email)
        return _page(
            request,
            visit,
            "login.html",
            status=401,
            title="Sign in",
            email=email,
            error="Wrong email or password.",
        )
    throttle.succeeded(email)
    # a new nonce: whatever session (and CSRF token) existed before sign-in is worth nothing now
    visit.session = visit.dashboard.signer.new(found.id)
    visit.fresh = True
    visit.user = found
    return _redirect(request, visit, "/connections")


@_router.post("/logout")
async def logout(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "")
    if isinstance(form, Response):
        return form
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


# -- connections ------------------------------------------------------------------------------


def _connections_page(
    request: Request,
    visit: _Visit,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    oauth_error: str | None = None,
) -> Response:
    assert visit.user is not None
    records = visit.context.store(visit.user.workspace_id).list()
    return _page(
        request,
        visit,
        "connections.html",
        status=status,
        section="/connections",
        title="Connections",
        connections=records,
        error=error,
        oauth_error=oauth_error,
        form=form or {},
    )


@_router.get("/connections", response_class=HTMLResponse)
def connections(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    return _connections_page(request, visit)


@_router.post("/connections", response_class=HTMLResponse)
async def connect(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "admin")
    if isinstance(form, Response):
        return form
    assert visit.user is not None
    body = ConnectionIn(
        name=form.get("name", ""),
        api_key=SecretStr(form.get("api_key", "")),
        base_url=form.get("base_url", "").strip() or None,
        rate_limits=form.get("rate_limits", "").strip() or "spec",
    )
    try:
        # the API's own route: the same checks, verification, probe, storage and audit
        created = await create_connection(body, _acting(visit), visit.context)
    except ApiProblem as exc:
        kept = {k: form.get(k, "") for k in ("name", "base_url", "rate_limits")}
        return _connections_page(request, visit, status=exc.status, error=_said(exc), form=kept)
    return _redirect(request, visit, f"/connections/{created.id}?done=connected")


def _said(exc: ApiProblem) -> str:
    labels = {"api_key": "Private API key", "base_url": "Base URL", "rate_limits": "Rate limits"}
    field = exc.field or ""
    if field in labels or field == "name":
        message = exc.message.removeprefix(f"{field}:").strip()
        return f"{labels.get(field, 'Name')}: {message}"
    return exc.message


def _acting(visit: _Visit) -> TokenIdentity:
    """The signed-in user as the API's routes take their caller: the workspace scopes every
    look-up, and the audit log names the user (``token:user-<id>``)."""
    assert visit.user is not None
    return TokenIdentity(
        f"user-{visit.user.id}", visit.user.workspace_id, visit.user.workspace_name
    )


def _audit(visit: _Visit, action: str, kind: str, target: str) -> None:
    assert visit.user is not None
    visit.context.appdb.audit(
        workspace_id=visit.user.workspace_id,
        actor=f"user:{visit.user.id}",
        action=action,
        target_kind=kind,
        target_id=target,
    )


def _capabilities(record: ConnectionRecord) -> list[dict[str, Any]]:
    granted = set(record.scopes)
    rows = []
    for name, summary in CAPABILITY_SUMMARIES.items():
        needed = plan_scopes([name]).scopes
        rows.append(
            {
                "name": name,
                "summary": summary,
                "needed": needed,
                "missing": [s for s in needed if s not in granted],
            }
        )
    return rows


def _streams(jobs: list[JobView]) -> list[dict[str, Any]]:
    """Per stream: the records of the newest sync that reported it, and when that was."""
    seen: dict[str, dict[str, Any]] = {}
    for job in jobs:  # newest first
        if job.kind != "sync" or job.state != "succeeded" or not job.result:
            continue
        for name, info in (job.result.get("streams") or {}).items():
            if name not in seen and isinstance(info, dict):
                seen[name] = {
                    "name": name,
                    "records": info.get("records", ""),
                    "last_run": _when(job.finished_at),
                }
    return sorted(seen.values(), key=lambda row: str(row["name"]))


_STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def _warehouse_streams(url: str, account_id: str) -> list[dict[str, Any]] | None:
    """Per stream the warehouse holds for the account: its rows now and its last write.

    ``None`` when the warehouse cannot answer now (not made yet, busy with a sync in
    another process, unreachable): the page then shows the last syncs' counts instead.
    Kept until the warehouse changes (:mod:`.warehouse_cache`).
    """
    if not url.startswith(("postgresql://", "postgres://")):
        path = duckdb_path(url)
        if path is None or not Path(path).is_file():
            return None  # opening it would create it: a page view makes no warehouse
    return _STREAMS.get(
        url, ("streams", account_id), lambda: _read_streams(url, account_id), keep=bool
    )


_STREAMS = VersionedCache()


def _read_streams(url: str, account_id: str) -> list[dict[str, Any]] | None:
    try:
        warehouse = open_warehouse(url)
    except WarehouseError:
        return None
    try:
        last_runs = warehouse.query(
            f'SELECT stream, max(updated_at) FROM "{STATE_TABLE.name}"'  # noqa: S608 (a constant)
            " WHERE account_id = ? GROUP BY stream ORDER BY stream",
            [account_id],
        )
        tables = {
            str(name)
            for (name,) in warehouse.query(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }
        # one query for every stream's count: a page of 30 streams made 30 round trips
        counted = [
            str(stream)
            for stream, _ in last_runs
            if _STREAM_NAME.fullmatch(str(stream)) and str(stream) in tables
        ]
        counts: dict[str, object] = {}
        if counted:
            union = " UNION ALL ".join(
                f"SELECT '{name}', count(*) FROM \"{name}\" WHERE account_id = ?"  # noqa: S608
                for name in counted
            )
            try:
                counts = dict(warehouse.query(union, [account_id] * len(counted)))
            except WarehouseError:  # a table without account_id: counted one by one below
                counts = {}
                for name in counted:
                    try:
                        counts[name] = warehouse.query(
                            f'SELECT count(*) FROM "{name}" WHERE account_id = ?',  # noqa: S608
                            [account_id],
                        )[0][0]
                    except WarehouseError:
                        counts[name] = ""
        rows = []
        for stream, last in last_runs:
            if isinstance(last, datetime):
                last = _when(last if last.tzinfo else last.replace(tzinfo=UTC))
            rows.append(
                {"name": stream, "records": counts.get(str(stream), ""), "last_run": last or ""}
            )
        return rows
    except WarehouseError:
        return None
    finally:
        warehouse.close()


def _connection_page(
    request: Request,
    visit: _Visit,
    connection_id: str,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    assert visit.user is not None
    store = visit.context.store(visit.user.workspace_id)
    try:
        name = store.name_of(connection_id)
        record = store.get(name)
        settings = store.settings(name)
    except ConnectionNotFoundError:
        return _message(request, visit, 404, "Not found", "No such connection in this workspace.")
    capabilities = _capabilities(record)
    rate_budget = _overview(request, visit, record, settings.rate_limits)
    jobs = [
        j for j in visit.context.appdb.jobs(visit.user.workspace_id) if j.connection_id == record.id
    ]
    # just connected: the same line `kbridge connect` prints when the account was already here
    twice = None
    if request.query_params.get("done") == "connected":
        twice = same_account_warning(record, same_account(store.list(), record))
    return _page(
        request,
        visit,
        "connection.html",
        same_account=twice,
        status=status,
        section="/connections",
        title=record.name,
        c=record,
        settings=settings,
        warehouse=redact_url(settings.warehouse or ""),
        capabilities=capabilities,
        missing_any=any(row["missing"] for row in capabilities),
        streams=_warehouse_streams(settings.warehouse or "", record.account_id) or _streams(jobs),
        schedules=_schedule_rows(visit, record.id),
        scheduled_kinds=_SCHEDULED,
        error=error,
        **rate_budget,
    )


def _overview(
    request: Request, visit: _Visit, record: ConnectionRecord, rate_limits: str
) -> dict[str, Any]:
    refused = visit.context.appdb.rate_limited_since(
        record.id, overview.since(visit.context.appdb.clock.now())
    )
    reader = overview.rate_budget_reader(request.app)
    return overview.overview(reader, record.account_id, rate_limits, rate_limited_24h=refused)


@_router.get("/connections/{connection_id}/overview", response_class=HTMLResponse)
def connection_overview(request: Request, connection_id: str) -> Response:
    """The rate-budget fragment the connection's page polls (htmx, every 2 s)."""
    visit = _visit(request)
    if visit.user is None:
        return _finish(request, Response(status_code=401), visit)
    store = visit.context.store(visit.user.workspace_id)
    try:
        name = store.name_of(connection_id)
        record = store.get(name)
        settings = store.settings(name)
    except ConnectionNotFoundError:
        return _finish(request, Response(status_code=404), visit)
    values = _overview(request, visit, record, settings.rate_limits)
    return _page(request, visit, "overview.html", c=record, **values)


@_router.get("/connections/{connection_id}", response_class=HTMLResponse)
def connection(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    return _connection_page(request, visit, connection_id)


def _name_or_404(
    request: Request, visit: _Visit, connection_id: str
) -> tuple[str | None, Response | None]:
    assert visit.user is not None
    try:
        return visit.context.store(visit.user.workspace_id).name_of(connection_id), None
    except ConnectionNotFoundError:
        return None, _message(
            request, visit, 404, "Not found", "No such connection in this workspace."
        )


@_router.post("/connections/{connection_id}/rotate", response_class=HTMLResponse)
async def rotate(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "admin")
    if isinstance(form, Response):
        return form
    body = RotateIn(api_key=SecretStr(form.get("api_key", "")))
    try:
        await rotate_connection(connection_id, body, _acting(visit), visit.context)
    except ApiProblem as exc:
        if exc.status == 404:
            return _message(
                request, visit, 404, "Not found", "No such connection in this workspace."
            )
        return _connection_page(request, visit, connection_id, status=exc.status, error=_said(exc))
    return _redirect(request, visit, f"/connections/{connection_id}?done=rotated")


@_router.post("/connections/{connection_id}/disconnect", response_class=HTMLResponse)
async def disconnect(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "admin")
    if isinstance(form, Response):
        return form
    try:
        await anyio.to_thread.run_sync(
            delete_connection, connection_id, _acting(visit), visit.context
        )
    except ApiProblem:
        return _message(request, visit, 404, "Not found", "No such connection in this workspace.")
    return _redirect(request, visit, "/connections?done=disconnected")


@_router.post("/connections/{connection_id}/sync", response_class=HTMLResponse)
async def start_sync(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    name, missing = _name_or_404(request, visit, connection_id)
    if name is None:
        assert missing is not None
        return missing
    assert visit.user is not None
    workspace_id = visit.user.workspace_id
    start = form.get("start_date", "").strip()
    try:
        # a date input gives a day; the sync takes an instant: that day's start in UTC
        params = check_job_params("sync", {"start_date": f"{start}T00:00:00Z"} if start else {})
    except ApiProblem:
        return _connection_page(
            request,
            visit,
            connection_id,
            status=422,
            error=f"Start date: {start!r} is not a day like 2024-01-31",
        )
    try:
        job = await anyio.to_thread.run_sync(
            lambda: visit.context.appdb.enqueue_job(
                workspace_id, "sync", params, connection_id=connection_id
            )
        )
    except NotFoundError:
        return _message(request, visit, 404, "Not found", "No such connection in this workspace.")
    await anyio.to_thread.run_sync(_audit, visit, "job.create", "job", job.id)
    visit.context.enqueued(job.id)
    return _redirect(request, visit, "/jobs?done=sync")


# -- schedules and OAuth connect ----------------------------------------------------------------

#: the jobs a connection's page may repeat (the rest take parameters a form does not ask for)
_SCHEDULED = {"sync": "Sync", "report": "HTML report"}
_SCHEDULE_FIELDS = {
    "daily_at": "Daily at",
    "cron": "Cron",
    "timezone": "Time zone",
    "kind": "Job",
    "connection": "Connection",
}


def _schedule_rows(visit: _Visit, connection_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "kind": _SCHEDULED.get(s.kind, s.kind),
            "when": f"daily at {s.daily_at}" if s.daily_at else f"cron {s.cron}",
            "timezone": s.timezone,
            "next_due": _when(s.next_due),
        }
        for s in list_schedules(_acting(visit), visit.context)
        if s.connection == connection_id
    ]


@_router.post("/connections/{connection_id}/schedules", response_class=HTMLResponse)
async def add_schedule(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    name, missing = _name_or_404(request, visit, connection_id)
    if name is None:
        assert missing is not None
        return missing
    kind = form.get("kind", "sync")
    if kind not in _SCHEDULED:
        return _connection_page(
            request, visit, connection_id, status=422, error="Job: choose sync or HTML report."
        )
    daily_at = form.get("daily_at", "").strip() or None
    cron = form.get("cron", "").strip() or None
    body = ScheduleIn.model_validate(
        {
            "connection": connection_id,
            "kind": kind,
            "daily_at": daily_at,
            "cron": cron,
            "timezone": form.get("timezone", "").strip() or "UTC",
        }
    )
    try:
        # the API's own route: the same checks, next-due computation and audit
        await anyio.to_thread.run_sync(create_schedule, body, _acting(visit), visit.context)
    except ApiProblem as exc:
        label = _SCHEDULE_FIELDS.get(exc.field or "", "")
        said = exc.message.removeprefix(f"{exc.field}:").strip()
        return _connection_page(
            request,
            visit,
            connection_id,
            status=exc.status,
            error=f"{label}: {said}" if label else said,
        )
    return _redirect(request, visit, f"/connections/{connection_id}?done=scheduled")


@_router.post(
    "/connections/{connection_id}/schedules/{schedule_id}/remove", response_class=HTMLResponse
)
async def remove_schedule(request: Request, connection_id: str, schedule_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    mine = {
        row["id"] for row in await anyio.to_thread.run_sync(_schedule_rows, visit, connection_id)
    }
    if schedule_id not in mine:
        return _message(request, visit, 404, "Not found", "No such schedule on this connection.")
    try:
        await anyio.to_thread.run_sync(delete_schedule, schedule_id, _acting(visit), visit.context)
    except ApiProblem:
        return _message(request, visit, 404, "Not found", "No such schedule on this connection.")
    return _redirect(request, visit, f"/connections/{connection_id}?done=unscheduled")


@_router.post("/connections/oauth", response_class=HTMLResponse)
async def start_oauth_connect(request: Request) -> Response:
    """Start an OAuth connect; the answer is a page whose link goes to Klaviyo's consent
    (a link, not a redirect: the pages' CSP lets forms go nowhere but here)."""
    visit = _visit(request)
    form = await _form(request, visit, "admin")
    if isinstance(form, Response):
        return form
    kept = {"oauth_name": form.get("oauth_name", ""), "client_id": form.get("client_id", "")}
    if not form.get("client_id", "").strip():
        return _connections_page(
            request, visit, status=422, oauth_error="Client ID: required", form=kept
        )
    body = OAuthStartIn.model_validate(
        {
            "name": form.get("oauth_name", ""),
            "client_id": form.get("client_id", "").strip(),
            "client_secret": form.get("client_secret", ""),
            "base_url": form.get("oauth_base_url", "").strip() or None,
            "redirect_uri": str(request.url_for("dashboard_oauth_callback")),
        }
    )
    try:
        # the API's own route: the same checks, PKCE, the stored flow and audit
        started = await anyio.to_thread.run_sync(
            start_oauth, body, _acting(visit), visit.context, request
        )
    except ApiProblem as exc:
        labels = {"name": "Name", "client_id": "Client ID", "base_url": "Base URL"}
        field = exc.field or ""
        said = exc.message.removeprefix(f"{field}:").strip()
        error = f"{labels[field]}: {said}" if field in labels else said
        return _connections_page(request, visit, status=exc.status, oauth_error=error, form=kept)
    return _page(
        request,
        visit,
        "oauth_consent.html",
        section="/connections",
        title="Consent in Klaviyo",
        authorize_url=started.authorize_url,
        scopes=started.scopes,
        expires_at=_when(started.expires_at),
    )


@_router.get(
    "/connections/oauth/callback", name="dashboard_oauth_callback", response_class=HTMLResponse
)
async def dashboard_oauth_callback(request: Request) -> Response:
    """Where Klaviyo sends the browser back after consent: the API's callback stores the
    connection in the workspace that started the flow; the page then shows it."""
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    try:
        created = await oauth_callback(request, visit.context)
    except ApiProblem as exc:
        said = exc.message.removeprefix(f"{exc.field}:").strip() if exc.field else exc.message
        return _message(request, visit, exc.status, "Not connected", f"OAuth connect: {said}")
    return _redirect(request, visit, f"/connections/{created.id}?done=connected")


# -- jobs -------------------------------------------------------------------------------------


def _progress(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    streams = progress.get("streams")
    if isinstance(streams, dict):
        parts = [
            f"{name} {info.get('records', 0)}"
            for name, info in streams.items()
            if isinstance(info, dict)
        ]
        return " · ".join(parts) + " records" if parts else ""
    return ", ".join(f"{k} {v}" for k, v in progress.items())


def _job_rows(visit: _Visit) -> list[dict[str, Any]]:
    assert visit.user is not None
    store = visit.context.store(visit.user.workspace_id)
    names = {r.id: r.name for r in store.list()}
    return [
        {
            "id": j.id,
            "kind": j.kind,
            "state": j.state,
            "connection_id": j.connection_id if j.connection_id in names else None,
            "connection": names.get(j.connection_id or "", "(disconnected)"),
            # a finished sync's result has the progress's shape: its final counts
            "progress": _progress(j.progress) or _progress(j.result),
            "attempts": j.attempts,
            "max_attempts": j.max_attempts,
            "created_at": _when(j.created_at),
            "error": j.last_error,
            "cancel_requested": j.cancel_requested,
        }
        for j in visit.context.appdb.jobs(visit.user.workspace_id)[:_JOBS_SHOWN]
    ]


@_router.get("/jobs", response_class=HTMLResponse)
def jobs(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    return _page(request, visit, "jobs.html", section="/jobs", title="Jobs", jobs=_job_rows(visit))


@_router.get("/jobs/table", response_class=HTMLResponse)
def jobs_table(request: Request) -> Response:
    """The jobs table alone: what the page's htmx polling swaps in every 2 s."""
    visit = _visit(request)
    if visit.user is None:
        return _finish(request, HTMLResponse("", status_code=401), visit)
    return _page(request, visit, "jobs_table.html", jobs=_job_rows(visit))


@_router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, job_id: str) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    workspace_id = visit.user.workspace_id
    try:
        found = visit.context.appdb.job(workspace_id, job_id)
        events = visit.context.appdb.job_events(workspace_id, job_id)
    except NotFoundError:
        return _message(request, visit, 404, "Not found", "No such job in this workspace.")
    rows = {row["id"]: row for row in _job_rows(visit)}
    shown = rows.get(found.id) or {
        "id": found.id,
        "kind": found.kind,
        "state": found.state,
        "connection": "",
        "progress": _progress(found.progress) or _progress(found.result),
        "attempts": found.attempts,
        "max_attempts": found.max_attempts,
        "error": found.last_error,
    }
    return _page(
        request,
        visit,
        "job.html",
        section="/jobs",
        title=f"{found.kind} job",
        j=shown,
        events=[{"at": _when(e.at), "event": e.event, "detail": e.detail or ""} for e in events],
    )


async def _job_action(request: Request, job_id: str, action: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    assert visit.user is not None
    appdb = visit.context.appdb
    workspace_id = visit.user.workspace_id
    try:
        if action == "cancel":
            await anyio.to_thread.run_sync(appdb.cancel_job, workspace_id, job_id)
        else:
            found = await anyio.to_thread.run_sync(appdb.job, workspace_id, job_id)
            if found.connection_id is None:
                return _message(
                    request, visit, 409, "Cannot retry", "Its connection was disconnected."
                )
            await anyio.to_thread.run_sync(appdb.retry_job, workspace_id, job_id)
    except NotFoundError:
        return _message(request, visit, 404, "Not found", "No such job in this workspace.")
    except ConflictError as exc:
        return _message(request, visit, 409, "Not possible now", str(exc))
    await anyio.to_thread.run_sync(_audit, visit, f"job.{action}", "job", job_id)
    if action == "retry":
        visit.context.enqueued(job_id)
    done = "cancelled" if action == "cancel" else "retried"
    return _redirect(request, visit, f"/jobs?done={done}")


@_router.post("/jobs/{job_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, job_id: str) -> Response:
    return await _job_action(request, job_id, "cancel")


@_router.post("/jobs/{job_id}/retry", response_class=HTMLResponse)
async def retry(request: Request, job_id: str) -> Response:
    return await _job_action(request, job_id, "retry")


# -- privacy ----------------------------------------------------------------------------------

_KINDS = {"access": "Access (a report of their data)", "deletion": "Deletion"}
_LAWS = {"gdpr": "GDPR (30 days)", "ccpa": "CCPA (45 days)"}
_PRIVACY_FIELDS = {"email": "Email or phone", "phone": "Email or phone", "connection": "Connection"}
_CLOSED = ("confirmed", "failed", "cancelled")


def _countdown(request: PrivacyRequestOut, now: datetime) -> str:
    """The legal clock in words: what is left of it, or by how much it was missed."""
    if request.state in _CLOSED or request.due_at is None:
        return ""
    seconds = (request.due_at - now).total_seconds()
    if seconds < 0:
        late = math.ceil(-seconds / 86400)
        return f"overdue by {late} day{'s' if late != 1 else ''}"
    if seconds < 86400:
        hours = math.ceil(seconds / 3600)
        return f"due in {hours} hour{'s' if hours != 1 else ''}"
    # counted up, as a deadline is: a request received a minute ago has all 30 days left
    days = math.ceil(seconds / 86400)
    return f"{days} day{'s' if days != 1 else ''} left"


def _privacy_rows(visit: _Visit) -> list[dict[str, Any]]:
    assert visit.user is not None
    names = {r.id: r.name for r in visit.context.store(visit.user.workspace_id).list()}
    now = visit.context.appdb.clock.now()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "connection": names.get(r.connection or "", "(disconnected)"),
            "law": r.regulation.upper(),
            "subject_type": r.subject_type or "",
            "state": r.state,
            "detail": r.detail or "",
            "received_at": _when(r.received_at),
            "due_at": _when(r.due_at),
            "countdown": _countdown(r, now),
            "has_report": r.kind == "access" and r.job is not None and r.job.state == "succeeded",
        }
        for r in list_privacy_requests(_acting(visit), visit.context)
    ]


def _privacy_page(
    request: Request,
    visit: _Visit,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    audit: list[dict[str, Any]] | None = None,
    audit_error: str | None = None,
) -> Response:
    assert visit.user is not None
    return _page(
        request,
        visit,
        "privacy.html",
        status=status,
        section="/privacy",
        title="Privacy",
        connections=visit.context.store(visit.user.workspace_id).list(),
        kinds=_KINDS,
        laws=_LAWS,
        requests=_privacy_rows(visit),
        error=error,
        form=form or {},
        audit=audit,
        audit_error=audit_error,
    )


@_router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    return _privacy_page(request, visit)


@_router.get("/privacy/queue", response_class=HTMLResponse)
def privacy_queue(request: Request) -> Response:
    """The queue alone: what the page's htmx polling swaps in every 2 s."""
    visit = _visit(request)
    if visit.user is None:
        return _finish(request, HTMLResponse("", status_code=401), visit)
    return _page(request, visit, "privacy_queue.html", requests=_privacy_rows(visit))


def _identifier(text: str) -> dict[str, str]:
    """The typed subject as the API's body takes it: a leading ``+`` makes it a phone."""
    text = text.strip()
    return {"phone": text} if text.startswith("+") else {"email": text}


@_router.post("/privacy", response_class=HTMLResponse)
async def submit_privacy_request(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    kind, law = form.get("kind", ""), form.get("regulation", "")
    kept = {"kind": kind, "regulation": law, "connection": form.get("connection", "")}
    if kind not in _KINDS or law not in _LAWS:
        return _privacy_page(
            request, visit, status=422, error="Choose the kind of request and its law.", form=kept
        )
    body = PrivacyRequestIn.model_validate(
        {
            "kind": kind,
            "regulation": law,
            "connection": form.get("connection", ""),
            **_identifier(form.get("subject", "")),
        }
    )
    try:
        # the API's own route: the same checks, hashing, sealing, audit and queueing
        await anyio.to_thread.run_sync(
            create_privacy_request, body, _acting(visit), visit.context, Response()
        )
    except ApiProblem as exc:
        # the message names the field, never the subject (the API never echoes it)
        label = _PRIVACY_FIELDS.get(exc.field or "", "")
        said = exc.message.removeprefix(f"{exc.field}:").strip()
        return _privacy_page(
            request,
            visit,
            status=exc.status,
            error=f"{label}: {said}" if label else said,
            form=kept,
        )
    return _redirect(request, visit, "/privacy?done=privacy")


@_router.post("/privacy/audit", response_class=HTMLResponse)
async def search_privacy_audit(request: Request) -> Response:
    """The audit log's entries about the typed subject: the server hashes it under the
    workspace's privacy key, as the requests were; the log holds nothing else to match.
    A POST, so the subject stays out of URLs (and the access logs that keep them)."""
    visit = _visit(request)
    form = await _form(request, visit, "viewer")
    if isinstance(form, Response):
        return form
    assert visit.user is not None
    workspace_id = visit.user.workspace_id
    context = visit.context
    try:
        _, subject = _subject(
            PrivacyRequestIn.model_validate(
                {"kind": "access", "connection": "", **_identifier(form.get("subject", ""))}
            )
        )
    except ApiProblem as exc:
        said = exc.message.removeprefix(f"{exc.field}:").strip()
        return _privacy_page(request, visit, status=422, audit_error=f"Email or phone: {said}")

    def search() -> list[dict[str, Any]]:
        key = context.privacy_key(workspace_id)
        log = AppPrivacyLog(
            context.appdb,
            workspace_id,
            "",
            master_key=context.master_key,
            clock=context.appdb.clock,
        )
        return [
            {
                "at": _when(e["recorded_at"]),
                "action": e["action"],
                "outcome": e["outcome"],
                "requested_at": _when(e["requested_at"]),
                "confirmed_at": _when(e["confirmed_at"]),
                "profiles": ", ".join(e["profile_ids"]),
                "detail": e["detail"] or "",
            }
            for e in log.audit_entries(subject_hash=subject_hash(key, subject))
        ]

    return _privacy_page(request, visit, audit=await anyio.to_thread.run_sync(search))


def _access_reports(visit: _Visit, request_id: str) -> tuple[PrivacyRequestOut, list[Any]] | str:
    """The request and its opened reports, or why there are none (a 404's or 409's line)."""
    who = _acting(visit)
    try:
        found = get_privacy_request(request_id, who, visit.context)
    except ApiProblem:
        return "No such privacy request in this workspace."
    if not visit.may("operator"):
        # the report is the person's data: a viewer sees the request, never what it found
        return "Access reports hold people's data: an operator or an admin may open them."
    if found.kind != "access" or found.job is None or found.job.state != "succeeded":
        return "This request has no access report (yet)."
    # the API's route opens the reports sealed in the job row, for this workspace only
    result = get_job(found.job.id, who, visit.context).result or {}
    reports = result.get("reports")
    return found, list(reports) if isinstance(reports, list) else []


def _report_status(why: str) -> int:
    if why.startswith("No such"):
        return 404
    return 403 if why.startswith("Access reports hold") else 409


@_router.get("/privacy/{request_id}/report", response_class=HTMLResponse)
def privacy_report(request: Request, request_id: str) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    got = _access_reports(visit, request_id)
    if isinstance(got, str):
        return _message(request, visit, _report_status(got), "No report", got)
    found, reports = got
    return _page(
        request,
        visit,
        "privacy_report.html",
        section="/privacy",
        title="Access report",
        r=found,
        received_at=_when(found.received_at),
        reports=reports,
    )


@_router.get("/privacy/{request_id}/report.json")
def privacy_report_json(request: Request, request_id: str) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    got = _access_reports(visit, request_id)
    if isinstance(got, str):
        refused = JSONResponse({"error": got}, status_code=_report_status(got))
        return _finish(request, refused, visit)
    found, reports = got
    body = {"request": found.model_dump(mode="json"), "reports": reports}
    response = JSONResponse(
        body,
        headers={"Content-Disposition": f'attachment; filename="access-report-{found.id}.json"'},
    )
    return _finish(request, response, visit)


# -- campaigns --------------------------------------------------------------------------------


async def _queue_job(
    visit: _Visit, kind: str, connection_id: str, params: dict[str, Any]
) -> ApiProblem | None:
    """Queue a job through the API's own route (the same parameter checks, workspace check,
    audit and queueing); the refusal, if any."""
    try:
        await anyio.to_thread.run_sync(
            create_job,
            JobIn.model_validate({"kind": kind, "connection": connection_id, "params": params}),
            _acting(visit),
            visit.context,
            Response(),
        )
    except ApiProblem as exc:
        return exc
    return None


def _not_found_connection(request: Request, visit: _Visit) -> Response:
    return _message(request, visit, 404, "Not found", "No such connection in this workspace.")


async def _campaign_job(
    request: Request, kind: str, params: dict[str, Any], form: dict[str, str], visit: _Visit
) -> Response:
    connection_id = form.get("connection", "")
    if form.get("from") == "detail":
        # the campaign's own page: the ids are quoted, the path stays ours
        back = f"/campaigns/{quote(connection_id, safe='')}/"
        back += quote(str(params.get("campaign_id", "")), safe="") + "?"
    else:
        kept = {k: form.get(k, "") for k in ("connection", "month", "view", "week")}
        back = "/campaigns?" + urlencode({k: v for k, v in kept.items() if v}) + "&"
    exc = await _queue_job(visit, kind, connection_id, params)
    if exc is not None:
        if exc.field == "connection":
            return _not_found_connection(request, visit)
        field = (exc.field or "").removeprefix("params.")
        said = exc.message.removeprefix(f"{exc.field}:").strip()
        return _message(request, visit, exc.status, "Not queued", f"{field}: {said}")
    return _redirect(request, visit, f"{back}done={kind}")


@_router.post("/campaigns/publish", response_class=HTMLResponse)
async def publish_campaign(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    send_at = form.get("send_at", "").strip()
    params: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "subject": form.get("subject", "").strip(),
        "included": [x.strip() for x in form.get("included", "").split(",") if x.strip()],
        "html": form.get("html", ""),
    }
    if form.get("from_email", "").strip():
        params["from_email"] = form["from_email"].strip()
    if send_at:
        # a datetime-local input gives no zone: the page says it is UTC
        params["send_at"] = f"{send_at}:00Z" if len(send_at) == 16 else f"{send_at}Z"
    return await _campaign_job(request, "campaign_publish", params, form, visit)


@_router.post("/campaigns/cancel", response_class=HTMLResponse)
async def cancel_campaign(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    return await _campaign_job(
        request, "campaign_cancel", {"campaign_id": form.get("campaign_id", "")}, form, visit
    )


# -- analytics --------------------------------------------------------------------------------

#: the report is ours but carries inline styles and SVG: those, and nothing it could fetch or run
_REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "form-action 'none'; base-uri 'none'"
)


def _latest(visit: _Visit, connection_id: str, kind: str) -> JobView | None:
    assert visit.user is not None
    for job_row in visit.context.appdb.jobs(visit.user.workspace_id):  # newest first
        if job_row.kind == kind and job_row.connection_id == connection_id:
            return job_row
    return None


@_router.get("/analytics", response_class=HTMLResponse)
def analytics(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    records = visit.context.store(visit.user.workspace_id).list()
    chosen = request.query_params.get("connection") or (records[0].id if records else "")
    if chosen and chosen not in {r.id for r in records}:
        return _message(request, visit, 404, "Not found", "No such connection in this workspace.")
    report = _latest(visit, chosen, "report") if chosen else None
    push = _latest(visit, chosen, "segment_push") if chosen else None
    return _page(
        request,
        visit,
        "analytics.html",
        section="/analytics",
        title="Analytics",
        connections=records,
        chosen=chosen,
        report=report,
        report_at=_when(report.finished_at) if report else "",
        push=push,
        segments=[rule.name for rule in DEFAULT_SEGMENTS],
    )


@_router.get("/analytics/{connection_id}/churn", response_class=HTMLResponse)
def analytics_churn(request: Request, connection_id: str) -> Response:
    """The churn top-risk table alone, which the Analytics page loads after it shows: the
    model is trained when the warehouse changed, and the page need not wait for it."""
    visit = _visit(request)
    if visit.user is None:
        return _finish(request, HTMLResponse("", status_code=401), visit)
    store = visit.context.store(visit.user.workspace_id)
    record = next((r for r in store.list() if r.id == connection_id), None)
    if record is None:
        return _finish(request, HTMLResponse("", status_code=404), visit)
    url = store.settings(record.name).warehouse or default_warehouse_url(
        visit.context.data_dir, visit.user.workspace_id, record.name
    )
    return _page(
        request, visit, "churn_table.html", churn=churn_table.top_risk(url, record.account_id)
    )


async def _analytics_job(
    request: Request, kind: str, params: dict[str, Any], connection_id: str, visit: _Visit
) -> Response:
    exc = await _queue_job(visit, kind, connection_id, params)
    if exc is not None:
        if exc.field == "connection":
            return _not_found_connection(request, visit)
        return _message(request, visit, exc.status, "Not queued", exc.message)
    query = urlencode({"connection": connection_id, "done": kind})
    return _redirect(request, visit, f"/analytics?{query}")


@_router.post("/analytics/{connection_id}/report", response_class=HTMLResponse)
async def build_analytics_report(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    return await _analytics_job(request, "report", {}, connection_id, visit)


@_router.post("/analytics/{connection_id}/push", response_class=HTMLResponse)
async def push_rfm_segment(request: Request, connection_id: str) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    params: dict[str, Any] = {"segment": form.get("segment", "")}
    if form.get("list_name", "").strip():
        params["list_name"] = form["list_name"].strip()
    return await _analytics_job(request, "segment_push", params, connection_id, visit)


@_router.get("/analytics/{connection_id}/report", response_class=HTMLResponse)
def analytics_report(request: Request, connection_id: str) -> Response:
    """The connection's newest HTML report, for its own workspace alone: the file is found
    from this workspace's job row, and must lie in this workspace's reports folder."""
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    found = _latest(visit, connection_id, "report")
    if found is None or found.state != "succeeded" or not found.result:
        return _message(request, visit, 404, "No report", "No report of this connection yet.")
    folder = (visit.context.data_dir / "reports" / visit.user.workspace_id).resolve()
    path = Path(str(found.result.get("path", ""))).resolve()
    if path.parent != folder or not path.is_file():
        return _message(request, visit, 404, "No report", "No report of this connection yet.")
    response = HTMLResponse(path.read_text(encoding="utf-8"))
    response.headers["Content-Security-Policy"] = _REPORT_CSP
    return _finish(request, response, visit)
