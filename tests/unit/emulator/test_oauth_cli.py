"""``kbridge emulator serve`` OAuth options: bad values are one clear line and exit 1."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kbridge.cli.app import app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--oauth-consent", "maybe"], "--oauth-consent must be one of auto, page, deny"),
        (["--oauth-access-ttl", "soon"], "--oauth-access-ttl must be a number"),
        (["--oauth-access-ttl", "0"], "--oauth-access-ttl must be a positive"),
        (["--oauth-access-ttl", "inf"], "--oauth-access-ttl must be a positive"),
    ],
)
def test_bad_oauth_options_fail_before_serving(args: list[str], names: str) -> None:
    result = CliRunner().invoke(app, ["emulator", "serve", "--port", "0", *args])
    assert result.exit_code == 1
    assert names in " ".join(result.output.split())
    assert "Traceback" not in result.output
