"""Workflow commands added to the generated ``campaigns``, ``templates`` and ``flows`` groups.

``kbridge campaigns publish|schedule|cancel|revert|status|performance``,
``kbridge templates push|render`` and ``kbridge flows create|status|preview``
call :mod:`kbridge.campaigns`. Each takes the actions' shared options
(``--connection``, ``--api-key``, ``--base-url``, ``--output``, ``--debug``,
built by :func:`kbridge.cli.actions.common_options`) and prints JSON with
at least ``id`` and ``status``, or a table. ``templates render`` and
``flows create`` replace the generated actions of the same name with
supersets (a context/definition *file* is accepted besides inline JSON).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console
from rich.table import Table

from kbridge.api import AsyncClient
from kbridge.api.actions import read_text_file
from kbridge.api.capabilities import (
    CAMPAIGN_CONTROL,
    FLOW_CREATE,
    FLOW_STATUS,
    TEMPLATE_PUSH,
    TEMPLATE_RENDER,
)
from kbridge.api.errors import NotFoundError
from kbridge.api.validation import ValidationError
from kbridge.campaigns import (
    PerformanceReport,
    PublishRequest,
    campaign_performance,
    campaign_status,
    cancel,
    create_flow,
    preview_flow,
    publish,
    push_template,
    render_template,
    revert,
    save_performance,
    schedule,
    scopes_for,
    set_flow_status,
)
from kbridge.campaigns.flows import PREVIEW_OPERATIONS
from kbridge.campaigns.performance import PERFORMANCE_OPERATIONS
from kbridge.campaigns.publish import PUBLISH_OPERATIONS, SCHEDULE_OPERATIONS
from kbridge.cli.actions import _debug_logging, common_options
from kbridge.cli.credentials import resolve_credentials
from kbridge.cli.output import describe_error, emit, fail, resolve_format
from kbridge.cli.warehouse_url import WAREHOUSE_URL_HELP, with_hint
from kbridge.core import KbridgeError, SystemClock, loads
from kbridge.core.jsoncodec import JSONDecodeError
from kbridge.warehouse import open_warehouse

__all__ = ["REPLACED", "WAREHOUSE_ENV", "register"]

#: generated action commands these workflow commands replace (same name, more accepted)
REPLACED = frozenset({"templates render", "flows create"})
#: where ``campaigns performance`` saves when ``--to`` is not given
WAREHOUSE_ENV = "KBRIDGE_WAREHOUSE"
_COMMON = ("api_key", "base_url", "connection", "output", "debug")

Run = Callable[[AsyncClient], Awaitable[Any]]


def _workflow(name: str) -> Callable[[Callable[..., Run]], Callable[..., None]]:
    """A command from ``fn`` (which returns what to run on a client) plus the common options.

    ``fn`` gets the command's own options; the wrapper resolves credentials,
    opens one client, runs, prints the result (``as_json()`` when it has one)
    and turns any foreseeable error into one line and exit 1.
    """

    def decorate(fn: Callable[..., Run]) -> Callable[..., None]:
        # this module's annotations are strings (PEP 563); Typer needs the real Annotated
        hints = get_type_hints(fn, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name]) for p in inspect.signature(fn).parameters.values()
        ]

        @functools.wraps(fn)
        def command(**given: Any) -> None:
            common = {k: given.pop(k, None) for k in _COMMON}
            debug = bool(common["debug"])
            try:
                fmt = resolve_format(common["output"])
                run = fn(**given)
                creds = resolve_credentials(
                    common["api_key"], common["base_url"], common["connection"], os.environ
                )

                async def go() -> Any:
                    async with AsyncClient(**creds.client_kwargs()) as client:
                        return await run(client)

                with _debug_logging(debug):
                    result = asyncio.run(go())
                if isinstance(result, NamedPerformance) and fmt == "table":
                    _performance_table(result)
                    return
                as_json = getattr(result, "as_json", None)
                emit(as_json() if callable(as_json) else result, fmt)
            except KbridgeError as exc:
                fail(describe_error(exc, action=name, debug=debug))

        params = own + common_options(listing=False)
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _when(text: str) -> datetime | None:
    """``now`` → None, else an ISO 8601 datetime with an offset."""
    if text.strip().lower() == "now":
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("send_at", f"{text!r} is not ISO 8601 (or 'now')") from None
    if value.tzinfo is None:
        raise ValidationError("send_at", "give a timezone, e.g. 2026-12-24T09:00:00Z")
    return value


def _read(path: Path, what: str) -> str:
    return read_text_file(path, what)


def _json_arg(text: str, what: str) -> Any:
    """Inline JSON, ``@file.json``, or a path to a JSON file."""
    source = text
    if text.startswith("@"):
        source = _read(Path(text[1:]), what)
    elif not text.lstrip().startswith(("{", "[")) and Path(text).is_file():
        source = _read(Path(text), what)
    try:
        return loads(source)
    except JSONDecodeError:
        raise ValidationError(what, "is not valid JSON") from None


def _utm(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ValidationError("utm", f"{pair!r}: write NAME=VALUE, e.g. utm_source=kbridge")
        out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class NamedPerformance:
    """A performance report and its campaigns' names (the report itself has only ids)."""

    report: PerformanceReport
    names: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        doc = self.report.as_json()
        for row in doc["campaigns"]:
            row["campaign_name"] = self.names.get(row["campaign_id"], "")
        return doc


async def _campaign_names(client: AsyncClient, ids: Iterable[str]) -> dict[str, str]:
    """Each campaign's name ('' for one deleted since it was sent)."""

    async def one(campaign_id: str) -> tuple[str, str]:
        try:
            found = await client.campaigns.get_campaign(campaign_id, fields={"campaign": ["name"]})
        except NotFoundError:
            return campaign_id, ""
        return campaign_id, str(found.attributes.get("name") or "")

    return dict(await asyncio.gather(*(one(i) for i in dict.fromkeys(ids) if i)))


def _performance_table(named: NamedPerformance) -> None:
    report = named.report
    table = Table(
        "campaign",
        "name",
        "message",
        "recipients",
        "opens",
        "open rate",
        "clicks",
        "click rate",
        "conversions",
        "revenue",
        "unsubscribes",
        title=f"{report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC, "
        f"conversions: {report.conversion_metric}",
    )
    # ids are what people copy: never cut off
    for column, ids in (
        (table.columns[0], [r.campaign_id for r in report.rows]),
        (table.columns[2], [r.campaign_message_id for r in report.rows]),
    ):
        column.overflow = "fold"
        column.min_width = max(map(len, ids), default=8)
    for r in report.rows:
        table.add_row(
            r.campaign_id,
            named.names.get(r.campaign_id, ""),
            r.campaign_message_id,
            str(r.get("recipients")),
            str(r.get("opens")),
            f"{float(r.get('open_rate')):.1%}",
            str(r.get("clicks")),
            f"{float(r.get('click_rate')):.1%}",
            str(r.get("conversions")),
            f"{float(r.get('conversion_value')):.2f}",
            str(r.get("unsubscribes")),
        )
    Console(highlight=False, soft_wrap=True).print(table)


# -- campaigns ----------------------------------------------------------------------------


def publish_cmd(
    name: Annotated[str, typer.Option("--name", help="the campaign's name")],
    list_id: Annotated[list[str], typer.Option("--list", help="list id to send to (repeatable)")],
    subject: Annotated[str, typer.Option("--subject")],
    from_email: Annotated[str, typer.Option("--from-email", help="a verified sender address")],
    from_label: Annotated[str, typer.Option("--from-label", help="the sender's name")],
    send_at: Annotated[str, typer.Option("--send-at", help="ISO 8601 with a timezone, or 'now'")],
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="segment id to send to (repeatable)")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="list/segment id to leave out")
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="an existing template's id")
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html-file", help="HTML for a new CODE template")
    ] = None,
    preview_text: Annotated[str | None, typer.Option("--preview-text")] = None,
    local_time: Annotated[
        bool, typer.Option("--local-time", help="send at that time in each recipient's timezone")
    ] = False,
    smart_sending: Annotated[
        bool, typer.Option("--smart-sending/--no-smart-sending", help="skip recent recipients")
    ] = True,
    track_opens: Annotated[bool, typer.Option("--track-opens/--no-track-opens")] = True,
    track_clicks: Annotated[bool, typer.Option("--track-clicks/--no-track-clicks")] = True,
    utm: Annotated[
        list[str] | None,
        typer.Option("--utm", help="UTM parameter NAME=VALUE on links (repeatable)"),
    ] = None,
) -> Run:
    """Create, fill and schedule an email campaign; prints its id and status."""
    if (template is None) == (html_file is None):
        raise ValidationError("template", "give exactly one of --template ID or --html-file F")
    request = PublishRequest(
        name=name,
        included=[*list_id, *(segment or ())],
        excluded=list(exclude or ()),
        subject=subject,
        from_email=from_email,
        from_label=from_label,
        preview_text=preview_text,
        template_id=template,
        html=_read(html_file, "html_file") if html_file is not None else None,
        send_at=_when(send_at),
        local_time=local_time,
        smart_sending=smart_sending,
        track_opens=track_opens,
        track_clicks=track_clicks,
        utm=_utm(utm),
    )
    return lambda client: publish(client, request, clock=SystemClock())


def schedule_cmd(
    campaign_id: Annotated[str, typer.Argument(help="a Draft campaign (e.g. after revert)")],
    send_at: Annotated[
        str | None, typer.Option("--send-at", help="a new time (ISO 8601), or 'now'")
    ] = None,
) -> Run:
    """Publish a Draft campaign again, at its own or a new send time."""
    when = _when(send_at) if send_at is not None else None
    return lambda client: schedule(client, campaign_id, send_at=when, clock=SystemClock())


def cancel_cmd(campaign_id: Annotated[str, typer.Argument(help="the campaign id")]) -> Run:
    """Cancel a scheduled or sending campaign for good."""
    return lambda client: cancel(client, campaign_id)


def revert_cmd(campaign_id: Annotated[str, typer.Argument(help="the campaign id")]) -> Run:
    """Put a scheduled campaign back to Draft."""
    return lambda client: revert(client, campaign_id)


def status_cmd(campaign_id: Annotated[str, typer.Argument(help="the campaign id")]) -> Run:
    """A campaign's status (and what to fix when Klaviyo cancelled it)."""
    return lambda client: campaign_status(client, campaign_id)


def performance_cmd(
    campaign_ids: Annotated[
        list[str] | None, typer.Argument(help="campaign ids (default: every campaign)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="window start, ISO 8601 (default: 30 days ago)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="window end, ISO 8601 (default: a day from now)")
    ] = None,
    conversion_metric: Annotated[
        str, typer.Option("--conversion-metric", help="the metric that counts as a conversion")
    ] = "Placed Order",
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            envvar=WAREHOUSE_ENV,
            help=f"also save into this warehouse (else ${WAREHOUSE_ENV}, if set): "
            f"{WAREHOUSE_URL_HELP}",
        ),
    ] = None,
) -> Run:
    """Recipients, opens, clicks, conversions, revenue and unsubscribes per campaign."""
    start = _when(since) if since is not None else None
    end = _when(until) if until is not None else None
    clock = SystemClock()

    async def run(client: AsyncClient) -> NamedPerformance:
        report = await campaign_performance(
            client,
            campaign_ids or (),
            since=start,
            until=end,
            conversion_metric=conversion_metric,
            clock=clock,
        )
        if to:
            await asyncio.to_thread(_save, to, report, clock.now())
        names = await _campaign_names(client, (r.campaign_id for r in report.rows))
        return NamedPerformance(report, names)

    return run


def _save(url: str, report: PerformanceReport, fetched_at: datetime) -> None:
    try:
        warehouse = open_warehouse(url)
    except KbridgeError as exc:
        raise KbridgeError(with_hint(f"--to: {exc}", url)) from None
    try:
        written = save_performance(warehouse, report, fetched_at=fetched_at)
    finally:
        warehouse.close()
    Console(stderr=True, highlight=False).print(
        f"saved {written} row(s) to campaign_performance", markup=False
    )


# -- templates ----------------------------------------------------------------------------


def push_cmd(
    html_file: Annotated[Path, typer.Argument(help="the template's HTML")],
    text: Annotated[Path | None, typer.Option("--text", help="the plain-text version")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="template name (default: the file's stem)")
    ] = None,
) -> Run:
    """Create or update a CODE template by name (pushing the same file twice changes nothing)."""
    html = _read(html_file, "html_file")
    plain = _read(text, "text") if text is not None else None
    chosen = name or html_file.stem
    return lambda client: push_template(client, name=chosen, html=html, text=plain)


def render_cmd(
    template_id: Annotated[str, typer.Argument(help="the template id")],
    context: Annotated[
        str | None,
        typer.Option("--context", help="ctx.json, @ctx.json or inline JSON (an object)"),
    ] = None,
) -> Run:
    """Render a template with a context (what Klaviyo would send)."""
    values = _json_arg(context, "context") if context is not None else {}
    if not isinstance(values, Mapping):
        raise ValidationError("context", "must be a JSON object")
    return lambda client: render_template(client, template_id, values)


# -- flows --------------------------------------------------------------------------------


def flow_create_cmd(
    source: Annotated[
        Path | None, typer.Option("--from", help="a flow definition file (see docs/publishing.md)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="with --definition")] = None,
    definition: Annotated[
        str | None, typer.Option("--definition", help="Klaviyo's definition: JSON or @file")
    ] = None,
) -> Run:
    """Create a draft flow from a definition file (or --name and --definition)."""
    if (source is None) == (definition is None):
        raise ValidationError("from", "give --from FILE, or --name with --definition")
    if source is not None:
        spec = _json_arg(str(source), "from") if source.is_file() else None
        if spec is None:
            raise ValidationError("from", f"cannot read {source}")
    else:
        spec = {"name": name, "definition": _json_arg(str(definition), "definition")}
    if not isinstance(spec, Mapping):
        raise ValidationError("from", "the definition file must hold a JSON object")
    return lambda client: create_flow(client, spec)


def flow_status_cmd(
    flow_id: Annotated[str, typer.Argument(help="the flow id")],
    status: Annotated[str, typer.Argument(help="live, draft or manual")],
) -> Run:
    """Set a flow (and all its actions) live, draft or manual."""
    return lambda client: set_flow_status(client, flow_id, status)


def flow_preview_cmd(
    flow_id: Annotated[str, typer.Argument(help="the flow id")],
    to: Annotated[str, typer.Option("--to", help="the test profile's email")],
    event: Annotated[
        str | None,
        typer.Option("--event", help="event id to render for (default: the latest trigger event)"),
    ] = None,
) -> Run:
    """Send the flow's first email, rendered for an event, to a test profile (as a campaign)."""
    return lambda client: preview_flow(client, flow_id, to=to, event_id=event, clock=SystemClock())


_COMMANDS: dict[str, list[tuple[str, Callable[..., Run], tuple[str, ...]]]] = {
    "campaigns": [
        ("publish", publish_cmd, PUBLISH_OPERATIONS),
        ("schedule", schedule_cmd, SCHEDULE_OPERATIONS),
        ("cancel", cancel_cmd, CAMPAIGN_CONTROL.operations),
        ("revert", revert_cmd, CAMPAIGN_CONTROL.operations),
        ("status", status_cmd, ("get_campaign",)),
        ("performance", performance_cmd, (*PERFORMANCE_OPERATIONS, "get_campaign")),
    ],
    "templates": [
        ("push", push_cmd, TEMPLATE_PUSH.operations),
        ("render", render_cmd, TEMPLATE_RENDER.operations),
    ],
    "flows": [
        ("create", flow_create_cmd, FLOW_CREATE.operations),
        ("status", flow_status_cmd, FLOW_STATUS.operations),
        ("preview", flow_preview_cmd, PREVIEW_OPERATIONS),
    ],
}


def register(groups: Mapping[str, typer.Typer]) -> None:
    """Add the workflow commands to the action groups (``campaigns``, ``templates``, ``flows``)."""
    for group_name, commands in _COMMANDS.items():
        group = groups[group_name]
        for name, fn, operations in commands:
            command = _workflow(f"{group_name} {name}")(fn)
            # like the generated actions: say which scopes a key needs before it is tried
            text = f"{fn.__doc__}\n\nNeeds scopes {' '.join(scopes_for(operations))}."
            group.command(name, help=text)(command)
