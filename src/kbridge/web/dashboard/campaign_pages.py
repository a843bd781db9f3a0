"""The Campaigns pages: the month and week calendar, a campaign made from a template and
lists, revert and schedule again, and each campaign's performance from the warehouse.

What Klaviyo holds (campaigns, templates, lists) is read through the connection at page
time; every change is a job (``campaign_publish``, ``campaign_schedule``,
``campaign_cancel``, ``campaign_revert``), queued through the API's own route, so the
same checks, audit and worker run it. Performance is read from the synced warehouse
only: a page view never asks Klaviyo's reporting API (its daily quota is small).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kbridge.analytics import campaign_performance
from kbridge.api import AsyncClient, ClientConfig, RetryPolicy
from kbridge.api.errors import ApiError, AuthenticationError, NotFoundError
from kbridge.connections import ConnectionNotFoundError
from kbridge.service.jobs import default_warehouse_url
from kbridge.warehouse import WarehouseError, duckdb_path, open_warehouse
from kbridge.web.app import list_campaigns
from kbridge.web.dashboard.pages import (
    _acting,
    _campaign_job,
    _form,
    _message,
    _not_found_connection,
    _page,
    _queue_job,
    _redirect,
    _Visit,
    _visit,
)
from kbridge.web.problems import ApiProblem

__all__ = ["router"]

router = APIRouter()

_MONTH = re.compile(r"(\d{4})-(\d{2})")
#: statuses a cancel can still stop (Klaviyo's words)
_CANCELLABLE = {"Scheduled", "Queued without Recipients", "Sending"}
#: a revert needs a send that has not started (a sending campaign can only be cancelled)
_REVERTIBLE = {"Scheduled"}
#: reading an account's templates and lists for a form: a person waits, so give up early
_READ_RETRY = RetryPolicy(max_attempts=3, total_deadline=30.0)
#: how many templates and lists a form offers (the newest Klaviyo returns first)
_OFFERED = 500


def _month(text: str, now: datetime) -> tuple[int, int]:
    found = _MONTH.fullmatch(text)
    if found and 1 <= int(found.group(2)) <= 12:
        return int(found.group(1)), int(found.group(2))
    return now.year, now.month


def _monday(text: str, today: date) -> date:
    """The Monday of the week holding ``text`` (``YYYY-MM-DD``), else of ``today``'s week."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = today
    return day - timedelta(days=day.weekday())


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + (month - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _sends(campaigns: list[Any]) -> dict[date, list[dict[str, Any]]]:
    """Campaigns with a send time, by their UTC day, earliest first."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for c in campaigns:
        if not c.send_time:
            continue
        try:
            at = datetime.fromisoformat(str(c.send_time).replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            continue
        by_day.setdefault(at.date(), []).append(
            {
                "id": c.id,
                "name": c.name,
                "status": c.status,
                "at": at,
                "time": at.strftime("%H:%M"),
                "cancellable": c.status in _CANCELLABLE,
                "revertible": c.status in _REVERTIBLE,
            }
        )
    for day in by_day.values():
        day.sort(key=lambda c: c["at"])
    return by_day


def _calendar(year: int, month: int, campaigns: list[Any]) -> list[list[dict[str, Any]]]:
    """The month's weeks (Monday first), each day with the campaigns sending on it (UTC)."""
    by_day = _sends(campaigns)
    return [
        [
            {"day": d, "campaigns": by_day.get(date(year, month, d), [])} if d else {"day": None}
            for d in week
        ]
        for week in calendar.Calendar(firstweekday=0).monthdayscalendar(year, month)
    ]


def _week(monday: date, campaigns: list[Any]) -> list[dict[str, Any]]:
    """The seven days from ``monday``, each with the campaigns sending on it (UTC)."""
    by_day = _sends(campaigns)
    days = [monday + timedelta(days=k) for k in range(7)]
    return [
        {
            "date": d.isoformat(),
            "label": f"{calendar.day_name[d.weekday()]} {d.day} {calendar.month_abbr[d.month]}",
            "campaigns": by_day.get(d, []),
        }
        for d in days
    ]


def _drafts(campaigns: list[Any]) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name} for c in campaigns if c.status == "Draft"]


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    context = visit.context
    records = await anyio.to_thread.run_sync(context.store(visit.user.workspace_id).list)
    chosen = request.query_params.get("connection") or (records[0].id if records else "")
    now = context.appdb.clock.now()
    year, month = _month(request.query_params.get("month", ""), now)
    weekly = request.query_params.get("view") == "week"
    # "Week" from a month opens this week in the current month, else the month's first week
    first = now.date() if (year, month) == (now.year, now.month) else date(year, month, 1)
    month_week = _monday("", first).isoformat()
    monday = _monday(request.query_params.get("week", ""), now.date())
    if weekly:
        # the month the week starts in: "Month" leads back to it
        year, month = monday.year, monday.month
    found: list[Any] = []
    error = None
    status = 200
    if chosen:
        try:
            # the API's own route: read from Klaviyo through the connection
            found = await list_campaigns(_acting(visit), context, connection=chosen, limit=1000)
        except ApiProblem as exc:
            error, status = exc.message, exc.status
    sunday = monday + timedelta(days=6)
    return _page(
        request,
        visit,
        "campaigns.html",
        status=status,
        section="/campaigns",
        title="Campaigns",
        connections=records,
        chosen=chosen,
        view="week" if weekly else "month",
        label=f"{calendar.month_name[month]} {year}",
        month=f"{year:04d}-{month:02d}",
        previous=_shift(year, month, -1),
        following=_shift(year, month, 1),
        weeks=_calendar(year, month, found),
        weekdays=list(calendar.day_name),
        week=monday.isoformat() if weekly else "",
        month_week=month_week,
        week_label=f"Week of {monday.day} {calendar.month_name[monday.month]} {monday.year}"
        f" – {sunday.day} {calendar.month_name[sunday.month]} {sunday.year}",
        week_days=_week(monday, found),
        previous_week=(monday - timedelta(days=7)).isoformat(),
        following_week=(monday + timedelta(days=7)).isoformat(),
        drafts=_drafts(found),
        error=error,
    )


# -- acting on one campaign ---------------------------------------------------------------------


@router.post("/campaigns/revert", response_class=HTMLResponse)
async def revert_campaign(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    return await _campaign_job(
        request, "campaign_revert", {"campaign_id": form.get("campaign_id", "")}, form, visit
    )


@router.post("/campaigns/schedule", response_class=HTMLResponse)
async def schedule_campaign(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    params: dict[str, Any] = {"campaign_id": form.get("campaign_id", "")}
    send_at = _utc(form.get("send_at", ""))
    if send_at:
        params["send_at"] = send_at
    return await _campaign_job(request, "campaign_schedule", params, form, visit)


def _utc(text: str) -> str:
    """A datetime-local input's value (no zone: the page says it is UTC) in ISO with ``Z``."""
    text = text.strip()
    if not text:
        return ""
    return f"{text}:00Z" if len(text) == 16 else f"{text}Z"


# -- a new campaign from a template and lists ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Choice:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class _Library:
    """What a new campaign is made of, read from the account."""

    templates: list[_Choice]
    lists: list[_Choice]


async def _connection_key(visit: _Visit, connection_id: str) -> tuple[str, str, str | None]:
    """(name, API key, base URL) of the workspace's connection; ApiProblem 404/409 else."""
    assert visit.user is not None
    store = visit.context.store(visit.user.workspace_id)

    def load() -> tuple[str, str, str | None]:
        try:
            record, secrets = store.load(store.name_of(connection_id))
        except ConnectionNotFoundError:
            raise ApiProblem(404, "no such connection in this workspace") from None
        key = secrets.get("api_key")
        if record.kind != "api_key" or not key:
            raise ApiProblem(409, f"connection {record.name!r} has no API key to read with")
        return record.name, str(key), record.base_url

    return await anyio.to_thread.run_sync(load)


async def _library(visit: _Visit, connection_id: str) -> _Library:
    name, key, base_url = await _connection_key(visit, connection_id)
    templates: list[_Choice] = []
    lists: list[_Choice] = []
    try:
        config = ClientConfig(retry=_READ_RETRY)
        async with AsyncClient(key, base_url=base_url, config=config) as client:
            async for t in client.templates.iter_templates():
                templates.append(_Choice(t.id or "", str(t.attributes.get("name") or t.id)))
                if len(templates) >= _OFFERED:
                    break
            async for lst in client.lists.iter_lists():
                lists.append(_Choice(lst.id or "", str(lst.attributes.get("name") or lst.id)))
                if len(lists) >= _OFFERED:
                    break
    except AuthenticationError:
        raise ApiProblem(
            409, f"Klaviyo refused the key of connection {name!r}; rotate it"
        ) from None
    except ApiError as exc:
        raise ApiProblem(502, f"Klaviyo did not answer for connection {name!r}: {exc}") from None
    templates.sort(key=lambda c: c.name.lower())
    lists.sort(key=lambda c: c.name.lower())
    return _Library(templates, lists)


async def _new_page(
    request: Request,
    visit: _Visit,
    connection_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    try:
        library = await _library(visit, connection_id)
    except ApiProblem as exc:
        if exc.status == 404:
            return _not_found_connection(request, visit)
        return _message(request, visit, exc.status, "Cannot read the account", exc.message)
    return _page(
        request,
        visit,
        "campaign_new.html",
        status=status,
        section="/campaigns",
        title="New campaign",
        chosen=connection_id,
        library=library,
        error=error,
        form=form or {"included": []},
    )


@router.get("/campaigns/new", response_class=HTMLResponse)
async def new_campaign_page(request: Request) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    if not visit.may("operator"):
        return _message(
            request, visit, 403, "Refused", "Your role may not do this (it needs operator)."
        )
    return await _new_page(request, visit, request.query_params.get("connection", ""))


@router.post("/campaigns/new", response_class=HTMLResponse)
async def create_campaign(request: Request) -> Response:
    visit = _visit(request)
    form = await _form(request, visit, "operator")
    if isinstance(form, Response):
        return form
    connection_id = form.get("connection", "")
    included = [
        str(v).strip()
        for v in (await request.form()).getlist("included")
        if isinstance(v, str) and v.strip()
    ]
    send_at = _utc(form.get("send_at", ""))
    schedule = form.get("schedule") == "yes"
    kept: dict[str, Any] = {k: form.get(k, "") for k in ("name", "subject", "template_id")}
    kept |= {"from_email": form.get("from_email", ""), "send_at": form.get("send_at", "")}
    kept |= {"included": included, "schedule": schedule}
    if schedule and not send_at:
        return await _new_page(
            request,
            visit,
            connection_id,
            status=422,
            error="Send at: give a time to schedule the campaign (or leave it a draft).",
            form=kept,
        )
    params: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "subject": form.get("subject", "").strip(),
        "template_id": form.get("template_id", ""),
        "included": included,
        "draft": not schedule,
    }
    if form.get("from_email", "").strip():
        params["from_email"] = form["from_email"].strip()
    if send_at:
        params["send_at"] = send_at
    exc = await _queue_job(visit, "campaign_publish", connection_id, params)
    if exc is not None:
        if exc.field == "connection":
            return _not_found_connection(request, visit)
        labels = {
            "params.name": "Campaign name",
            "params.subject": "Subject",
            "params.template_id": "Template",
            "params.included": "Lists",
            "params.from_email": "From email",
            "params.send_at": "Send at",
        }
        said = exc.message.removeprefix(f"{exc.field}:").strip()
        error = f"{labels.get(exc.field or '', exc.field or 'Campaign')}: {said}"
        return await _new_page(
            request, visit, connection_id, status=exc.status, error=error, form=kept
        )
    done = "campaign_publish" if schedule else "campaign_draft"
    query = urlencode({"connection": connection_id, "done": done})
    return _redirect(request, visit, f"/campaigns?{query}")


# -- one campaign: its state in Klaviyo, its performance from the warehouse -----------------

#: the performance figures shown, in order, with how each reads
_FIGURES = (
    ("recipients", "Recipients (sent)", "count"),
    ("delivered", "Delivered", "count"),
    ("open_rate", "Open rate (unique)", "rate"),
    ("click_rate", "Click rate (unique)", "rate"),
    ("conversions", "Conversions", "count"),
    ("conversion_rate", "Conversion rate", "rate"),
    ("revenue", "Revenue", "money"),
    ("revenue_per_recipient", "Revenue per recipient", "money"),
    ("unsubscribes", "Unsubscribes", "count"),
    ("unsubscribe_rate", "Unsubscribe rate", "rate"),
)


def _shown(value: Any, how: str) -> str:
    if value is None:
        return "–"
    if how == "rate":
        return f"{float(value) * 100:.1f}%"
    if how == "money":
        return f"{float(value):,.2f}"
    return f"{int(value):,}"


def _performance(url: str, account_id: str, campaign_id: str) -> list[dict[str, Any]] | None:
    """The campaign's messages' figures in the warehouse; ``None`` if it was never synced.

    Raises :class:`WarehouseError` when it cannot be read now (a sync holds it)."""
    if not url.startswith(("postgresql://", "postgres://")):
        path = duckdb_path(url)
        if path is None or not Path(path).is_file():
            return None  # opening it would create it: a page view makes no warehouse
    warehouse = open_warehouse(url)
    try:
        found = campaign_performance(warehouse, account_id, reconcile=False)
    finally:
        warehouse.close()
    rows = []
    for row in found.messages.records():
        if row["source"] != "campaign" or row["parent_id"] != campaign_id:
            continue
        rows.append(
            {
                "message": row["message"],
                "first_sent": row["first_sent"] or "",
                "figures": [(label, _shown(row[key], how)) for key, label, how in _FIGURES],
            }
        )
    return rows


@router.get("/campaigns/{connection_id}/{campaign_id}", response_class=HTMLResponse)
async def campaign_detail(request: Request, connection_id: str, campaign_id: str) -> Response:
    visit = _visit(request)
    if visit.user is None:
        return _redirect(request, visit, "/login")
    store = visit.context.store(visit.user.workspace_id)
    try:
        name = await anyio.to_thread.run_sync(store.name_of, connection_id)
        record = await anyio.to_thread.run_sync(store.get, name)
        settings = await anyio.to_thread.run_sync(store.settings, name)
    except ConnectionNotFoundError:
        return _not_found_connection(request, visit)
    campaign: dict[str, Any] | None = None
    error = None
    try:
        _, key, base_url = await _connection_key(visit, connection_id)
        config = ClientConfig(retry=_READ_RETRY)
        async with AsyncClient(key, base_url=base_url, config=config) as client:
            found = await client.campaigns.get_campaign(campaign_id)
        attrs = found.attributes
        status = str(attrs.get("status") or "")
        campaign = {
            "id": found.id or campaign_id,
            "name": str(attrs.get("name") or ""),
            "status": status,
            "send_time": _at(attrs.get("send_time")),
            "cancellable": status in _CANCELLABLE,
            "revertible": status in _REVERTIBLE,
            "draft": status == "Draft",
        }
    except NotFoundError:
        return _message(request, visit, 404, "Not found", "No such campaign in this account.")
    except ApiProblem as exc:
        error = exc.message
    except AuthenticationError:
        error = f"Klaviyo refused the key of connection {name!r}; rotate it."
    except ApiError as exc:
        error = f"Klaviyo did not answer: {exc}"
    url = settings.warehouse or default_warehouse_url(
        visit.context.data_dir, visit.user.workspace_id, name
    )
    busy = False
    try:
        performance = await anyio.to_thread.run_sync(
            _performance, url, record.account_id, campaign_id
        )
    except WarehouseError:
        performance, busy = None, True
    return _page(
        request,
        visit,
        "campaign.html",
        section="/campaigns",
        title=campaign["name"] if campaign and campaign["name"] else "Campaign",
        chosen=connection_id,
        connection_name=name,
        campaign=campaign,
        campaign_id=campaign_id,
        error=error,
        synced=performance is not None,
        busy=busy,
        performance=performance or [],
    )


def _at(value: object) -> str:
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M UTC")
