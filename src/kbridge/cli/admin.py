"""``kbridge workspaces add`` and ``kbridge tokens add``: the service's tenants and their keys.

The app database is the one ``kbridge serve`` uses: ``--database URL``
(``postgresql://…`` or ``sqlite:///PATH``), else the embedded SQLite file in
the data directory (``KBRIDGE_HOME``, else the user data directory). SQLAlchemy
and the service are imported inside the commands: ``kbridge --help`` stays quick.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from kbridge.cli.home import data_dir

if TYPE_CHECKING:
    from kbridge.service.appdb import AppDatabase

__all__ = ["open_app_database", "tokens_app", "workspaces_app"]

workspaces_app = typer.Typer(
    help="Workspaces of the service: each has its own connections, jobs and tokens.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens of the service: each speaks for one workspace.", no_args_is_help=True
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="the app database: postgresql://… or sqlite:///PATH (default: app.sqlite3 in "
        "the data directory, as for `kbridge serve`)",
        show_default=False,
    ),
]


def open_app_database(url: str | None) -> AppDatabase:
    """The app database at ``url`` (default: the embedded one), migrated to the newest schema."""
    from kbridge.service.appdb import AppDatabase
    from kbridge.service.db import database_url

    return AppDatabase.open(url or database_url(data_dir(os.environ)))


@workspaces_app.command("add")
def add_workspace(
    name: Annotated[str, typer.Argument(help="the workspace's name (unique)")],
    database: DatabaseOption = None,
) -> None:
    """Create a workspace; then `kbridge tokens add --workspace NAME` gives it a token."""
    if not name.strip():
        raise typer.BadParameter("give a non-empty name", param_hint="NAME")
    appdb = open_app_database(database)
    try:
        workspace = appdb.create_workspace(name.strip())
    finally:
        appdb.close()
    typer.echo(f"workspace {workspace.name!r} created ({workspace.id})")


@tokens_app.command("add")
def add_token(
    workspace: Annotated[str, typer.Option("--workspace", help="the workspace it speaks for")],
    name: Annotated[
        str | None, typer.Option("--name", help="a note on what the token is for")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Make an API token and print it alone on stdout, once: it is stored only hashed."""
    appdb = open_app_database(database)
    try:
        issued = appdb.create_token(appdb.workspace(workspace).id, name=name)
    finally:
        appdb.close()
    sys.stdout.write(issued.token + "\n")
    sys.stdout.flush()
