"""The commands are built from a snapshot of the action registry: it must be the registry."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kbridge.api.actions import Action, registry
from kbridge.cli._actions_snapshot import ACTIONS
from kbridge.cli._actionspec import spec_of
from kbridge.cli.actions import build_command

pytestmark = pytest.mark.unit


def test_the_snapshot_is_the_registry() -> None:
    live = tuple(spec_of(action) for action in registry().values())
    stale = [a.cli_name for a, b in zip(ACTIONS, live, strict=False) if a != b]
    assert live == ACTIONS, (
        f"{stale or 'actions added or removed'}: run scripts/gen_action_specs.py"
    )


def _help(command: Any) -> str:
    app = typer.Typer()
    app.command("x")(command)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("action", list(registry().values()), ids=lambda a: a.cli_name)
def test_a_command_from_the_snapshot_is_the_command_from_the_registry(action: Action) -> None:
    snapshot = next(a for a in ACTIONS if a.cli_name == action.cli_name)
    ours, theirs = build_command(snapshot), build_command(action)
    assert ours.__doc__ == theirs.__doc__
    assert _help(ours) == _help(theirs)
