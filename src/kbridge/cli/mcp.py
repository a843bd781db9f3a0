"""``kbridge mcp``: kbridge's actions, workflows and warehouse as MCP tools for AI assistants.

Thin by design: credentials are resolved as every command resolves them
(:func:`~kbridge.cli.credentials.resolve_credentials`, once per ``--connection``),
the privacy audit log is the connection store, the default warehouse is the one
``kbridge config`` saved; :mod:`kbridge.agent` does the rest. Imported only when
``kbridge mcp`` runs, so the ``mcp`` SDK never slows ``kbridge --help``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from kbridge.cli.warehouse_url import WAREHOUSE_URL_HELP

__all__ = ["mcp"]

DEFAULT_PORT = 8766


def mcp(
    connection: Annotated[
        list[str] | None,
        typer.Option(
            "--connection",
            metavar="NAME",
            help="a saved connection (repeatable: then every tool takes `connection`)",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="private key (else KLAVIYO_API_KEY)")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API host (else KLAVIYO_BASE_URL)")
    ] = None,
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (an MCP client starts us) or http")
    ] = "stdio",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="HTTP port on 127.0.0.1")
    ] = DEFAULT_PORT,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="offer no tool that writes (hidden, and refused)")
    ] = False,
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse",
            metavar="URL",
            help=f"synced warehouse for the SQL and analytics tools, opened read-only: "
            f"{WAREHOUSE_URL_HELP} (default: the configured one, else ./kbridge.duckdb "
            "if it exists)",
        ),
    ] = None,
    query_timeout: Annotated[
        float, typer.Option("--query-timeout", min=0.1, help="seconds a warehouse query may run")
    ] = 10.0,
) -> None:
    """Serve the actions, workflows and warehouse to AI assistants as MCP tools.

    Add it to an MCP client as the command `kbridge mcp` (stdio), or run
    `kbridge mcp --transport http` and point the client at
    http://127.0.0.1:8766/mcp. See docs/mcp.md.
    """
    import anyio

    from kbridge.agent import AccountConfig, AgentConfig, serve_http, serve_stdio
    from kbridge.cli.config import default_warehouse
    from kbridge.cli.connections import store_from_env
    from kbridge.cli.credentials import resolve_credentials
    from kbridge.cli.output import fail
    from kbridge.core import KbridgeError

    if transport not in ("stdio", "http"):
        fail(f"--transport: {transport!r} is not stdio or http")
    env = os.environ
    try:
        names: list[str | None] = list(dict.fromkeys(connection or [])) or [None]
        if len(names) > 1 and api_key:
            fail("give --api-key or --connection NAME…, not both")
        accounts, secrets = [], []
        for name in names:
            creds = resolve_credentials(api_key, base_url, name, env)
            accounts.append(AccountConfig(name or "default", creds.client_kwargs()))
            if creds.api_key:
                secrets.append(creds.api_key)
        config = AgentConfig(
            accounts=accounts,
            read_only=read_only,
            warehouse_url=warehouse or _default_warehouse(default_warehouse(env)),
            query_timeout=query_timeout,
            audit=store_from_env(env),
            secrets=tuple(secrets),
        )
        if transport == "http":
            anyio.run(lambda: serve_http(config, port=port))
        else:
            anyio.run(serve_stdio, config)
    except KbridgeError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot serve MCP: {exc.strerror or exc}")
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _default_warehouse(configured: str | None) -> str | None:
    if configured:
        return configured
    return "duckdb:///kbridge.duckdb" if Path("kbridge.duckdb").exists() else None
