"""The blocking Client's services are typed: a misspelt method fails `mypy --strict`."""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from kbridge.api import Client

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]

GOOD = """
    from kbridge.api import Client
    from kbridge.api.jsonapi import Resource


    def use(client: Client) -> list[Resource]:
        found = client.profiles.get_profiles(filter='equals(email,"a@b.io")')
        for member in client.lists.iter_profiles_for_list("L1"):
            found.append(member)
        sent: int = client.lists.add_profiles_to_list("L1", profile_ids=["p1"])
        assert sent
        return found
"""

BAD = """
    from kbridge.api import Client


    def misspelt(client: Client) -> None:
        client.profiles.get_profle()


    def wrong_type(client: Client) -> None:
        client.lists.create_list(name=1)


    def wrong_result(client: Client) -> str:
        return client.lists.get_lists()


    def misspelt_option() -> Client:
        return Client("pk_x", base_ulr="http://127.0.0.1:1")
"""


def _mypy(tmp_path: Path, name: str, source: str) -> tuple[str, int]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    # mypy's main raises the garbage collector's thresholds for its own run and leaves
    # them so; later tests in this process (the sync's collector tuning) read them
    thresholds = gc.get_threshold()
    try:
        stdout, stderr, status = mypy_api.run(
            [
                "--strict",
                "--follow-imports=silent",
                "--cache-dir",
                str(tmp_path / ".mypy_cache"),
                str(path),
            ]
        )
    finally:
        gc.set_threshold(*thresholds)
    return stdout + stderr, status


def test_mypy_strict_rejects_misspelt_and_mistyped_blocking_calls(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, "bad.py", BAD)
    assert status == 1, out
    assert '"BlockingProfilesService" has no attribute "get_profle"' in out, out
    assert 'Argument "name" to "create_list"' in out, out
    assert "Incompatible return value type" in out, out
    assert 'Unexpected keyword argument "base_ulr" for "Client"' in out, out
    assert out.count("error:") == 4, out
    out, status = _mypy(tmp_path, "good.py", GOOD)
    assert status == 0, out


def test_each_blocking_service_offers_exactly_its_async_service_methods() -> None:
    with Client("pk_" + "0" * 34, base_url="http://127.0.0.1:9") as client:
        names = [n for n, v in vars(client).items() if hasattr(v, "service")]
        assert len(names) == 17
        for name in names:
            blocking = getattr(client, name)
            service = blocking.service
            assert service is getattr(client.async_client, name)
            wanted = {m for m in dir(type(service)) if not m.startswith("_")}
            offered = {m for m in dir(type(blocking)) if not m.startswith("_")} - {"service"}
            assert offered == wanted, name
            for method in wanted:
                async_sig = inspect.signature(getattr(service, method))
                assert list(inspect.signature(getattr(blocking, method)).parameters) == list(
                    async_sig.parameters
                ), (name, method)


def test_committed_blocking_module_is_reproduced_by_its_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_blocking.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
