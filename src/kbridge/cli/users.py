"""``kbridge users add``: people who sign in to the dashboard.

The password is read from standard input (never an argument: arguments show
in ``ps`` and shell history), so ``printf %s "$PW" | kbridge users add …`` and
an interactive prompt both work.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kbridge.cli.admin import DatabaseOption, open_app_database

__all__ = ["users_app"]

users_app = typer.Typer(
    help="Dashboard users of the service: each signs in to one workspace with a role.",
    no_args_is_help=True,
)


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise typer.BadParameter("the two passwords differ", param_hint="password")
        return first
    # one line: a trailing newline from `echo` is not part of the password
    return sys.stdin.readline().rstrip("\r\n")


@users_app.command("add")
def add_user_cmd(
    email: Annotated[str, typer.Argument(help="the user's email, used to sign in")],
    workspace: Annotated[str, typer.Option("--workspace", help="the workspace they work in")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="admin (users, connections), operator (jobs, privacy, campaigns) or viewer "
            "(read only)",
        ),
    ] = "viewer",
    database: DatabaseOption = None,
) -> None:
    """Add a dashboard user; the password is read from standard input."""
    from kbridge.service.users import add_user

    password = _read_password()
    appdb = open_app_database(database)
    try:
        user = add_user(appdb, workspace, email, password, role)
    finally:
        appdb.close()
    typer.echo(f"user {user.email} added to {user.workspace_name!r} as {user.role}")
