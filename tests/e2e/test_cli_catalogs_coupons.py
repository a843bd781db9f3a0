"""``kbridge catalog-items …`` and ``kbridge coupons …`` through the real console script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbridge.emulator import EmulatorConfig, EmulatorServer
from tests.e2e.test_cli_actions import ok_json, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        EmulatorConfig(seed=13, profiles=20, events=100, rate_limit_factor=None)
    ) as running:
        yield running


def _advance(server: EmulatorServer) -> None:
    httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 1})


def test_catalog_items_crud(server: EmulatorServer) -> None:
    made = ok_json(
        run(
            server, "catalog-items", "create", "--external-id", "CLI-1", "--title", "Cap",
            "--description", "A cap", "--url", "https://shop.example/cap", "--price", "19.5",
            "--category", "apparel", "-o", "json",
        )
    )  # fmt: skip
    assert isinstance(made, dict)
    assert made["id"] == "$custom:::$default:::CLI-1"
    updated = ok_json(
        run(server, "catalog-items", "update", "CLI-1", "--price", "21", "-o", "json")
    )
    assert updated["attributes"]["price"] == 21.0  # type: ignore[index]
    listed = ok_json(
        run(server, "catalog-items", "list", "--filter", "contains(title,'Cap')", "-o", "json")
    )
    assert [i["id"] for i in listed] == [made["id"]]  # type: ignore[union-attr]
    assert run(server, "catalog-items", "delete", "CLI-1").returncode == 0
    missing = run(server, "catalog-items", "get", "CLI-1")
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr


def test_catalog_import_from_csv_and_json(server: EmulatorServer, tmp_path: Path) -> None:
    csv = tmp_path / "items.csv"
    csv.write_text(
        "external_id,title,description,url,price,category_ids,published\n"
        "CSV-1,Lamp,A lamp,https://shop.example/lamp,30,home|apparel,yes\n"
        "CSV-2,Rug,A rug,https://shop.example/rug,80,,no\n"
    )
    jobs = ok_json(run(server, "catalog-items", "import", "--file", str(csv), "-o", "json"))
    assert [j["attributes"]["total_count"] for j in jobs] == [2]  # type: ignore[union-attr]
    data = tmp_path / "items.json"
    data.write_text(
        '[{"external_id": "JS-1", "title": "Vase", "description": "d",'
        ' "url": "https://shop.example/vase", "price": 12}]'
    )
    assert run(server, "catalog-items", "import", "--file", str(data)).returncode == 0
    _advance(server)
    lamp = ok_json(run(server, "catalog-items", "get", "CSV-1", "-o", "json"))
    assert lamp["attributes"]["price"] == 30.0  # type: ignore[index]
    rug = ok_json(run(server, "catalog-items", "get", "CSV-2", "-o", "json"))
    assert rug["attributes"]["published"] is False  # type: ignore[index]
    assert ok_json(run(server, "catalog-items", "get", "JS-1", "-o", "json"))
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,colour\nX,red\n")
    refused = run(server, "catalog-items", "import", "--file", str(bad))
    assert refused.returncode != 0
    assert "colour" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_coupons_and_codes(server: EmulatorServer, tmp_path: Path) -> None:
    made = ok_json(
        run(server, "coupons", "create", "--external-id", "CLI10", "--description", "10%",
            "-o", "json")
    )  # fmt: skip
    assert made["id"] == "CLI10"  # type: ignore[index]
    codes = tmp_path / "codes.txt"
    codes.write_text("\n".join(f"C{n:03d}" for n in range(25)) + "\n")
    uploaded = run(server, "coupons", "add-codes", "CLI10", "--file", str(codes), "--code", "XTRA")
    assert uploaded.returncode == 0, uploaded.stderr
    _advance(server)
    listed = ok_json(run(server, "coupons", "codes", "CLI10", "-o", "json"))
    assert len(listed) == 26  # type: ignore[arg-type]
    used = ok_json(
        run(server, "coupons", "update-code", "CLI10-XTRA", "--status", "USED", "-o", "json")
    )
    assert used["attributes"]["status"] == "USED"  # type: ignore[index]
    assert run(server, "coupons", "update-code", "CLI10-XTRA", "--status", "GONE").returncode != 0
