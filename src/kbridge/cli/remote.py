"""``kbridge jobs …`` and ``kbridge schedules …``: a running service, driven from a terminal.

Every command speaks to ``kbridge serve``'s REST API (``/api/v1``) at
``--server URL`` (``KBRIDGE_SERVER``) with ``--token T`` (``KBRIDGE_TOKEN``,
from ``kbridge tokens add``). The service's own answer to a refused request
(its ``error.message`` names the field at fault) is the one line printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

import httpx
import typer

from kbridge.cli.output import fail, new_table, resolve_format
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads

__all__ = ["Service", "jobs_app", "schedules_app"]

SERVER_ENV = "KBRIDGE_SERVER"
TOKEN_ENV = "KBRIDGE_TOKEN"  # noqa: S105 (the variable's name, not a secret)
_JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")

jobs_app = typer.Typer(
    help="Jobs of a running service (kbridge serve): list, show, start, cancel, retry.",
    no_args_is_help=True,
)
schedules_app = typer.Typer(
    help="Schedules of a running service (kbridge serve): add, list, rm.",
    no_args_is_help=True,
)

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help=f"the service's URL, e.g. http://127.0.0.1:8080 (default: ${SERVER_ENV})",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help=f"an API token from `kbridge tokens add` (default: ${TOKEN_ENV})",
        show_default=False,
    ),
]
OutputOption = Annotated[
    str | None,
    typer.Option("--output", "-o", help="table or json (default: table on a terminal)"),
]


class Service:
    """The service's REST API at ``server`` with a bearer ``token``; failures are one line."""

    def __init__(self, server: str | None, token: str | None) -> None:
        server = server or os.environ.get(SERVER_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        if not server:
            fail(f"give the service's URL: --server URL or {SERVER_ENV}")
        if not token:
            fail(f"give an API token: --token T or {TOKEN_ENV} (`kbridge tokens add` makes one)")
        if not server.startswith(("http://", "https://")):
            fail(f"--server: {server!r} is not an http:// or https:// URL")
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        """The decoded answer (``None`` for 204); anything else exits with one line."""
        url = f"{self.server}/api/v1{path}"
        try:
            reply = httpx.request(
                method, url, json=json, params=params, headers=self._headers, timeout=30.0
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach the service at {self.server}: {exc}")
        if reply.status_code == 204:
            return None
        try:
            body = loads(reply.content) if reply.content else None
        except JSONDecodeError:
            body = None
        if not reply.is_success:
            self._refused(reply.status_code, body)
        return body

    def _refused(self, status: int, body: Any) -> NoReturn:
        message = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            message = body["error"].get("message")
        if status == 401:
            fail(f"the service refused the token ({message or 'unauthorized'})")
        fail(f"{message or 'the service answered'} (HTTP {status})")


def _print(data: Any, output: str | None, columns: list[tuple[str, str]]) -> None:
    """JSON as the service answered it, or a table of ``columns`` (key, heading)."""
    if resolve_format(output) != "table":
        typer.echo(dumps(data, indent=True).decode())
        return
    found = data if isinstance(data, list) else [data]
    rows = [[_cell(row.get(key)) for key, _ in columns] for row in found]
    from rich.console import Console

    Console(soft_wrap=True).print(new_table(*(heading for _, heading in columns), rows=rows))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return dumps(value).decode()
    return str(value)


_JOB_COLUMNS = [
    ("id", "id"),
    ("kind", "kind"),
    ("state", "state"),
    ("connection", "connection"),
    ("attempts", "attempts"),
    ("created_at", "created"),
    ("error", "error"),
]


@jobs_app.command("list")
def list_jobs(
    state: Annotated[
        list[str] | None, typer.Option("--state", help=f"only these: {', '.join(_JOB_STATES)}")
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """The workspace's jobs, newest first."""
    for s in state or ():
        if s not in _JOB_STATES:
            fail(f"--state: {s!r} is not one of {', '.join(_JOB_STATES)}")
    jobs = Service(server, token).call("GET", "/jobs", params={"state": state or []})
    _print(jobs, output, _JOB_COLUMNS)


@jobs_app.command("show")
def show_job(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="the job's id")],
    events: Annotated[bool, typer.Option("--events", help="with its timeline")] = False,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """One job: state, progress, error and result (and its timeline with --events)."""
    service = Service(server, token)
    job = service.call("GET", f"/jobs/{_segment(job_id)}")
    if events:
        job["events"] = service.call("GET", f"/jobs/{_segment(job_id)}/events")
    if resolve_format(output) != "table":
        _print(job, output, [])
        return
    _print(job, output, [*_JOB_COLUMNS, ("progress", "progress"), ("result", "result")])
    if events:
        _print(job["events"], output, [("at", "at"), ("event", "event"), ("detail", "detail")])


@jobs_app.command("start")
def start_job(
    kind: Annotated[str, typer.Argument(help="sync, privacy_access, privacy_delete, …")],
    connection: Annotated[str, typer.Option("--connection", help="the connection's id")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE for the job (repeat; a JSON value is parsed)"),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Queue a job now; prints its id (poll it with `kbridge jobs show ID`)."""
    body = {"kind": kind, "connection": connection, "params": _params(param or [])}
    created = Service(server, token).call("POST", "/jobs", json=body)
    _print(created, output, [("id", "id"), ("state", "state")])


@jobs_app.command("cancel")
def cancel_job(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="the job's id")],
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Cancel a job: a queued one at once, a running one when its worker next checks in."""
    job = Service(server, token).call("POST", f"/jobs/{_segment(job_id)}/cancel")
    _print(job, output, _JOB_COLUMNS)


@jobs_app.command("retry")
def retry_job(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="the job's id")],
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Queue a failed or cancelled job again."""
    job = Service(server, token).call("POST", f"/jobs/{_segment(job_id)}/retry")
    _print(job, output, _JOB_COLUMNS)


_SCHEDULE_COLUMNS = [
    ("id", "id"),
    ("connection", "connection"),
    ("kind", "kind"),
    ("daily_at", "daily at"),
    ("cron", "cron"),
    ("timezone", "timezone"),
    ("next_due", "next due"),
]


@schedules_app.command("add")
def add_schedule(
    connection: Annotated[str, typer.Option("--connection", help="the connection's id")],
    daily_at: Annotated[
        str | None, typer.Option("--daily-at", help="HH:MM, local to --timezone")
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="5 fields, read in --timezone")] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="an IANA name, e.g. Europe/Berlin")
    ] = "UTC",
    kind: Annotated[str, typer.Option("--kind", help="the job it starts")] = "sync",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE for each job (repeat; a JSON value is parsed)"),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Repeat a job for a connection: --daily-at HH:MM or --cron EXPR."""
    if (daily_at is None) == (cron is None):
        fail("give one of --daily-at HH:MM or --cron EXPR")
    body: dict[str, Any] = {
        "connection": connection,
        "kind": kind,
        "timezone": timezone,
        "params": _params(param or []),
    }
    body.update({"daily_at": daily_at} if daily_at is not None else {"cron": cron})
    created = Service(server, token).call("POST", "/schedules", json=body)
    _print(created, output, _SCHEDULE_COLUMNS)


@schedules_app.command("list")
def list_schedules(
    server: ServerOption = None, token: TokenOption = None, output: OutputOption = None
) -> None:
    """The workspace's schedules."""
    _print(Service(server, token).call("GET", "/schedules"), output, _SCHEDULE_COLUMNS)


@schedules_app.command("rm")
def remove_schedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="the schedule's id")],
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a schedule (jobs it already started are kept)."""
    Service(server, token).call("DELETE", f"/schedules/{_segment(schedule_id)}")
    typer.echo(f"schedule {schedule_id} removed")


def _segment(value: str) -> str:
    """An id as one path segment: "../x" must not walk the API's paths."""
    from urllib.parse import quote

    return quote(value, safe="")


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--param: {pair!r} is not KEY=VALUE")
        try:
            params[key] = loads(raw)
        except JSONDecodeError:
            params[key] = raw
    return params
