"""Universal content, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session creates blocks, lists them with filters and sorts, updates and
deletes one; every body, errors included, must validate against the spec's schema
for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.simclock import SimClock
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

PATH = "/api/template-universal-content"
OPS = (
    "get_all_universal_content",
    "get_universal_content",
    "create_universal_content",
    "update_universal_content",
    "delete_universal_content",
)


def block(kind: str, content: str) -> dict[str, Any]:
    data: dict[str, Any] = {"content": content, "display_options": {}}
    if kind == "text":
        data["styles"] = {}
    return {"content_type": "block", "type": kind, "data": data}


def body(name: str, definition: Any, cid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "template-universal-content",
        "attributes": {"name": name, "definition": definition},
    }
    if cid is not None:
        data["id"] = cid
    return {"data": data}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    config = EmulatorConfig(seed=3, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as client:
        yield client


def test_every_universal_content_operation_is_emulated() -> None:
    implemented = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock()).implemented
    assert set(OPS) <= set(implemented)


def test_universal_content_lifecycle_matches_the_spec(http: httpx.Client) -> None:
    seeded = send(http, "get_all_universal_content", PATH, params={"sort": "-name"})["data"]
    assert [r["attributes"]["name"] for r in seeded] == ["Footer", "Announcement bar"]
    for r in seeded:
        send(http, "delete_universal_content", f"{PATH}/{r['id']}")
    footer = send(http, "create_universal_content", PATH, body("Footer", block("html", "<p>f</p>")))
    header = send(http, "create_universal_content", PATH, body("Header", block("text", "Hi")))
    fid, hid = footer["data"]["id"], header["data"]["id"]
    assert footer["data"]["attributes"]["definition"]["data"]["content"] == "<p>f</p>"
    assert footer["data"]["attributes"]["created"] == footer["data"]["attributes"]["updated"]

    listed = send(http, "get_all_universal_content", PATH, params={"sort": "-name"})
    assert [r["id"] for r in listed["data"]] == [hid, fid]
    only_html = send(
        http,
        "get_all_universal_content",
        PATH,
        params={"filter": "equals(definition.type,'html')"},
    )
    assert [r["id"] for r in only_html["data"]] == [fid]
    by_name = send(
        http, "get_all_universal_content", PATH, params={"filter": "equals(name,'Header')"}
    )
    assert [r["id"] for r in by_name["data"]] == [hid]
    one = send(http, "get_universal_content", f"{PATH}/{fid}")
    assert one["data"]["attributes"]["name"] == "Footer"

    renamed = {"data": {"type": "template-universal-content", "id": fid,
                        "attributes": {"name": "Footer v2"}}}  # fmt: skip
    updated = send(http, "update_universal_content", f"{PATH}/{fid}", renamed)
    assert updated["data"]["attributes"]["name"] == "Footer v2"
    assert updated["data"]["attributes"]["definition"] == block("html", "<p>f</p>")

    assert send(http, "delete_universal_content", f"{PATH}/{fid}") is None
    gone = http.get(f"{PATH}/{fid}")
    assert gone.status_code == 404
    check(catalog.get("get_universal_content"), gone)
    left = send(http, "get_all_universal_content", PATH)
    assert [r["id"] for r in left["data"]] == [hid]


def test_universal_content_refuses_bad_blocks(http: httpx.Client) -> None:
    op = "create_universal_content"
    assert "name" in expect_400(http, op, PATH, body("", block("html", "x")))
    assert "definition.type" in expect_400(http, op, PATH, body("X", block("product", "x")))
    not_block = {"content_type": "section", "type": "html", "data": {}}
    assert "content_type" in expect_400(http, op, PATH, body("X", not_block))
    created = send(http, op, PATH, body("Keep", block("text", "kept")))
    cid = created["data"]["id"]
    bad = body("Changed", {"content_type": "block", "type": "html"}, cid)
    assert "data" in expect_400(http, "update_universal_content", f"{PATH}/{cid}", bad)
    no_styles = body("Changed", {"content_type": "block", "type": "text",
                                 "data": {"content": "x", "display_options": {}}}, cid)  # fmt: skip
    assert "styles" in expect_400(http, "update_universal_content", f"{PATH}/{cid}", no_styles)
    spacer = send(http, op, PATH, body("Gap", {"content_type": "block", "type": "spacer",
                                               "data": None}))  # fmt: skip
    assert spacer["data"]["attributes"]["definition"]["data"] is None
    kept = send(http, "get_universal_content", f"{PATH}/{cid}")["data"]["attributes"]
    assert kept["name"] == "Keep"  # a refused update changes nothing
