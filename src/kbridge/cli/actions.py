"""``kbridge <resource> <action> …``: commands generated from the action registry.

Nothing here knows a particular action: each :class:`~kbridge.api.actions.Action`
becomes a Typer command whose options are its parameters, plus the shared
credentials/output options. So the CLI, the library and (later) the web UI
can never disagree about what an action takes.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kbridge.cli._actions_snapshot import ACTIONS
from kbridge.cli._actionspec import ActionSpec, ParamSpec
from kbridge.cli._coercion import FastCommand, FastGroup

if TYPE_CHECKING:
    from kbridge.api.actions import Action, Param
    from kbridge.cli.output import OutputFormat

# The client, the registry and rich are imported when a command runs, not when it is
# built: `kbridge profiles list --help` needs none of them (see cli/_actionspec.py).

__all__ = ["RESOURCE_HELP", "build_command", "common_options", "register"]

RESOURCE_HELP = {
    "accounts": "The Klaviyo account behind the key.",
    "profiles": "People: create, read, list, update.",
    "lists": "Static lists and their members.",
    "segments": "Rule-based audiences.",
    "metrics": "Kinds of event the account records.",
    "events": "Record and read events.",
    "campaigns": "Campaigns, their messages and send jobs.",
    "templates": "Email templates: create, render, clone.",
    "images": "The image library.",
    "flows": "Automated flows.",
    "tags": "Tags for campaigns, flows, lists and segments.",
    "subscriptions": "Marketing consent (email, SMS).",
    "reporting": "Campaign and flow performance values.",
    "data-privacy": "Deletion requests.",
    "catalog-items": "The product catalogue: items, and bulk import from CSV/JSON.",
    "coupons": "Coupons and their unique codes.",
}

_COMMON = ("api_key", "base_url", "connection", "debug", "output", "limit")

_PY_TYPES: dict[str, Any] = {
    "int": int | None,
    "float": float | None,
    "bool": bool | None,
    "strs": list[str] | None,
}


def common_options(*, listing: bool) -> list[inspect.Parameter]:
    """The options every action command takes (credentials, output, debug)."""
    kw = inspect.Parameter.KEYWORD_ONLY
    opts = [
        inspect.Parameter(
            "api_key",
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option("--api-key", help="private key (else KLAVIYO_API_KEY)"),
            ],
        ),
        inspect.Parameter(
            "base_url",
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option("--base-url", help="API host (else KLAVIYO_BASE_URL)"),
            ],
        ),
        inspect.Parameter(
            "connection",
            kw,
            default=None,
            annotation=Annotated[
                str | None, typer.Option("--connection", help="a saved connection's name")
            ],
        ),
        inspect.Parameter(
            "output",
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    "--output", "-o", help="table, json or jsonl (default: table on a terminal)"
                ),
            ],
        ),
        inspect.Parameter(
            "debug",
            kw,
            default=False,
            annotation=Annotated[
                bool, typer.Option("--debug", help="show request ids and details (never the key)")
            ],
        ),
    ]
    if listing:
        opts.append(
            inspect.Parameter(
                "limit",
                kw,
                default=None,
                annotation=Annotated[
                    int | None, typer.Option("--limit", min=1, help="stop after this many")
                ],
            )
        )
    return opts


#: how the command line spells a value the service takes as data (its help says what it is)
_HOW = {
    "json": "JSON, or @file.json",
    "json_object": "a JSON object, or @file.json",
    "json_list": "a JSON list, or @file.json",
    "text_file": "read from this file",
    "datetime": "ISO 8601 with an offset",
}


def _parameter(param: Param | ParamSpec) -> inspect.Parameter:
    how = _HOW.get(param.type)
    help_text = f"{param.help} ({how})".strip() if how else param.help
    help_text += f" [{'|'.join(param.choices)}]" if param.choices else ""
    if param.argument:
        return inspect.Parameter(
            param.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help=help_text or None, show_default=False)],
        )
    py_type = _PY_TYPES.get(param.type, str | None)
    decls = [param.cli_flag]
    if param.type == "bool":
        decls = [f"{param.cli_flag}/--no-{param.cli_flag[2:]}"]
    label = " (required)" if param.required else ""
    return inspect.Parameter(
        param.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            py_type, typer.Option(*decls, help=(help_text + label).strip() or None)
        ],
    )


def build_command(action: Action | ActionSpec) -> Callable[..., None]:
    """A Typer-ready function for ``action`` (its signature is built from the registry).

    Given the registry's snapshot (an :class:`ActionSpec`), the command looks the
    real action up when it runs.
    """
    clash = [p.name for p in action.params if p.name in _COMMON]
    if clash:
        raise RuntimeError(f"{action.cli_name}: parameter(s) {clash} clash with common options")

    def command(**given: Any) -> None:
        common = {k: given.pop(k, None) for k in _COMMON}
        run_action(action, given, common)

    positional = [_parameter(p) for p in action.params if p.argument]
    keyword = [_parameter(p) for p in action.params if not p.argument]
    params = positional + keyword + common_options(listing=action.kind == "list")
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = action.summary + (
        f"\n\nUses {', '.join(action.operations)}; needs scopes {' '.join(action.scopes)}."
    )
    command.__name__ = action.cli_name.replace(" ", "_").replace("-", "_")
    return command


def run_action(action: Action | ActionSpec, raw: dict[str, Any], common: dict[str, Any]) -> None:
    """Convert the values, resolve credentials, run the action, print its result."""
    import asyncio

    from kbridge.api.actions import coerce, get
    from kbridge.cli.credentials import resolve_credentials
    from kbridge.cli.output import describe_error, fail, resolve_format
    from kbridge.core.errors import KbridgeError

    debug = bool(common.get("debug"))
    try:
        if isinstance(action, ActionSpec):
            action = get(action.cli_name)
        values = {}
        for p in action.params:
            value = coerce(p, raw.get(p.name))
            values[p.name] = p.default if value is None else value
        fmt = resolve_format(common.get("output"))
        creds = resolve_credentials(
            common.get("api_key"), common.get("base_url"), common.get("connection"), os.environ
        )
        with _debug_logging(debug):
            asyncio.run(_execute(action, values, creds.client_kwargs(), fmt, common.get("limit")))
    except KbridgeError as exc:
        fail(describe_error(exc, action=action.cli_name, debug=debug))


async def _execute(
    action: Action,
    values: dict[str, Any],
    client_kwargs: dict[str, Any],
    fmt: OutputFormat,
    limit: int | None,
) -> None:
    from kbridge.api import AsyncClient
    from kbridge.cli.output import emit, emit_stream

    async with AsyncClient(**client_kwargs) as client:
        if action.kind == "list":
            stream = action.invoke(client, _page_for_limit(action, values, limit))
            assert isinstance(stream, AsyncIterator)
            await emit_stream(stream, fmt, limit=limit)
            return
        with _progress(action, values) as advance:
            call = action.invoke(client, values, progress=advance)
            assert not isinstance(call, AsyncIterator)
            result = await call
        if isinstance(result, int) and not isinstance(result, bool):
            result = {"sent": result}
        if result is None:
            from rich.console import Console

            Console(stderr=True, highlight=False).print(f"done: {action.cli_name}")
            return
        emit(result, fmt)


def _page_for_limit(action: Action, values: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """With ``--limit`` below the page maximum, ask for just that many (one smaller request)."""
    if limit is None or values.get("page_size") is not None:
        return values
    if not any(p.name == "page_size" for p in action.params):
        return values
    maximum = action.catalog_operations[0].max_page_size or limit
    return {**values, "page_size": min(limit, maximum)}


@contextmanager
def _progress(action: Action, values: dict[str, Any]) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for bulk actions, when stderr is a terminal."""
    if action.kind != "bulk" or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(action.cli_name, total=action.bulk_size(values))
        yield lambda n: bar.advance(task, n)


@contextmanager
def _debug_logging(debug: bool) -> Iterator[None]:
    """With ``--debug``, the client's one-line-per-request log (ids, status, timing) on stderr."""
    if not debug:
        yield
        return
    logger = logging.getLogger("kbridge.api")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def register(
    app: typer.Typer,
    *,
    skip: frozenset[str] = frozenset(),
    resources: frozenset[str] | None = None,
) -> dict[str, typer.Typer]:
    """Add one command group per resource, one command per action, to ``app``; the groups.

    Actions named in ``skip`` (``"templates render"``) are left out: a workflow
    command of the same name, added to the returned group, takes their place.
    With ``resources``, only those groups are built (a command needs only its own).
    """
    groups: dict[str, typer.Typer] = {}
    for action in ACTIONS:
        if resources is not None and action.resource not in resources:
            continue
        group = groups.get(action.resource)
        if group is None:
            group = typer.Typer(
                cls=FastGroup, help=RESOURCE_HELP.get(action.resource), no_args_is_help=True
            )
            groups[action.resource] = group
            app.add_typer(group, name=action.resource)
        if action.cli_name in skip:
            continue
        command = build_command(action)
        group.command(action.name, help=command.__doc__, cls=FastCommand)(command)
    return groups
