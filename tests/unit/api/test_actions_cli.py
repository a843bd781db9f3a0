"""Every registry action becomes a working CLI command with the flags it declares."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kbridge.api import actions
from kbridge.cli.app import app

pytestmark = pytest.mark.unit

runner = CliRunner()


@pytest.mark.parametrize("cli_name", list(actions.registry()))
def test_each_action_has_a_command_listing_its_flags(cli_name: str) -> None:
    action = actions.get(cli_name)
    result = runner.invoke(app, [*cli_name.split(), "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for param in action.params:
        if not param.argument:
            assert param.cli_flag in result.output, (cli_name, param.cli_flag)
    for scope in action.scopes:
        assert scope in result.output
    assert ("--limit" in result.output) == (action.kind == "list")
