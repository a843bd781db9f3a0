"""``kbridge report``: the synced warehouse as one self-contained HTML file.

Takes the same ``--from``, ``--account`` and ``--as-of`` as ``kbridge
analytics`` (and opens the warehouse the same way); the page itself is
:func:`kbridge.report.build_report`'s: CSS inline, charts as inline SVG,
nothing fetched, so it opens offline and can be mailed as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kbridge.cli.analytics import (
    DEFAULT_SOURCE,
    AccountOption,
    AsOfOption,
    FromOption,
    analysis_source,
    parse_as_of,
)
from kbridge.cli.output import fail
from kbridge.core.clock import SystemClock
from kbridge.report import build_report, has_data, write_report

__all__ = ["HtmlOption", "render_report", "report"]

HtmlOption = Annotated[
    Path, typer.Option("--html", help="the HTML file to write (replaced if it exists)")
]


def render_report(
    source: str, account: str | None, as_of: str | None, target: Path
) -> tuple[Path, str]:
    """Build the report of ``source`` into ``target``: (the file written, the account id).

    Foreseeable problems (no warehouse, several accounts, a bad date, a path
    that cannot be written) end the command with one line.
    """
    when = parse_as_of(as_of)
    if target.is_dir():
        fail(f"--html: {target} is a directory; give a file name such as {target / 'report.html'}")
    with analysis_source(source, account) as (warehouse, account_id):
        # a mistyped --account would otherwise give a report of empty sections
        if not has_data(warehouse, account_id):
            fail(f"no profiles or events for account {account_id!r} in {source}")
        html = build_report(warehouse, account_id, generated_at=SystemClock().now(), as_of=when)
    try:
        return write_report(target, html), account_id
    except OSError as exc:
        fail(f"--html: cannot write {target}: {exc.strerror or exc}")


def report(
    source: FromOption = DEFAULT_SOURCE,
    account: AccountOption = None,
    as_of: AsOfOption = None,
    html: HtmlOption = Path("report.html"),
) -> None:
    """Write every analysis of the synced warehouse into one HTML file that opens offline."""
    path, account_id = render_report(source, account, as_of, html)
    typer.echo(f"report of account {account_id} written to {path.resolve()}")
