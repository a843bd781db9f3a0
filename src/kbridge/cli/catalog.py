"""``kbridge catalog``: what Klaviyo's spec says about each operation."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kbridge import catalog
from kbridge.cli.output import fail

app = typer.Typer(help="Facts about Klaviyo's operations (limits, scopes, filters, page sizes).")


@app.command("list")
def list_operations(
    tag: Annotated[str | None, typer.Option(help="only this OpenAPI tag, e.g. Profiles")] = None,
) -> None:
    """List operations with their rate tier and scopes."""
    table = Table("operation", "method", "path", "burst/s", "steady/m", "daily", "scopes")
    for op in catalog.all_operations():
        if tag and op.tag.lower() != tag.lower():
            continue
        rl = op.rate_limit
        table.add_row(
            op.operation_id,
            op.method,
            op.path,
            str(rl.burst),
            str(rl.steady),
            str(rl.daily or ""),
            " ".join(op.scopes),
        )
    Console().print(table)


@app.command("show")
def show(operation_id: Annotated[str, typer.Argument(help="e.g. get_profiles")]) -> None:
    """Everything the catalogue knows about one operation."""
    try:
        op = catalog.get(operation_id)
    except catalog.UnknownOperationError as exc:
        fail(str(exc))
    rl = op.rate_limit
    lines = [
        f"{op.method} {op.path}  ({op.operation_id}, tag {op.tag})",
        f"rate limit: {rl.burst}/s burst, {rl.steady}/min steady"
        + (f", {rl.daily}/day" if rl.daily else ""),
        f"scopes: {' '.join(op.scopes) or '(none)'}",
        f"success status: {op.success_status}",
    ]
    if op.max_page_size:
        lines.append(f"page size: default {op.default_page_size}, max {op.max_page_size}")
    for alt in op.alt_limits:
        lines.append(
            f"with {alt.param}={alt.value}: also {alt.limit.burst}/s, {alt.limit.steady}/min"
        )
    for f in op.filters:
        lines.append(f"filter {f.name}: {', '.join(sorted(f.operators()))}")
    if op.sort:
        lines.append(f"sort: {', '.join(op.sort)}")
    if op.include:
        lines.append(f"include: {', '.join(op.include)}")
    typer.echo("\n".join(lines))
