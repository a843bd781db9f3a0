"""``kbridge analytics …``: analyses of the synced warehouse, as tables or JSON.

Every subcommand takes the same options (``--from``, ``--account``,
``--as-of``, ``--output``) through :data:`FromOption` and friends and runs
inside :func:`analysis_source`, which opens the warehouse, picks the account
and turns foreseeable problems into one line. A new analysis is one more
function registered on :data:`app`::

    @app.command("campaigns")
    def campaigns_cmd(source: FromOption = DEFAULT_SOURCE, account: AccountOption = None,
                      as_of: AsOfOption = None, output: OutputOption = None) -> None:
        with analysis_source(source, account) as (warehouse, account_id):
            show([my_analysis(warehouse, account_id, as_of=parse_as_of(as_of))], output)
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict, get_args

import typer
from rich.console import Console

from kbridge.analytics import (
    Frame,
    attribution,
    campaign_performance,
    churn,
    consent,
    lifecycle,
    rfm,
    top_products,
)
from kbridge.analytics._sql import accounts
from kbridge.api import AsyncClient
from kbridge.cli.actions import common_options
from kbridge.cli.credentials import Credentials, resolve_credentials
from kbridge.cli.output import describe_error, fail, new_table, resolve_format
from kbridge.cli.warehouse_url import WAREHOUSE_URL_HELP, with_hint
from kbridge.core import KbridgeError, dumps
from kbridge.push.audiences import CHURN_PROPERTY, Pushed, push_churn_risk, push_segment
from kbridge.warehouse import Warehouse, duckdb_path, open_warehouse

__all__ = [
    "DEFAULT_SOURCE",
    "AccountOption",
    "AsOfOption",
    "FromOption",
    "OutputOption",
    "analysis_source",
    "app",
    "parse_as_of",
    "show",
]

DEFAULT_SOURCE = "duckdb:///./kbridge.duckdb"

app = typer.Typer(
    help="Analyses of the synced warehouse (run `kbridge sync` first): lifecycle stages, "
    "churn risk, consent, RFM segments, message performance, attribution, top products.",
    no_args_is_help=True,
)

FromOption = Annotated[
    str,
    typer.Option("--from", help=f"warehouse: {WAREHOUSE_URL_HELP}"),
]
AccountOption = Annotated[
    str | None,
    typer.Option("--account", help="Klaviyo account id (default: the warehouse's only account)"),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="analyse as of this ISO date-time (default: just after the latest event)"
    ),
]
OutputOption = Annotated[
    str | None, typer.Option("--output", "-o", help="table or json (default: table on a terminal)")
]


def parse_as_of(text: str | None, *, option: str = "--as-of") -> datetime | None:
    """``--as-of`` (or ``option``) as an aware datetime (a date alone means midnight UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO date-time like 2026-06-01T00:00:00Z")
    if value.tzinfo is None:
        if len(text) > 10:
            fail(f"{option}: give a timezone, e.g. 2026-06-01T00:00:00Z")
        value = value.replace(tzinfo=UTC)
    return value


def _open(source: str) -> Warehouse:
    path = duckdb_path(source)
    if path is not None and path != ":memory:" and not Path(path).exists():
        fail(
            with_hint(
                f"no warehouse at {path}: run `kbridge sync --to {source}` first, or name yours "
                "with --from, KBRIDGE_WAREHOUSE or `kbridge config set warehouse URL`",
                source,
            )
        )
    return open_warehouse(source)


@contextmanager
def analysis_source(source: str, account: str | None) -> Iterator[tuple[Warehouse, str]]:
    """The warehouse at ``source`` and the account to analyse; errors become one line."""
    try:
        warehouse = _open(source)
    except KbridgeError as exc:
        fail(with_hint(str(exc), source))
    try:
        if account is None:
            found = accounts(warehouse)
            if not found:
                fail(f"no synced profiles in {source}: run `kbridge sync` first")
            if len(found) > 1:
                fail(
                    f"the warehouse holds several accounts; choose one with --account: "
                    f"{', '.join(found)}"
                )
            account = found[0]
        yield warehouse, account
    except KbridgeError as exc:
        fail(str(exc))
    finally:
        warehouse.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is one
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def show(
    frames: Sequence[Frame], output: str | None, *, summary: Mapping[str, Any] | None = None
) -> None:
    """Print ``frames`` as tables (with ``summary`` lines first) or as one JSON document."""
    fmt = resolve_format(output)
    if fmt != "table":
        doc = {"summary": dict(summary or {}), "tables": [f.to_dict() for f in frames]}
        typer.echo(dumps(doc).decode())
        return
    console = Console(highlight=False, soft_wrap=True)
    for key, value in (summary or {}).items():
        console.print(f"{key}: {_cell(value)}", markup=False)
    for frame in frames:
        cells = [[_cell(v) for v in row] for row in frame.rows]
        console.print(new_table(*frame.columns, rows=cells, title=frame.title or None))


@app.command("lifecycle")
def lifecycle_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    months: Annotated[int, typer.Option(min=1, max=60, help="months of stage flows")] = 6,
    output: OutputOption = None,
) -> None:
    """Profiles per lifecycle stage (new … churned) and how they moved month over month."""
    with analysis_source(source, account) as (warehouse, account_id):
        result = lifecycle(warehouse, account_id, as_of=parse_as_of(as_of), months=months)
    show(
        [result.stages, result.monthly, result.flows],
        output,
        summary={"account": account_id, "as_of": result.as_of.isoformat()},
    )


@app.command("consent")
def consent_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    months: Annotated[int, typer.Option(min=1, max=60, help="months of history")] = 12,
    output: OutputOption = None,
) -> None:
    """Email and SMS consent: states now, suppression reasons, methods, and each month end."""
    with analysis_source(source, account) as (warehouse, account_id):
        result = consent(warehouse, account_id, as_of=parse_as_of(as_of), months=months)
    show(
        [result.current, result.suppressions, result.methods, result.monthly],
        output,
        summary={
            "account": account_id,
            "as_of": result.as_of.isoformat(),
            **{k: v for k, v in result.current.notes.items() if k != "as_of"},
        },
    )


# The credentials options of every API command (``kbridge lists …``), the very same objects.
_CREDENTIALS = {p.name: get_args(p.annotation)[1] for p in common_options(listing=False)}
ApiKeyOption = Annotated[str | None, _CREDENTIALS["api_key"]]
BaseUrlOption = Annotated[str | None, _CREDENTIALS["base_url"]]
ConnectionOption = Annotated[str | None, _CREDENTIALS["connection"]]
DebugOption = Annotated[bool, _CREDENTIALS["debug"]]


def _progress(job_id: str | None, rows: int) -> None:
    print(f"job {job_id or '-'}: {rows} profiles submitted", file=sys.stderr, flush=True)


async def _push_segment(credentials: Credentials, *args: Any, **kwargs: Any) -> Pushed:
    async with AsyncClient(**credentials.client_kwargs()) as client:
        return await push_segment(client, *args, on_job=_progress, **kwargs)


async def _push_churn_risk(credentials: Credentials, *args: Any, **kwargs: Any) -> Any:
    async with AsyncClient(**credentials.client_kwargs()) as client:
        return await push_churn_risk(client, *args, on_job=_progress, **kwargs)


FullOption = Annotated[
    bool,
    typer.Option("--full", help="with --push: send every profile, changed since the last or not"),
]
PushByOption = Annotated[
    str,
    typer.Option(
        "--push-by",
        help="with --push: match Klaviyo's profiles on email (profiles without one are "
        "refused into push_errors) or id (Klaviyo's profile id, as synced)",
    ),
]


def _check_push_by(by: str) -> None:
    if by not in ("email", "id"):
        fail(f"--push-by must be email or id, not {by!r}")


def _push_counts(counts: Mapping[str, int], output: str | None) -> Any:
    """The push's counts: the object ``kbridge push --json`` prints, or one line for a table."""
    if resolve_format(output) != "table":
        return dict(counts)
    return (
        f"{counts['rows']} rows: sent {counts['sent']} in {counts['jobs']} jobs, "
        f"{counts['unchanged']} unchanged, {counts['errors']} refused"
        + (" (see the push_errors table)" if counts["errors"] else "")
    )


@app.command("rfm")
def rfm_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    output: OutputOption = None,
    push: Annotated[
        str | None,
        typer.Option(
            "--push",
            metavar="SEGMENT",
            help="add this segment's profiles to a Klaviyo list (e.g. 'At risk')",
        ),
    ] = None,
    list_name: Annotated[
        str | None,
        typer.Option("--list-name", help="the list to push to (default: 'RFM: SEGMENT')"),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="with --push: also remove list members no longer in the segment"
        ),
    ] = False,
    full: FullOption = False,
    push_by: PushByOption = "email",
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
    connection: ConnectionOption = None,
    debug: DebugOption = False,
) -> None:
    """Customers by recency, frequency and monetary value, in named segments (--push SEGMENT
    adds a segment's profiles to a Klaviyo list through bulk import jobs, changed rows only)."""
    if list_name is not None and push is None:
        fail("--list-name needs --push SEGMENT")
    if prune and push is None:
        fail("--prune needs --push SEGMENT")
    if full and push is None:
        fail("--full needs --push SEGMENT")
    _check_push_by(push_by)
    with analysis_source(source, account) as (warehouse, account_id):
        result = rfm(warehouse, account_id, as_of=parse_as_of(as_of))
        summary: dict[str, Any] = {
            "account": account_id,
            "as_of": result.as_of.isoformat(),
            "customers": result.segments.notes["customers"],
        }
        if push is not None:
            name = result.segment_name(push)
            members = [
                (str(r["profile_id"]), r["email"])
                for r in result.profiles.records()
                if r["segment"] == name
            ]
            if not members:
                fail(
                    f"segment {name!r} has no profiles as of {result.as_of:%Y-%m-%d}; "
                    "nothing to push"
                )
            try:
                creds = resolve_credentials(api_key, base_url, connection, os.environ)
                target = list_name or f"RFM: {name}"
                pushed = asyncio.run(
                    _push_segment(
                        creds,
                        name,
                        target,
                        members,
                        warehouse=warehouse,
                        by=push_by,
                        prune=prune,
                        full=full,
                    )
                )
            except KbridgeError as exc:
                fail(describe_error(exc, action="analytics rfm --push", debug=debug))
            summary.update(
                pushed_segment=pushed.segment,
                list_id=pushed.list_id,
                list_name=pushed.list_name,
                list_created=pushed.created,
                pushed_profiles=pushed.profiles,
            )
            if prune:
                summary.update(removed_profiles=pushed.removed)
            summary["push"] = _push_counts(pushed.counts or {}, output)
    show([result.segments], output, summary=summary)


@app.command("churn")
def churn_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    horizon: Annotated[
        float, typer.Option(min=1, max=730, help="days without activity that count as churn")
    ] = 90,
    top: Annotated[
        int, typer.Option(min=0, help="profiles to list, most at risk first (0 = all)")
    ] = 20,
    seed: Annotated[int, typer.Option(help="seed of the train/holdout split")] = 0,
    output: OutputOption = None,
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help=f"set each scored profile's {CHURN_PROPERTY!r} property in Klaviyo "
            "(bulk import jobs, changed scores only)",
        ),
    ] = False,
    full: FullOption = False,
    push_by: PushByOption = "email",
    api_key: ApiKeyOption = None,
    base_url: BaseUrlOption = None,
    connection: ConnectionOption = None,
    debug: DebugOption = False,
) -> None:
    """Each profile's churn probability from a model trained on the account's own history,
    with its holdout AUC and calibration (and Klaviyo's churn score beside it when synced);
    --push sets it on each profile as the churn_risk property."""
    if full and not push:
        fail("--full needs --push")
    _check_push_by(push_by)
    with analysis_source(source, account) as (warehouse, account_id):
        result = churn(
            warehouse, account_id, as_of=parse_as_of(as_of), horizon_days=horizon, seed=seed
        )
        extra: dict[str, Any] = {}
        if push:
            scores = [
                (str(r["profile_id"]), r["email"], float(r["churn_probability"]))
                for r in result.profiles.records()
            ]
            try:
                creds = resolve_credentials(api_key, base_url, connection, os.environ)
                counts = asyncio.run(
                    _push_churn_risk(creds, scores, warehouse=warehouse, by=push_by, full=full)
                )
            except KbridgeError as exc:
                fail(describe_error(exc, action="analytics churn --push", debug=debug))
            extra = {"pushed_property": CHURN_PROPERTY, "push": _push_counts(counts, output)}
    profiles = result.profiles
    if top and len(profiles) > top:
        profiles = Frame.of(
            profiles.columns,
            profiles.rows[:top],
            title=f"{profiles.title}: top {top} of {len(profiles):,}",
            notes=profiles.notes,
        )
    show(
        [result.model, result.calibration, profiles],
        output,
        summary={"account": account_id, **result.summary(), **extra},
    )


SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="count from this ISO date-time (default: all synced history)"),
]
ConversionOption = Annotated[
    str, typer.Option("--conversion-metric", help="the metric that counts as a conversion")
]


class _Window(TypedDict):
    since: datetime | None
    as_of: datetime | None


def _window(since: str | None, as_of: str | None) -> _Window:
    """``--since`` and ``--as-of`` as the ``since`` and ``as_of`` of an analysis."""
    return {"since": parse_as_of(since, option="--since"), "as_of": parse_as_of(as_of)}


@app.command("performance")
def performance_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    since: SinceOption = None,
    conversion_metric: ConversionOption = "Placed Order",
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile/--no-reconcile",
            help="also compare with Klaviyo's own daily reports, message by message",
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Every campaign and flow message: recipients, open/click rates, conversions, revenue
    and unsubscribes, counted from the synced events (the report's "Every message")."""
    with analysis_source(source, account) as (warehouse, account_id):
        result = campaign_performance(
            warehouse,
            account_id,
            **_window(since, as_of),
            conversion_metric=conversion_metric,
        )
    frames = [result.messages, result.reconciliation] if reconcile else [result.messages]
    show(frames, output, summary={"account": account_id, **result.messages.notes})


@app.command("attribution")
def attribution_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    since: SinceOption = None,
    conversion_metric: ConversionOption = "Placed Order",
    output: OutputOption = None,
) -> None:
    """Conversions and revenue credited (last touch) to each campaign and flow, and how
    much no message earned (the report's "Revenue by campaign and flow")."""
    with analysis_source(source, account) as (warehouse, account_id):
        frame = attribution(
            warehouse,
            account_id,
            **_window(since, as_of),
            conversion_metric=conversion_metric,
        )
    show([frame], output, summary={"account": account_id, **frame.notes})


@app.command("products")
def products_cmd(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    since: SinceOption = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="products listed overall and in each segment")
    ] = 10,
    line_metric: Annotated[
        str, typer.Option("--line-metric", help="the metric of order lines (one per product)")
    ] = "Ordered Product",
    output: OutputOption = None,
) -> None:
    """Top products by revenue, overall and in each RFM segment, from order lines named by
    the synced catalogue; says how many lines match no catalogue item (the report's
    "Top products")."""
    with analysis_source(source, account) as (warehouse, account_id):
        result = top_products(
            warehouse,
            account_id,
            **_window(since, as_of),
            top=top,
            line_metric=line_metric,
        )
    show(
        [result.overall, result.by_segment],
        output,
        summary={"account": account_id, **result.overall.notes},
    )
