"""The root Typer app; each command group lives in its own module, imported on first use.

Importing every command module for every command cost most of a second
(the API client, the catalogue, the demo, the action registry) before
``kbridge --help`` printed a line. The root group therefore knows each
command only by name and one line of help (:data:`LAZY_COMMANDS`) and
imports a command's module when that command is run, completed or asked
for its own help. ``tests/unit/cli/test_startup.py`` holds the table to the
real commands' help and checks what ``--help`` imports.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperCommand

from kbridge import __version__
from kbridge.cli._coercion import FastGroup
from kbridge.cli._httpx import defer_httpx_cli
from kbridge.core.errors import KbridgeError

__all__ = ["ACTION_GROUPS", "LAZY_COMMANDS", "LazyGroup", "app", "load_command", "main"]

#: resource groups generated from the action registry (``kbridge.cli.actions``)
ACTION_GROUPS = "kbridge.cli.actions:register"
#: groups that also carry workflow commands from ``kbridge.cli.campaigns``
_WORKFLOW_GROUPS = frozenset({"campaigns", "templates", "flows"})

#: name → (``module:attribute``, the one line ``kbridge --help`` shows), in help order
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "kbridge.cli.demo:demo",
        "Sync a seeded local Klaviyo into DuckDB, check it, analyse it and write the HTML report.",
    ),
    "connect": (
        "kbridge.cli.connections:connect",
        "Verify a key (or run OAuth) and save the connection; an existing NAME is rotated in "
        "place.",
    ),
    "disconnect": (
        "kbridge.cli.connections:disconnect_cmd",
        "Forget a connection's secrets (OAuth tokens are revoked first).",
    ),
    "scopes": (
        "kbridge.cli.connections:scopes",
        "The least scopes for the capabilities, one line each saying why.",
    ),
    "raw": (
        "kbridge.cli.raw:raw",
        "Send any request to the Klaviyo API (paced by the operation's rate limits).",
    ),
    "sync": (
        "kbridge.cli.sync:sync",
        "Sync the Klaviyo account into a warehouse; runs resume where the last one stopped.",
    ),
    "push": (
        "kbridge.cli.push:app",
        "Push warehouse rows back to Klaviyo in bulk: changed rows only, resumable.",
    ),
    "report": (
        "kbridge.cli.report:report",
        "Write every analysis of the synced warehouse into one HTML file that opens offline.",
    ),
    # defined below (cheap): kept here for its place in the help
    "version": ("", "Print kbridge's version and the Klaviyo API revision it speaks."),
    "catalog": (
        "kbridge.cli.catalog:app",
        "Facts about Klaviyo's operations (limits, scopes, filters, page sizes).",
    ),
    "emulator": (
        "kbridge.cli.emulator:app",
        "A local Klaviyo-compatible API server (for tests, demos, benchmarks).",
    ),
    "connections": ("kbridge.cli.connections:app", "Saved Klaviyo connections: list, show, test."),
    "accounts": (ACTION_GROUPS, "The Klaviyo account behind the key."),
    "profiles": (ACTION_GROUPS, "People: create, read, list, update."),
    "lists": (ACTION_GROUPS, "Static lists and their members."),
    "segments": (ACTION_GROUPS, "Rule-based audiences."),
    "metrics": (ACTION_GROUPS, "Kinds of event the account records."),
    "events": (ACTION_GROUPS, "Record and read events."),
    "campaigns": (ACTION_GROUPS, "Campaigns, their messages and send jobs."),
    "templates": (ACTION_GROUPS, "Email templates: create, render, clone."),
    "images": (ACTION_GROUPS, "The image library."),
    "flows": (ACTION_GROUPS, "Automated flows."),
    "tags": (ACTION_GROUPS, "Tags for campaigns, flows, lists and segments."),
    "subscriptions": (ACTION_GROUPS, "Marketing consent (email, SMS)."),
    "reporting": (ACTION_GROUPS, "Campaign and flow performance values."),
    "data-privacy": (ACTION_GROUPS, "Deletion requests."),
    "catalog-items": (
        ACTION_GROUPS,
        "The product catalogue: items, and bulk import from CSV/JSON.",
    ),
    "coupons": (ACTION_GROUPS, "Coupons and their unique codes."),
    "analytics": (
        "kbridge.cli.analytics:app",
        "Analyses of the synced warehouse (run `kbridge sync` first): lifecycle stages, churn "
        "risk, consent, RFM segments, message performance, attribution, top products.",
    ),
    "privacy": (
        "kbridge.cli.privacy:app",
        "Data-subject requests: access reports, confirmed deletions, and their audit log.",
    ),
    "workspaces": (
        "kbridge.cli.admin:workspaces_app",
        "Workspaces of the service: each has its own connections, jobs and tokens.",
    ),
    "tokens": (
        "kbridge.cli.admin:tokens_app",
        "API tokens of the service: each speaks for one workspace.",
    ),
    "users": (
        "kbridge.cli.users:users_app",
        "Dashboard users of the service: each signs in to one workspace with a role.",
    ),
    "mcp": (
        "kbridge.cli.mcp:mcp",
        "Serve the actions, workflows and warehouse to AI assistants as MCP tools.",
    ),
    "jobs": (
        "kbridge.cli.remote:jobs_app",
        "Jobs of a running service (kbridge serve): list, show, start, cancel, retry.",
    ),
    "schedules": (
        "kbridge.cli.remote:schedules_app",
        "Schedules of a running service (kbridge serve): add, list, rm.",
    ),
    "serve": (
        "kbridge.cli.serve:serve",
        "Run the service: the REST API, schedules and background jobs for many accounts.",
    ),
    "worker": (
        "kbridge.cli.worker:worker",
        "Run the service's background jobs (syncs, privacy requests, publishing) from a broker.",
    ),
    "config": (
        "kbridge.cli.config:app",
        "Defaults for every command: a connection and a warehouse (flags and env beat them).",
    ),
}


def _convert(target: Any, name: str) -> Any:
    """The Click command Typer builds for ``target`` (a Typer sub-app or a function)."""
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


def _action_group(name: str) -> Any:
    from kbridge.cli import actions

    skip: frozenset[str] = frozenset()
    resources = frozenset({name})
    if name in _WORKFLOW_GROUPS:
        from kbridge.cli import campaigns

        skip, resources = campaigns.REPLACED, _WORKFLOW_GROUPS
    groups = actions.register(typer.Typer(), skip=skip, resources=resources)
    if name in _WORKFLOW_GROUPS:
        campaigns.register(groups)
    return _convert(groups[name], name)


def load_command(name: str) -> Any:
    """Import the module behind the lazy command ``name`` and build its Click command."""
    target = LAZY_COMMANDS[name][0]
    if target == ACTION_GROUPS:
        return _action_group(name)
    module, _, attribute = target.partition(":")
    return _convert(getattr(import_module(module), attribute), name)


class _Placeholder(TyperCommand):
    """A command known by name and help only; never run (resolving replaces it)."""


class LazyGroup(FastGroup):
    """A root group whose commands are placeholders until one is resolved.

    Help and completion of command *names* read the placeholders (name and
    one line); resolving a command (to run it, complete its options or show
    its own help) swaps in the real one.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        eager = dict(self.commands)
        self.commands = {}
        for name, (target, short_help) in LAZY_COMMANDS.items():
            if not target:
                self.commands[name] = eager.pop(name)
                continue
            self.commands[name] = _Placeholder(name=name, help=short_help)
        self.commands.update(eager)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        placeholder = self.commands.get(name) if name is not None else None
        if isinstance(placeholder, _Placeholder):
            name = placeholder.name or ""
            command = load_command(name)
            # a default warehouse saved with `kbridge config set warehouse` (or
            # KBRIDGE_WAREHOUSE) becomes the default of the command's --from/--to
            from kbridge.cli.config import apply_warehouse_default

            apply_warehouse_default(command, name, os.environ)
            self.commands[name] = command
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="kbridge",
    cls=LazyGroup,
    help="Connect a business to its Klaviyo account: act, sync, publish, analyse — "
    "or run a local Klaviyo emulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


@app.callback()
def _root() -> None:
    # a callback keeps the root a group even though only `version` is registered eagerly
    pass


@app.command()
def version() -> None:
    """Print kbridge's version and the Klaviyo API revision it speaks."""
    from kbridge.catalog import REVISION

    typer.echo(f"kbridge {__version__} (Klaviyo API revision {REVISION})")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: foreseeable problems become one line and a non-zero exit."""
    defer_httpx_cli()
    try:
        app(args=argv, prog_name="kbridge")
    except KbridgeError as exc:
        from kbridge.cli.output import fail

        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
