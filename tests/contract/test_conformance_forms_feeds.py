"""Forms, web feeds and tracking settings, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session creates a draft form with two A/B versions and a web
feed, then calls every GET of the three tags with real ids, plain and with
each ``include``. Every body, the writes' and the errors' included, must
validate against the spec's schema for its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check, expect_400, send

pytestmark = pytest.mark.contract

TAGS = ("Forms", "Web Feeds", "Tracking Settings")


def form_body(name: str, *types: str, ab: bool = True) -> dict[str, Any]:
    versions = [{"type": t, "name": f"V{k}", "steps": []} for k, t in enumerate(types)]
    attrs = {"name": name, "status": "draft", "ab_test": ab, "definition": {"versions": versions}}
    return {"data": {"type": "form", "attributes": attrs}}


def feed_body(name: str, **extra: Any) -> dict[str, Any]:
    attrs = {"name": name, "url": "https://shop.example.com/feed.json",
             "request_method": "get", "content_type": "json", **extra}  # fmt: skip
    return {"data": {"type": "web-feed", "attributes": attrs}}


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    config = EmulatorConfig(seed=12, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        ids: dict[str, str] = {}
        form = send(http, "create_form", "/api/forms", form_body("Spin", "popup", "flyout"))
        ids["form"] = form["data"]["id"]
        versions = http.get(f"/api/forms/{ids['form']}/form-versions").json()["data"]
        ids["form-version"] = versions[0]["id"]
        ids["web-feed"] = send(http, "create_web_feed", "/api/web-feeds", feed_body("Recs"))[
            "data"
        ]["id"]
        ids["tracking-setting"] = http.get("/api/tracking-settings").json()["data"][0]["id"]
        yield http, ids


def _ops() -> list[Operation]:
    return [op for tag in TAGS for op in catalog.by_tag(tag)]


def test_every_operation_of_the_three_tags_is_emulated() -> None:
    from kbridge.emulator.backend.forms import FormsBackend
    from kbridge.emulator.backend.web_feeds import TrackingSettingsBackend, WebFeedsBackend

    served = FormsBackend.operations | WebFeedsBackend.operations
    served |= TrackingSettingsBackend.operations
    assert {op.operation_id for op in _ops()} == served


def _path(op: Operation, ids: dict[str, str]) -> str:
    head = op.path.split("/")[2]
    return op.path.replace("{id}", ids[head[:-1]]) if "{id}" in op.path else op.path


@pytest.mark.parametrize(
    "op", [op for op in _ops() if op.method == "GET"], ids=lambda op: op.operation_id
)
def test_every_get_matches_the_spec(
    session: tuple[httpx.Client, dict[str, str]], op: Operation
) -> None:
    http, ids = session
    for extra in [{}] + [{"include": inc} for inc in op.include]:
        response = http.get(_path(op, ids), params=extra)
        assert response.status_code == 200, f"{op.operation_id}: {response.text[:300]}"
        body = check(op, response)
        assert body["data"], f"{op.operation_id} {extra}: empty data"
        if extra:
            assert body.get("included"), f"{op.operation_id} {extra}: nothing included"


def test_a_form_and_its_versions(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    form = send(http, "get_form", f"/api/forms/{ids['form']}")["data"]["attributes"]
    assert (form["status"], form["ab_test"]) == ("draft", True)
    assert [v["type"] for v in form["definition"]["versions"]] == ["popup", "flyout"]
    flyouts = http.get(
        f"/api/forms/{ids['form']}/form-versions", params={"filter": "equals(form_type,'flyout')"}
    ).json()["data"]
    assert [v["attributes"]["variation_name"] for v in flyouts] == ["V1"]
    owner = send(http, "get_form_id_for_form_version",
                 f"/api/form-versions/{ids['form-version']}/relationships/form")  # fmt: skip
    assert owner["data"] == {"type": "form", "id": ids["form"]}
    live = http.get("/api/forms", params={"filter": "equals(status,'live')"}).json()["data"]
    assert live
    assert all(f["attributes"]["status"] == "live" for f in live)
    newest = http.get("/api/forms", params={"sort": "-created_at", "page[size]": "1"}).json()
    assert newest["data"][0]["id"] == ids["form"]
    assert newest["links"]["next"]
    doomed = send(http, "create_form", "/api/forms", form_body("Doomed", "banner", ab=False))
    fid = doomed["data"]["id"]
    vid = http.get(f"/api/forms/{fid}/relationships/form-versions").json()["data"][0]["id"]
    assert http.delete(f"/api/forms/{fid}").status_code == 204
    for path in (f"/api/forms/{fid}", f"/api/form-versions/{vid}"):
        gone = http.get(path)
        assert gone.status_code == 404
        check(catalog.match("GET", path)[0], gone)


def test_form_errors_are_spec_shaped(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = session
    live = form_body("Live", "popup")
    live["data"]["attributes"]["status"] = "live"
    assert "draft" in expect_400(http, "create_form", "/api/forms", live)
    odd = form_body("Odd", "sidebar")
    assert "type" in expect_400(http, "create_form", "/api/forms", odd)
    two = form_body("Two", "popup", "popup", ab=False)
    assert "ab_test" in expect_400(http, "create_form", "/api/forms", two)
    expect_400(http, "get_forms", "/api/forms", params={"page[size]": "101"})


def test_web_feeds_crud(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    path = f"/api/web-feeds/{ids['web-feed']}"
    patch = {"data": {"type": "web-feed", "id": ids["web-feed"],
                      "attributes": {"content_type": "xml"}}}  # fmt: skip
    updated = send(http, "update_web_feed", path, patch)["data"]["attributes"]
    assert (updated["name"], updated["content_type"]) == ("Recs", "xml")
    assert updated["updated"] >= updated["created"]
    by_name = http.get("/api/web-feeds", params={"filter": "equals(name,'Recs')"}).json()
    assert [f["id"] for f in by_name["data"]] == [ids["web-feed"]]
    names = [f["attributes"]["name"] for f in
             http.get("/api/web-feeds", params={"sort": "name"}).json()["data"]]  # fmt: skip
    assert names == sorted(names)
    assert len(names) == 3
    assert "already exists" in expect_400(http, "create_web_feed", "/api/web-feeds",
                                          feed_body("Recs"))  # fmt: skip
    expect_400(http, "create_web_feed", "/api/web-feeds", feed_body("X", request_method="put"))
    expect_400(http, "get_web_feeds", "/api/web-feeds", params={"page[size]": "21"})
    extra = send(http, "create_web_feed", "/api/web-feeds", feed_body("Temp"))["data"]["id"]
    assert http.delete(f"/api/web-feeds/{extra}").status_code == 204
    assert http.get(f"/api/web-feeds/{extra}").status_code == 404


def test_tracking_settings_patch(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    path = f"/api/tracking-settings/{ids['tracking-setting']}"
    attrs = {
        "auto_add_parameters": False,
        "utm_source": {"campaign": {"type": "static", "value": "klaviyo"}},
        "custom_parameters": [
            {"name": "cid", "campaign": {"type": "dynamic", "value": "campaign_id"}}
        ],
    }
    body = {
        "data": {"type": "tracking-setting", "id": ids["tracking-setting"], "attributes": attrs}
    }
    send(http, "update_tracking_setting", path, body)
    now = send(http, "get_tracking_setting", path)["data"]["attributes"]
    assert now["auto_add_parameters"] is False
    assert now["utm_source"] == {"campaign": {"type": "static", "value": "klaviyo"}}
    assert now["utm_medium"]["flow"] == {"type": "static", "value": "email"}  # untouched
    assert now["custom_parameters"][0]["name"] == "cid"
    nope = {"utm_id": {"flow": {"type": "dynamic", "value": "nope"}}}
    bad = {"data": {"type": "tracking-setting", "id": ids["tracking-setting"], "attributes": nope}}
    expect_400(http, "update_tracking_setting", path, bad)
    missing = http.get("/api/tracking-settings/XXXXXX")
    assert missing.status_code == 404
    check(catalog.get("get_tracking_setting"), missing)


def test_scopes_guard_forms() -> None:
    config = EmulatorConfig(seed=12, profiles=10, events=50, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        minted = httpx.post(f"{server.base_url}/_emulator/keys", json={"scopes": ["forms:read"]})
        with http_client_for(server, key=minted.json()["key"]) as http:
            assert http.get("/api/forms").status_code == 200
            denied = http.post("/api/forms", json=form_body("No", "popup"))
            assert denied.status_code == 403
            check(catalog.get("create_form"), denied)
            assert http.get("/api/web-feeds").status_code == 403
