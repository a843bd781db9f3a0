"""How actions' results and errors reach the user (cli.output) and where credentials come from."""

from __future__ import annotations

import io
import json

import pytest

from kbridge.api import PermissionDeniedError
from kbridge.api.errors import ErrorDetails, NotFoundError
from kbridge.api.jsonapi import decode_document
from kbridge.cli.credentials import resolve_credentials
from kbridge.cli.output import describe_error, emit, resolve_format, to_plain
from kbridge.core import ConfigurationError

pytestmark = pytest.mark.unit

KEY = "pk_" + "Zz9" * 12


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_table_on_a_terminal_json_otherwise() -> None:
    assert resolve_format(None, _Stream(tty=True)) == "table"
    assert resolve_format(None, _Stream(tty=False)) == "json"
    assert resolve_format("jsonl", _Stream(tty=True)) == "jsonl"
    with pytest.raises(SystemExit):
        resolve_format("yaml")


def test_plain_output_keeps_linkage_not_links() -> None:
    doc = decode_document(
        {
            "data": {
                "type": "event",
                "id": "e1",
                "attributes": {"value": 1},
                "relationships": {
                    "profile": {"data": {"type": "profile", "id": "p1"}},
                    "metric": {"links": {"related": "https://x/metric"}},
                },
            }
        }
    )
    assert to_plain(doc) == {
        "type": "event",
        "id": "e1",
        "attributes": {"value": 1},
        "relationships": {"profile": {"type": "profile", "id": "p1"}},
    }


def test_emit_jsonl_writes_one_resource_per_line() -> None:
    doc = decode_document(
        {
            "data": [
                {"type": "list", "id": str(i), "attributes": {"name": f"L{i}"}} for i in range(3)
            ]
        }
    )
    out = io.StringIO()
    emit(list(doc.resources), "jsonl", stream=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["attributes"]["name"] for r in rows] == ["L0", "L1", "L2"]
    table = io.StringIO()
    emit(list(doc.resources), "table", stream=table)
    assert "L2" in table.getvalue()
    assert "name" in table.getvalue()


def test_scope_errors_name_the_scope_and_the_action() -> None:
    err = PermissionDeniedError(
        ErrorDetails(status=403, code="permission_denied", detail="no", request_id="r-1"),
        required_scopes=("templates:write",),
    )
    line = describe_error(err, action="templates create")
    assert line == (
        "this key lacks the scope templates:write needed by 'templates create' (request id r-1)"
    )
    assert "403" in describe_error(err, action="templates create", debug=True)


def test_api_errors_are_one_line_and_never_carry_a_key() -> None:
    err = NotFoundError(ErrorDetails(status=404, detail=f"no such thing for {KEY}"))
    line = describe_error(err, action="lists get")
    assert line.startswith("'lists get' failed: 404")
    assert KEY not in line
    assert "\n" not in line


def test_credentials_precedence_and_missing() -> None:
    env = {"KLAVIYO_API_KEY": KEY, "KLAVIYO_BASE_URL": "http://127.0.0.1:9"}
    from_env = resolve_credentials(None, None, None, env)
    assert from_env.api_key == KEY
    assert from_env.base_url == "http://127.0.0.1:9"
    assert KEY not in repr(from_env)
    flag = resolve_credentials("pk_other", "http://h", None, env)
    assert (flag.api_key, flag.base_url, flag.source) == ("pk_other", "http://h", "--api-key")
    with pytest.raises(ConfigurationError, match="no credentials"):
        resolve_credentials(None, None, None, {})
    with pytest.raises(ConfigurationError, match="not both"):
        resolve_credentials(KEY, None, "shop", {})


def test_an_error_line_keeps_its_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    from kbridge.cli.output import fail

    with pytest.raises(SystemExit):
        fail("equals() is not allowed on 'name'; allowed: any (a [list]), page[size] [/]")
    assert capsys.readouterr().err == (
        "error: equals() is not allowed on 'name'; allowed: any (a [list]), page[size] [/]\n"
    )
