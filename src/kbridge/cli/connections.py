"""``kbridge connect``, ``kbridge connections list|show|test``, ``kbridge disconnect``,
``kbridge scopes --for …``: saved, verified, encrypted connections.

This module is where the environment is read for connections:
``KBRIDGE_HOME`` (where the store lives; default: the user data directory),
``KBRIDGE_MASTER_KEY`` (32 bytes as 64 hex digits or base64; default: a
0600 key file beside the store), ``KLAVIYO_API_KEY`` and ``KLAVIYO_BASE_URL``.
Other commands take ``--connection NAME`` through :func:`credentials_for`.
"""

from __future__ import annotations

import asyncio
import os
import webbrowser
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import platformdirs
import typer
from rich.console import Console
from rich.table import Table

from kbridge.api import DEFAULT_BASE_URL
from kbridge.api.errors import AuthenticationError, PermissionDeniedError
from kbridge.cli.output import fail, resolve_format
from kbridge.connections import (
    CAPABILITY_SUMMARIES,
    DEFAULT_PROBED,
    MASTER_KEY_ENV,
    STORE_FILE_NAME,
    ConnectionCredentials,
    ConnectionRecord,
    ConnectionStore,
    OAuthClient,
    ProbeReport,
    check_connection,
    connect_with_key,
    connect_with_oauth,
    disconnect,
    explain_permission_error,
    open_credentials,
    parse_capabilities,
    parse_master_key,
    plan_scopes,
    same_account_warning,
)
from kbridge.core.jsoncodec import dumps

__all__ = [
    "app",
    "connect",
    "credentials_for",
    "disconnect_cmd",
    "scopes",
    "store_from_env",
]

console = Console(highlight=False, soft_wrap=True)
app = typer.Typer(help="Saved Klaviyo connections: list, show, test.", no_args_is_help=True)
HOME_ENV = "KBRIDGE_HOME"


def store_path(env: Mapping[str, str] | None = None) -> Path:
    """``$KBRIDGE_HOME/connections.sqlite3``, else the user data directory's."""
    env = os.environ if env is None else env
    home = env.get(HOME_ENV) or platformdirs.user_data_dir("kbridge")
    return Path(home).expanduser() / STORE_FILE_NAME


def store_from_env(env: Mapping[str, str] | None = None) -> ConnectionStore:
    """The connection store the environment points at (``KBRIDGE_HOME``, ``KBRIDGE_MASTER_KEY``)."""
    env = os.environ if env is None else env
    raw_key = env.get(MASTER_KEY_ENV)
    master_key = parse_master_key(raw_key) if raw_key else None
    return ConnectionStore(store_path(env), master_key=master_key)


def credentials_for(name: str, env: Mapping[str, str] | None = None) -> ConnectionCredentials:
    """The saved connection ``name``'s credentials (what ``--connection NAME`` resolves to)."""
    return open_credentials(name, store=store_from_env(env))


def _run(coro: Any, capability: str | None = None) -> Any:
    """Run a coroutine; API refusals become one clear line (403s name scope and capability)."""
    try:
        return asyncio.run(coro)
    except PermissionDeniedError as err:
        fail(explain_permission_error(err, capability))
    except AuthenticationError as err:
        fail(f"Klaviyo rejected the credential ({err}); check the key or reconnect")


def _capabilities(text: str | None) -> tuple[str, ...]:
    return parse_capabilities(text) if text else DEFAULT_PROBED


def _print_report(report: ProbeReport) -> None:
    for status in report.capabilities:
        if status.ok:
            console.print(f"  ✓ {status.capability}")
            continue
        parts = []
        if status.missing:
            parts.append(f"missing {', '.join(status.missing)}")
        if status.unknown:
            parts.append(f"could not check {', '.join(status.unknown)}")
        console.print(f"  ✗ {status.capability}: {'; '.join(parts)}")


def _record_dict(record: ConnectionRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "id": record.id,
        "kind": record.kind,
        "base_url": record.base_url,
        "account_id": record.account_id,
        "account_name": record.account_name,
        "sender_name": record.sender.name,
        "sender_email": record.sender.email,
        "connected_at": record.connected_at.isoformat(),
        "rotated_at": record.rotated_at.isoformat() if record.rotated_at else None,
        "capabilities": list(record.capabilities),
        "scopes": list(record.scopes),
        "oauth_client_id": record.oauth.client_id if record.oauth else None,
    }


def connect(
    name: Annotated[str, typer.Argument(help="a name for this connection")] = "default",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="KLAVIYO_API_KEY",
            help="a private API key (pk_…); also read from KLAVIYO_API_KEY",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str, typer.Option(envvar="KLAVIYO_BASE_URL", help="API base URL (the emulator's in tests)")
    ] = DEFAULT_BASE_URL,
    oauth: Annotated[bool, typer.Option("--oauth", help="connect with OAuth instead")] = False,
    client_id: Annotated[str | None, typer.Option(help="OAuth client id")] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="KBRIDGE_OAUTH_CLIENT_SECRET", help="OAuth client secret"),
    ] = None,
    oauth_base_url: Annotated[
        str | None,
        typer.Option(help="where /oauth/authorize|token|revoke live (default: Klaviyo's)"),
    ] = None,
    scopes_opt: Annotated[
        str | None, typer.Option("--scopes", help="OAuth scopes, comma- or space-separated")
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option("--for", help="capabilities to ask scopes for / to probe (comma-separated)"),
    ] = None,
    redirect_port: Annotated[
        int,
        typer.Option(
            help="port of the loopback redirect http://127.0.0.1:PORT/callback registered "
            "with the OAuth app (0: any free port)"
        ),
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="print the authorize URL, do not open it")
    ] = False,
) -> None:
    """Verify a key (or run OAuth) and save the connection; an existing NAME is rotated in place."""
    store = store_from_env()
    capabilities = _capabilities(for_)
    if oauth:
        if not client_id or not client_secret:
            fail("--oauth needs --client-id and --client-secret (or KBRIDGE_OAUTH_CLIENT_SECRET)")
        if scopes_opt:
            wanted = tuple(sorted(set(scopes_opt.replace(",", " ").split())))
        else:
            wanted = plan_scopes(("connect", *capabilities)).scopes
        endpoints = oauth_base_url or (None if base_url == DEFAULT_BASE_URL else base_url)
        oauth_client = (
            OAuthClient.at(endpoints, client_id, client_secret)
            if endpoints
            else OAuthClient(client_id, client_secret)
        )

        if redirect_port == 0 and endpoints is None:
            console.print(
                "note: Klaviyo only redirects to URIs registered with the app; register "
                "http://127.0.0.1:PORT/callback and pass --redirect-port PORT",
                markup=False,
            )

        def show(url: str) -> None:
            console.print(f"Open this URL to authorise kbridge:\n  {url}")
            if not no_browser:
                webbrowser.open(url)

        result = _run(
            connect_with_oauth(
                store,
                name,
                oauth_client,
                scopes=wanted,
                open_url=show,
                redirect_port=redirect_port,
                base_url=base_url,
                capabilities=capabilities,
            )
        )
    else:
        if not api_key:
            fail("give --api-key pk_… (or set KLAVIYO_API_KEY), or use --oauth")
        result = _run(
            connect_with_key(store, name, api_key, base_url=base_url, capabilities=capabilities)
        )
    record = result.record
    verb = "rotated" if result.rotated else "connected"
    console.print(
        f"{verb} {record.name!r}: account {record.account_id} "
        f"({record.account_name or 'unnamed'}) at {record.base_url}"
    )
    warning = same_account_warning(record, result.same_account)
    if warning is not None:
        Console(stderr=True, highlight=False, soft_wrap=True).print(warning, markup=False)
    _print_report(result.report)


OutputOption = Annotated[
    str | None,
    typer.Option("--output", "-o", help="table or json (default: table on a terminal)"),
]
#: ``--json`` is what these commands took before ``-o json``; kept, out of the help
JsonAliasOption = Annotated[bool, typer.Option("--json", hidden=True, help="same as -o json")]


def _wants_json(output: str | None, as_json: bool) -> bool:
    if as_json:
        return True
    fmt = resolve_format(output)
    if fmt == "jsonl":
        fail("--output: connections print table or json")
    return fmt == "json"


@app.command("list")
def list_cmd(output: OutputOption = None, as_json: JsonAliasOption = False) -> None:
    """List saved connections."""
    records = store_from_env().list()
    if _wants_json(output, as_json):
        console.print(dumps([_record_dict(r) for r in records]).decode(), markup=False)
        return
    if not records:
        console.print("no connections yet: `kbridge connect NAME --api-key pk_…`")
        return
    table = Table("name", "kind")
    table.add_column("account", no_wrap=True, overflow="fold")  # ids are what people copy
    for header in ("base URL", "capabilities", "connected"):
        table.add_column(header)
    for r in records:
        table.add_row(
            r.name,
            r.kind,
            f"{r.account_id} ({r.account_name or '-'})",
            r.base_url,
            ", ".join(r.capabilities),
            r.connected_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="connection name")],
    output: OutputOption = None,
    as_json: JsonAliasOption = False,
) -> None:
    """Show one connection (never its secrets)."""
    data = _record_dict(store_from_env().get(name))
    if _wants_json(output, as_json):
        console.print(dumps(data).decode(), markup=False)
        return
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        console.print(f"{key:<16} {shown if shown not in (None, '') else '-'}", markup=False)


@app.command("test")
def probe_cmd(
    name: Annotated[str, typer.Argument(help="connection name")],
    for_: Annotated[
        str | None, typer.Option("--for", help="capabilities to probe (default: all fixed ones)")
    ] = None,
) -> None:
    """Probe which capabilities the connection can serve; exit 1 if any lacks scopes."""
    store = store_from_env()
    report: ProbeReport = _run(check_connection(store, name, capabilities=_capabilities(for_)))
    console.print(f"{name}: scopes granted: {', '.join(report.granted) or 'none'}")
    _print_report(report)
    lacking = [status.capability for status in report.capabilities if not status.ok]
    if lacking:
        console.print(
            "add the missing scopes to the key in Klaviyo (Settings → API keys); "
            f"`kbridge scopes --for {','.join(lacking)}` says why each is needed",
            markup=False,
        )
        raise typer.Exit(1)


def disconnect_cmd(
    name: Annotated[str, typer.Argument(help="connection name")],
    force: Annotated[
        bool, typer.Option("--force", help="forget it even if revoking OAuth tokens fails")
    ] = False,
) -> None:
    """Forget a connection's secrets (OAuth tokens are revoked first)."""
    record = _run(disconnect(store_from_env(), name, force=force))
    console.print(f"disconnected {name!r} (account {record.account_id})")
    if record.kind == "api_key":
        console.print(
            "the private key itself is still valid: delete it in Klaviyo (Settings → API keys) "
            "if nothing else uses it"
        )


def scopes(
    for_: Annotated[str, typer.Option("--for", help="capabilities, comma-separated")],
) -> None:
    """The least scopes for the capabilities, one line each saying why."""
    plan = plan_scopes(parse_capabilities(for_))
    for cap in plan.capabilities:
        summary = CAPABILITY_SUMMARIES.get(cap)
        if summary is None and cap.startswith("actions:"):
            summary = f"the `kbridge {cap.removeprefix('actions:')} …` actions"
        if summary:
            console.print(f"# {cap}: {summary}", markup=False)
    if not plan.needs:
        console.print("no scopes needed (these capabilities make no API calls)")
        return
    width = max(len(need.scope) for need in plan.needs)
    for need in plan.needs:
        console.print(f"{need.scope:<{width}}  {need.reason()}", markup=False)
