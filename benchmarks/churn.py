"""Churn prediction against the emulator's hidden truth: how well the model ranks real churners.

An emulator account (``--profiles``, ``--events``, ``--seed``; generated at a
fixed moment so a seed always gives the same account) is synced over loopback
into DuckDB with Klaviyo's predictive analytics, then ``kbridge.analytics.churn``
trains on the warehouse alone. Its per-profile churn probabilities are scored
against the generator's hidden ``churned`` flag (``/_emulator/truth``) by AUC,
beside Klaviyo's own ``predictive_analytics.churn_probability`` (which the
emulator derives from the hidden churn propensity, with noise) and the ceiling
1.0. A second table gives the same comparison on the model's own holdout and
what training and scoring cost.

Usage: python -m benchmarks.churn [--profiles 20000] [--events 600000] [--seed 42]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kbridge import sync
from kbridge.analytics import churn, score_against_truth
from kbridge.api import AsyncClient
from kbridge.core import ManualClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.server import EmulatorServer
from kbridge.emulator.simclock import SimClock
from kbridge.warehouse import Warehouse, open_warehouse

GENERATED_AT = datetime(2026, 6, 1, tzinfo=UTC)


def _sync(server: EmulatorServer, wh: Warehouse) -> str:
    async def run() -> str:
        clock = ManualClock(GENERATED_AT + timedelta(hours=1))
        async with AsyncClient(server.api_key, base_url=server.base_url, clock=clock) as client:
            result = await sync.run(
                client,
                wh,
                streams=["profiles", "metrics", "events"],
                predictive_analytics=True,
                clock=clock,
            )
        return result.account_id

    return asyncio.run(run())


def _auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--horizon", type=float, default=90.0, help="churn horizon in days")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        seed=args.seed, profiles=args.profiles, events=args.events, rate_limit_factor=None
    )
    console = Console(width=130)
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(f"duckdb:///{Path(tmp) / 'churn.duckdb'}")
        try:
            backend = EmulatorBackend(config, SimClock(start=GENERATED_AT))
            started = time.perf_counter()
            with EmulatorServer(config, backend=backend) as server:
                truth: dict[str, Any] = httpx.get(
                    f"{server.base_url}/_emulator/truth", timeout=120
                ).json()
                account_id = _sync(server, wh)
            synced = time.perf_counter() - started
            started = time.perf_counter()
            result = churn(wh, account_id, horizon_days=args.horizon)
            modelled = time.perf_counter() - started
        finally:
            wh.close()
    score = score_against_truth(result, truth)

    table = Table(
        title=f"churn AUC against the hidden truth ({score.profiles:,} profiles, "
        f"{score.churned:,} churned; seed {args.seed}, {args.events:,} events requested)"
    )
    for col in ("churn score", "profiles scored", "AUC vs truth", "ceiling"):
        table.add_column(col, justify="left" if col == "churn score" else "right")
    table.add_row("kbridge model (warehouse only)", f"{score.profiles:,}", _auc(score.auc), "1.000")
    table.add_row(
        "Klaviyo predictive churn_probability",
        f"{score.klaviyo_profiles:,}",
        _auc(score.klaviyo_auc),
        "1.000",
    )
    console.print(table)

    own = Table(
        title=f"on the model's own holdout (cutoff {result.cutoff:%Y-%m-%d}, "
        f"{result.horizon_days:g}-day horizon, churn rate {result.churn_rate:.1%})"
    )
    for col in ("figure", "value", "ceiling"):
        own.add_column(col, justify="left" if col == "figure" else "right")
    own.add_row("holdout AUC, kbridge model", _auc(result.holdout_auc), "1.000")
    own.add_row("holdout AUC, Klaviyo's score (computed after the cutoff)",
                _auc(result.klaviyo_auc), "1.000")  # fmt: skip
    own.add_row("Brier score, kbridge model", _auc(result.brier), "0.000")
    own.add_row("profiles trained / held out", f"{result.trained:,} / {result.holdout:,}", "")
    own.add_row("seconds: sync (emulator → DuckDB)", f"{synced:.1f}", "")
    own.add_row("seconds: features, two fits, scoring", f"{modelled:.1f}", "")
    console.print(own)


if __name__ == "__main__":
    main()
