"""``kbridge push …``: warehouse rows back to Klaviyo in bulk (see docs/push.md).

Thin: read the source through the warehouse (checked before any request), call
:func:`kbridge.push.push_profiles`, print one progress line per job on stderr
and the counts (``--json``: one JSON object on stdout). Heavy imports happen
inside the command so that ``kbridge --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

__all__ = ["app"]

DEFAULT_SOURCE = "duckdb:///./kbridge.duckdb"

app = typer.Typer(
    help="Push warehouse rows back to Klaviyo in bulk: changed rows only, resumable.",
    no_args_is_help=True,
)


@app.command("profiles")
def profiles(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="the DuckDB warehouse holding the rows and the push state "
            "(duckdb:///kbridge.duckdb)",
        ),
    ] = DEFAULT_SOURCE,
    query: Annotated[str | None, typer.Option("--query", help="SQL giving the rows")] = None,
    table: Annotated[str | None, typer.Option("--table", help="a table of the rows")] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="a .csv, .parquet or .jsonl file of the rows")
    ] = None,
    id_column: Annotated[
        str,
        typer.Option("--id-column", help="the identity column: email, phone_number or external_id"),
    ] = "email",
    properties: Annotated[
        str | None,
        typer.Option("--properties", help="the columns to send, comma-separated"),
    ] = None,
    all_columns: Annotated[
        bool, typer.Option("--all-columns", help="send every column but the identity")
    ] = False,
    list_id: Annotated[
        str | None, typer.Option("--list", help="also add the profiles to this list (its id)")
    ] = None,
    job_profiles: Annotated[
        int,
        typer.Option(
            "--job-profiles", min=1, max=10_000, help="profiles per import job (at most 10,000)"
        ),
    ] = 10_000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be sent; send nothing")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="send every row, changed or not")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON summary")] = False,
    rate_limits: Annotated[
        str,
        typer.Option(
            help="the limits this client paces itself to: spec, a FACTOR such as 0.5, or off"
        ),
    ] = "spec",
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="private key (else KLAVIYO_API_KEY)")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API host (else KLAVIYO_BASE_URL)")
    ] = None,
    connection: Annotated[
        str | None, typer.Option("--connection", help="a saved connection's name")
    ] = None,
) -> None:
    """Create or update profiles from warehouse rows through bulk import jobs (changed rows
    only; --full resends all), optionally adding them to a list."""
    import asyncio

    from kbridge.api import AsyncClient, ClientConfig
    from kbridge.cli.credentials import resolve_credentials
    from kbridge.cli.output import describe_error, fail
    from kbridge.cli.sync import parse_rate_limits
    from kbridge.cli.warehouse_url import with_hint
    from kbridge.core import KbridgeError, dumps_str
    from kbridge.push import IDENTITY_COLUMNS, JobLimits, PushInputError, push_profiles, read_source
    from kbridge.warehouse import duckdb_path, open_warehouse

    if id_column not in IDENTITY_COLUMNS:
        fail(f"--id-column must be one of {', '.join(IDENTITY_COLUMNS)}, not {id_column!r}")
    if properties is not None and all_columns:
        fail("give --properties or --all-columns, not both")
    if properties is None and not all_columns:
        fail("name the columns to send with --properties a,b (or send all with --all-columns)")
    wanted = [p.strip() for p in properties.split(",") if p.strip()] if properties else None
    if properties is not None and not wanted:
        fail("--properties names no column")
    path = duckdb_path(source)
    if path is None:
        fail(f"--from: push reads rows through DuckDB: give duckdb:///FILE, not {source!r}")
    if file is None and path != ":memory:" and not os.path.exists(path):
        fail(with_hint(f"--from: {path} does not exist", source))

    def progress(job_id: str | None, rows: int) -> None:
        print(f"job {job_id or '-'}: {rows} profiles submitted", file=sys.stderr, flush=True)

    try:
        config = ClientConfig(limiter=parse_rate_limits(rate_limits))
        warehouse = open_warehouse(source)
        try:
            rows = read_source(warehouse, query=query, table=table, file=file)
            rows.check(id_column, wanted)
            creds = resolve_credentials(api_key, base_url, connection, os.environ)

            async def run() -> dict[str, int]:
                async with AsyncClient(**creds.client_kwargs(), config=config) as client:
                    summary = await push_profiles(
                        client,
                        rows,
                        warehouse=warehouse,
                        id_column=id_column,
                        properties=wanted,
                        list_id=list_id,
                        full=full,
                        dry_run=dry_run,
                        limits=JobLimits(max_rows=job_profiles),
                        on_job=progress,
                    )
                return summary.as_dict()

            counts = asyncio.run(run())
        finally:
            warehouse.close()
    except PushInputError as exc:
        fail(str(exc))
    except KbridgeError as exc:
        fail(describe_error(exc, action="push profiles"))
    if as_json:
        print(dumps_str(counts))
        return
    what = "would send" if dry_run else "sent"
    print(
        f"{counts['rows']} rows: {what} {counts['sent']} in {counts['jobs']} jobs, "
        f"{counts['unchanged']} unchanged, {counts['errors']} refused"
        + (" (see the push_errors table)" if counts["errors"] and not dry_run else "")
    )
