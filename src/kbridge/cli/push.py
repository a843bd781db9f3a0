"""``kbridge push …``: warehouse rows back to Klaviyo in bulk (see docs/push.md).

Thin: read the source through the warehouse (checked before any request), call
:func:`kbridge.push.push_profiles`, print one progress line per job on stderr
and the counts (``--json``: one JSON object on stdout). Heavy imports happen
inside the command so that ``kbridge --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer

__all__ = ["app"]

DEFAULT_SOURCE = "duckdb:///./kbridge.duckdb"

app = typer.Typer(
    help="Push warehouse rows back to Klaviyo in bulk: changed rows only, resumable.",
    no_args_is_help=True,
)


# -- the options every push shares -------------------------------------------------------------

FromOption = Annotated[
    str,
    typer.Option(
        "--from",
        help="the warehouse holding the rows and the push state: duckdb:///kbridge.duckdb "
        "or postgresql://…",
    ),
]
QueryOption = Annotated[str | None, typer.Option("--query", help="SQL giving the rows")]
TableOption = Annotated[str | None, typer.Option("--table", help="a table of the rows")]
FileOption = Annotated[
    str | None, typer.Option("--file", help="a .csv, .parquet or .jsonl file of the rows")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="count what would be sent; send nothing")
]
FullOption = Annotated[bool, typer.Option("--full", help="send every row, changed or not")]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON summary")]
RateLimitsOption = Annotated[
    str,
    typer.Option(help="the limits this client paces itself to: spec, a FACTOR such as 0.5, or off"),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", help="private key (else KLAVIYO_API_KEY)")
]
BaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", help="API host (else KLAVIYO_BASE_URL)")
]
ConnectionOption = Annotated[
    str | None, typer.Option("--connection", help="a saved connection's name")
]
PropertiesOption = Annotated[
    str | None, typer.Option("--properties", help="the columns to send, comma-separated")
]
AllColumnsOption = Annotated[
    bool, typer.Option("--all-columns", help="send every column not used otherwise")
]


@app.command("profiles")
def profiles(
    source: FromOption = DEFAULT_SOURCE,
    query: QueryOption = None,
    table: TableOption = None,
    file: FileOption = None,
    id_column: Annotated[
        str,
        typer.Option(
            "--id-column",
            help="the identity column: email, phone_number, external_id or id (Klaviyo's)",
        ),
    ] = "email",
    properties: PropertiesOption = None,
    all_columns: AllColumnsOption = False,
    list_id: Annotated[
        str | None, typer.Option("--list", help="also add the profiles to this list (its id)")
    ] = None,
    job_profiles: Annotated[
        int,
        typer.Option(
            "--job-profiles", min=1, max=10_000, help="profiles per import job (at most 10,000)"
        ),
    ] = 10_000,
    dry_run: DryRunOption = False,
    full: FullOption = False,
    as_json: JsonOption = False,
    rate_limits: RateLimitsOption = "spec",
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
    connection: ConnectionOption = None,
) -> None:
    """Create or update profiles from warehouse rows through bulk import jobs (changed rows
    only; --full resends all), optionally adding them to a list."""
    from kbridge.push import IDENTITY_COLUMNS, JobLimits, push_profiles

    if id_column not in IDENTITY_COLUMNS:
        _fail(f"--id-column must be one of {', '.join(IDENTITY_COLUMNS)}, not {id_column!r}")
    wanted = _columns(properties, all_columns)
    limits = JobLimits(max_rows=job_profiles)

    def call(client: Any, rows: Any, warehouse: Any, on_job: Any) -> Any:
        return push_profiles(
            client,
            rows,
            warehouse=warehouse,
            id_column=id_column,
            properties=wanted,
            list_id=list_id,
            full=full,
            dry_run=dry_run,
            limits=limits,
            on_job=on_job,
        )

    _run(
        "profiles",
        call,
        _Common(
            source,
            query,
            table,
            file,
            id_column,
            wanted,
            dry_run,
            as_json,
            rate_limits,
            api_key,
            base_url,
            connection,
        ),
    )


@dataclass(frozen=True, slots=True)
class _Common:
    source: str
    query: str | None
    table: str | None
    file: str | None
    id_column: str
    #: columns that must exist besides the identity
    columns: Sequence[str] | None
    dry_run: bool
    as_json: bool
    rate_limits: str
    api_key: str | None
    base_url: str | None
    connection: str | None


def _fail(message: str) -> NoReturn:
    from kbridge.cli.output import fail

    fail(message)


def _columns(properties: str | None, all_columns: bool) -> list[str] | None:
    """The columns named by ``--properties``, or ``None`` for ``--all-columns``."""
    if properties is not None and all_columns:
        _fail("give --properties or --all-columns, not both")
    if properties is None and not all_columns:
        _fail("name the columns to send with --properties a,b (or send all with --all-columns)")
    if properties is None:
        return None
    wanted = [p.strip() for p in properties.split(",") if p.strip()]
    if not wanted:
        _fail("--properties names no column")
    return wanted


def _run(noun: str, call: Callable[[Any, Any, Any, Any], Any], opts: _Common) -> None:
    """Read and check the source, run ``call(client, rows, warehouse, on_job)``, report."""
    import asyncio

    from kbridge.api import AsyncClient, ClientConfig
    from kbridge.cli.credentials import resolve_credentials
    from kbridge.cli.output import describe_error
    from kbridge.cli.sync import parse_rate_limits
    from kbridge.cli.warehouse_url import with_hint
    from kbridge.core import KbridgeError, dumps_str
    from kbridge.push import PushInputError, read_source
    from kbridge.warehouse import duckdb_path, open_warehouse

    path = duckdb_path(opts.source)
    if path is None and not opts.source.startswith(("postgresql://", "postgres://")):
        _fail(
            "--from: push reads rows through DuckDB or PostgreSQL: give duckdb:///FILE or "
            "postgresql://…"
        )
    if path is not None and opts.file is None and path != ":memory:" and not os.path.exists(path):
        _fail(with_hint(f"--from: {path} does not exist", opts.source))

    def progress(job_id: str | None, rows: int) -> None:
        print(f"job {job_id or '-'}: {rows} {noun} submitted", file=sys.stderr, flush=True)

    try:
        config = ClientConfig(limiter=parse_rate_limits(opts.rate_limits))
        warehouse = open_warehouse(opts.source)
        try:
            rows = read_source(warehouse, query=opts.query, table=opts.table, file=opts.file)
            rows.check(opts.id_column, opts.columns)
            creds = resolve_credentials(opts.api_key, opts.base_url, opts.connection, os.environ)

            async def run() -> dict[str, int]:
                async with AsyncClient(**creds.client_kwargs(), config=config) as client:
                    summary = await call(client, rows, warehouse, progress)
                return dict(summary.as_dict())

            counts = asyncio.run(run())
        finally:
            warehouse.close()
    except PushInputError as exc:
        _fail(str(exc))
    except KbridgeError as exc:
        _fail(describe_error(exc, action=f"push {noun}"))
    if opts.as_json:
        print(dumps_str(counts))
        return
    what = "would send" if opts.dry_run else "sent"
    skipped = counts["skipped_no_consent"]
    print(
        f"{counts['rows']} rows: {what} {counts['sent']} in {counts['jobs']} jobs, "
        f"{counts['unchanged']} unchanged, {counts['errors']} refused"
        + (f", {skipped} without recorded consent (not sent)" if skipped else "")
        + (" (see the push_errors table)" if counts["errors"] and not opts.dry_run else "")
    )


@app.command("events")
def events(
    metric: Annotated[str, typer.Option("--metric", help="the metric's name, e.g. 'Churn Scored'")],
    source: FromOption = DEFAULT_SOURCE,
    query: QueryOption = None,
    table: TableOption = None,
    file: FileOption = None,
    id_column: Annotated[
        str,
        typer.Option(
            "--id-column", help="the profile's identity: email, phone_number, external_id"
        ),
    ] = "email",
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="when each event happened (default: now)")
    ] = None,
    value_column: Annotated[
        str | None, typer.Option("--value-column", help="each event's monetary value")
    ] = None,
    unique_id_column: Annotated[
        str | None,
        typer.Option(
            "--unique-id-column",
            help="each event's own id (default: derived from the row, so a resend is a repeat)",
        ),
    ] = None,
    properties: PropertiesOption = None,
    all_columns: AllColumnsOption = False,
    dry_run: DryRunOption = False,
    full: FullOption = False,
    as_json: JsonOption = False,
    rate_limits: RateLimitsOption = "spec",
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
    connection: ConnectionOption = None,
) -> None:
    """Record one event per row through bulk event jobs (≤1,000 each), each with a unique_id."""
    from kbridge.push import push_events

    wanted = _columns(properties, all_columns)
    extra = [c for c in (time_column, value_column, unique_id_column) if c]

    def call(client: Any, rows: Any, warehouse: Any, on_job: Any) -> Any:
        return push_events(
            client,
            rows,
            warehouse=warehouse,
            metric=metric,
            id_column=id_column,
            time_column=time_column,
            value_column=value_column,
            unique_id_column=unique_id_column,
            properties=wanted,
            full=full,
            dry_run=dry_run,
            on_job=on_job,
        )

    _run(
        "events",
        call,
        _Common(
            source,
            query,
            table,
            file,
            id_column,
            [*(wanted or ()), *extra],
            dry_run,
            as_json,
            rate_limits,
            api_key,
            base_url,
            connection,
        ),
    )


@app.command("subscriptions")
def subscriptions(
    consent_column: Annotated[
        str,
        typer.Option(
            "--consent-column",
            help="recorded consent per row: yes subscribes, no unsubscribes, "
            "anything else is never sent",
        ),
    ],
    source: FromOption = DEFAULT_SOURCE,
    query: QueryOption = None,
    table: TableOption = None,
    file: FileOption = None,
    id_column: Annotated[
        str,
        typer.Option("--id-column", help="email (email marketing) or phone_number (SMS)"),
    ] = "email",
    list_id: Annotated[
        str | None, typer.Option("--list", help="subscribe to this list (its id)")
    ] = None,
    dry_run: DryRunOption = False,
    full: FullOption = False,
    as_json: JsonOption = False,
    rate_limits: RateLimitsOption = "spec",
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
    connection: ConnectionOption = None,
) -> None:
    """Subscribe the rows with recorded consent and unsubscribe the refusals, in bulk jobs;
    rows without recorded consent are counted and never subscribed."""
    from kbridge.push import push_subscriptions

    if id_column not in ("email", "phone_number"):
        _fail(f"--id-column must be email or phone_number for subscriptions, not {id_column!r}")

    def call(client: Any, rows: Any, warehouse: Any, on_job: Any) -> Any:
        return push_subscriptions(
            client,
            rows,
            warehouse=warehouse,
            consent_column=consent_column,
            id_column=id_column,
            list_id=list_id,
            full=full,
            dry_run=dry_run,
            on_job=on_job,
        )

    _run(
        "profiles",
        call,
        _Common(
            source,
            query,
            table,
            file,
            id_column,
            [consent_column],
            dry_run,
            as_json,
            rate_limits,
            api_key,
            base_url,
            connection,
        ),
    )
