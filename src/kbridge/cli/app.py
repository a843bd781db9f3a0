"""The root Typer app; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer

from kbridge import __version__
from kbridge.cli import actions as actions_cmd
from kbridge.cli import analytics as analytics_cmd
from kbridge.cli import campaigns as campaigns_cmd
from kbridge.cli import catalog as catalog_cmd
from kbridge.cli import connections as connections_cmd
from kbridge.cli import demo as demo_cmd
from kbridge.cli import emulator as emulator_cmd
from kbridge.cli import privacy as privacy_cmd
from kbridge.cli import raw as raw_cmd
from kbridge.cli import report as report_cmd
from kbridge.cli import sync as sync_cmd
from kbridge.cli.output import fail
from kbridge.core.errors import KbridgeError

app = typer.Typer(
    name="kbridge",
    help="Connect a business to its Klaviyo account: act, sync, publish, analyse — "
    "or run a local Klaviyo emulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(emulator_cmd.app, name="emulator")
app.command("demo")(demo_cmd.demo)
app.command("connect")(connections_cmd.connect)
app.add_typer(connections_cmd.app, name="connections")
app.command("disconnect")(connections_cmd.disconnect_cmd)
app.command("scopes")(connections_cmd.scopes)
campaigns_cmd.register(actions_cmd.register(app, skip=campaigns_cmd.REPLACED))
app.command("raw")(raw_cmd.raw)
app.command("sync")(sync_cmd.sync)
app.add_typer(analytics_cmd.app, name="analytics")
app.command("report")(report_cmd.report)
app.add_typer(privacy_cmd.app, name="privacy")


@app.command()
def version() -> None:
    """Print kbridge's version and the Klaviyo API revision it speaks."""
    from kbridge.catalog import REVISION

    typer.echo(f"kbridge {__version__} (Klaviyo API revision {REVISION})")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: foreseeable problems become one line and a non-zero exit."""
    try:
        app(args=argv, prog_name="kbridge")
    except KbridgeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
