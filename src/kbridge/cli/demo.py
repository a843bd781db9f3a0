"""``kbridge demo``: the main job on embedded defaults, end to end, offline.

Starts a seeded local emulator with Klaviyo's published rate limits, verifies
the key, syncs every stream into a DuckDB file with progress shown, checks
the warehouse against the generator's ground truth (nothing lost, nothing
doubled) and prints what it cost; then stops the emulator, runs the analyses
on the warehouse, prints a short summary (lifecycle stage counts, the top
campaigns by revenue) and writes the HTML report.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from kbridge import sync
from kbridge.analytics import (
    AnalyticsError,
    campaign_performance,
    churn,
    lifecycle,
    score_against_truth,
)
from kbridge.api import AsyncClient
from kbridge.cli.output import fail
from kbridge.cli.report import render_report
from kbridge.cli.sync import StreamProgress
from kbridge.cli.warehouse_url import with_hint
from kbridge.core import KbridgeError
from kbridge.core.clock import SystemClock
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.warehouse import Warehouse, duckdb_path, open_warehouse

console = Console()

#: days of daily performance reports the demo reads (one request per day at 2/min)
_REPORT_DAYS = 2


def summary_table(result: sync.SyncResult) -> Table:
    """The sync's summary, a row per stream; stream names stay whole (people type them into
    ``--streams``), the other headers wrap on a narrow terminal or an 80-column log."""
    widest = max((len(name) for name in result.streams), default=len("stream"))
    table = Table()
    table.add_column("stream", no_wrap=True, min_width=widest)
    for header in ("records", "pages", "seconds", "records/s", "% of rate budget"):
        table.add_column(header)
    for r in result.streams.values():
        d = r.to_dict()
        budget = d["rate_budget_pct"]
        table.add_row(
            r.stream,
            f"{r.records:,}",
            str(r.pages),
            f"{r.seconds:.1f}",
            f"{d['records_per_second'] or 0:,.0f}",
            "-" if budget is None else f"{budget:.0f} %",
        )
    return table


async def _sync(base_url: str, api_key: str, target: Path) -> sync.SyncResult:
    async with AsyncClient(api_key, base_url=base_url) as client:
        account = (await client.get_document("get_accounts")).resources[0]
        name = (account.attributes.get("contact_information") or {}).get("organization_name")
        console.print(f"connected to account [bold]{account.id}[/] ({name or 'unnamed'})")
        live = StreamProgress.create(console, client.rate_limiter)
        with live.progress:
            on_progress, on_done = live.on_progress, live.on_stream_done
            destination = f"duckdb:///{target}"
            data = [s.name for s in sync.STREAMS if s.report is None]
            # one request each for these few days; the two report endpoints have separate limits
            reports = ["campaign_values_daily", "flow_series_daily"]
            try:
                callbacks = sync.Callbacks(on_progress=on_progress, on_stream_done=on_done)
                result = await sync.run(
                    client,
                    sync.SyncOptions(
                        destination, streams=data, callbacks=callbacks, fewer_collections=True
                    ),
                )
                # The reporting tier allows 2 requests a minute: a demo reads the last
                # few days of performance; `kbridge sync` backfills the rest over time.
                since = SystemClock().now() - timedelta(days=_REPORT_DAYS)
                recent = await sync.run(
                    client,
                    sync.SyncOptions(
                        destination, streams=reports, start_date=since, callbacks=callbacks
                    ),
                )
            except sync.SyncError as exc:
                fail(f"sync failed: {exc}")
            result.streams.update(recent.streams)
            return result


def _count(target: Path, table: str, account_id: str) -> int:
    """Rows of ``table`` for the account."""
    warehouse = open_warehouse(f"duckdb:///{target}")
    try:
        rows = warehouse.query(
            f"select count(*) from {table} where account_id = ?",  # noqa: S608 (fixed)
            [account_id],
        )
    finally:
        warehouse.close()
    return int(rows[0][0]) if rows else 0


#: campaigns shown in the summary (the report lists them all)
_TOP_CAMPAIGNS = 5


def _summary(warehouse: Warehouse, account_id: str) -> None:
    """Lifecycle stage counts and the top campaigns by revenue, as a marketer reads them."""
    stages = lifecycle(warehouse, account_id, months=1).stages
    table = Table("lifecycle stage", "profiles", "share", title="Where your profiles are")
    for r in stages.records():
        table.add_row(r["stage"], f"{r['profiles']:,}", f"{r['share']:.1%}")
    console.print(table)
    messages = campaign_performance(warehouse, account_id).messages.records()
    revenue: dict[str, float] = {}
    for r in messages:
        if r["source"] == "campaign" and r["revenue"] > 0:  # flows are automations
            revenue[r["name"]] = revenue.get(r["name"], 0.0) + r["revenue"]
    top = sorted(revenue.items(), key=lambda kv: -kv[1])[:_TOP_CAMPAIGNS]
    if not top:
        console.print("Top campaigns by revenue: no order followed a campaign yet")
        return
    table = Table("campaign", "attributed revenue", title=f"Top {len(top)} campaigns by revenue")
    for name, value in top:
        table.add_row(name, f"{value:,.2f}")
    console.print(table)


def _churn_line(warehouse: Warehouse, account_id: str, truth: dict[str, Any]) -> None:
    """The churn model trained on the synced history, scored against the generator's
    hidden churners (which no analysis can see), beside the report's holdout figure."""
    try:
        result = churn(warehouse, account_id)
    except AnalyticsError as exc:
        console.print(f"churn model: not trained ({exc})")
        return
    score = score_against_truth(result, truth)
    if score.auc is None:
        console.print(
            "churn model: the account has no churners (or only churners) to score against"
        )
        return
    klaviyo = "" if score.klaviyo_auc is None else f", Klaviyo's own score {score.klaviyo_auc:.2f}"
    # the truth AUC covers every profile, the ones the model was fitted on included: it is
    # in-sample and reads higher than the holdout AUC the report shows; say which is which
    holdout = (
        ""
        if result.holdout_auc is None
        else f"; holdout AUC {result.holdout_auc:.2f} on the {result.holdout:,} profiles it "
        "never saw (the report's figure)"
    )
    fitted = result.trained + result.holdout  # the final model is fitted on all of them
    console.print(
        f"churn model: AUC {score.auc:.2f} against the {score.churned:,} hidden churners among "
        f"{score.profiles:,} profiles (in-sample: including the {fitted:,} it learned from; "
        f"ceiling 1.00{klaviyo}){holdout}"
    )


def demo(
    profiles: Annotated[int, typer.Option(min=0, help="profiles in the synthetic account")] = 20000,
    events: Annotated[int, typer.Option(min=0, help="events in the synthetic account")] = 300000,
    seed: Annotated[int, typer.Option(help="seed of the synthetic account")] = 42,
    to: Annotated[
        str,
        typer.Option(
            help="the DuckDB file to write (replaced): duckdb:///rel/path.duckdb (relative to "
            "here), duckdb:////abs/path.duckdb (absolute), or a plain path"
        ),
    ] = "duckdb:///demo.duckdb",
    html: Annotated[Path, typer.Option("--html", help="the HTML report to write")] = Path(
        "demo-report.html"
    ),
) -> None:
    """Sync a seeded local Klaviyo into DuckDB, check it, analyse it and write the HTML report."""
    config = EmulatorConfig(seed=seed, profiles=profiles, events=events, rate_limit_factor=1.0)
    # absolute, so the messages name the file wherever the demo was started from
    target, html = demo_target(to).resolve(), html.resolve()
    _run_demo(config, target, html)


def demo_target(to: str) -> Path:
    """The file ``--to`` names: a ``duckdb:///`` URL as everywhere else, or a plain path
    (what ``--to`` took before). Anything else ends the command with one line."""
    if "://" not in to:
        return Path(to)
    try:
        path = duckdb_path(to)
    except KbridgeError as exc:
        fail(with_hint(str(exc), to))
    if path is None or path == ":memory:":
        fail(f"--to: the demo writes a DuckDB file; give duckdb:///demo.duckdb, not {to!r}")
    return Path(path)


def _run_demo(config: EmulatorConfig, to: Path, html: Path) -> None:
    profiles, events = config.profiles, config.events
    for stale in (to, to.with_name(to.name + ".wal")):
        stale.unlink(missing_ok=True)  # a demo starts clean; `kbridge sync` is incremental
    console.print(f"starting a local Klaviyo emulator ({profiles:,} profiles, ~{events:,} events)…")
    with EmulatorServer(config) as server:
        console.print(f"emulator at {server.base_url} with Klaviyo's published rate limits")
        truth: dict[str, Any] = httpx.get(f"{server.base_url}/_emulator/truth", timeout=60).json()
        # (the generator dates a few follow-ups, an open hours after a send, after "now":
        # the sync reads them too, so the check below is exact for every event)
        result = asyncio.run(_sync(server.base_url, server.api_key, to))
        stats = httpx.get(f"{server.base_url}/_emulator/stats", timeout=10).json()
    console.print("emulator stopped")

    console.print(summary_table(result))
    console.print(f"requests {stats['requests']:,}, throttled (429) {stats['throttled']}")

    aggregates = truth["aggregates"]
    checks = {
        "profiles": (_count(to, "profiles", result.account_id), int(aggregates["profiles"])),
        "events": (_count(to, "events", result.account_id), int(aggregates["events"])),
    }
    for name, (found, expected) in checks.items():
        console.print(f"{name}: {found:,} in the warehouse, {expected:,} in the account")
    if any(found != expected for found, expected in checks.values()):
        fail("the warehouse does not hold exactly what the account holds")
    console.print(f"complete: every record synced exactly once into [bold]{to}[/]")

    console.print("analysing the warehouse…")
    warehouse = open_warehouse(f"duckdb:///{to}")
    try:
        _summary(warehouse, result.account_id)
        _churn_line(warehouse, result.account_id, truth)
    finally:
        warehouse.close()
    path, _ = render_report(f"duckdb:///{to}", result.account_id, None, html)
    console.print(
        f"report written to [bold]{path.resolve()}[/] (open it in a browser; works offline)"
    )
