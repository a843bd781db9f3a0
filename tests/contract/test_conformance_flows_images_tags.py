"""Images, flows, tags and data privacy, judged by the schemas in Klaviyo's OpenAPI spec.

A scripted session creates one of everything over HTTP, then calls every
GET of these tags (plain, and with each ``include`` and ``additional-fields``
value the operation offers) with real ids. Every body — successes and the
400s these operations answer — must validate against the spec's schema for
its status. The generic GET sweep in ``test_conformance.py`` cannot reach
``/api/flow-actions/{id}`` or ``/api/flow-messages/{id}`` (Klaviyo lists
neither collection), so this module covers them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from klaviyo_api import KlaviyoAPI

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.spec import errors_of

pytestmark = pytest.mark.contract

#: a 1×1 transparent PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TAGS = ("Images", "Flows", "Tags", "Data Privacy")
SEGMENT_TRIGGERS = ("get_flows_triggered_by_segment", "get_ids_for_flows_triggered_by_segment")
#: GETs of other tags that these backends serve
EXTRA_GETS = (
    "get_tags_for_list", "get_tag_ids_for_list", "get_tags_for_segment",
    "get_tag_ids_for_segment", "get_tags_for_campaign", "get_tag_ids_for_campaign",
    "get_flows_triggered_by_list", "get_ids_for_flows_triggered_by_list",
    "get_flows_triggered_by_metric", "get_ids_for_flows_triggered_by_metric",
    "get_flows_triggered_by_segment", "get_ids_for_flows_triggered_by_segment",
)  # fmt: skip


def check(op: Operation, response: httpx.Response) -> Any:
    """Assert ``response`` is a spec-valid answer of ``op``; return its JSON (or None)."""
    assert response.status_code < 500, f"{op.operation_id}: {response.text[:500]}"
    if not response.content:
        assert response.status_code in (202, 204), f"{op.operation_id}: empty body"
        return None
    body = response.json()
    problems = errors_of(op, response.status_code, body)
    assert not problems, f"{op.operation_id} {response.status_code}:\n" + "\n".join(problems[:20])
    return body


def send(http: httpx.Client, op_id: str, path: str, body: Any = None, **kw: Any) -> Any:
    op = catalog.get(op_id)
    response = http.request(op.method, path, json=body, **kw)
    assert response.status_code == op.success_status, f"{op_id}: {response.text[:400]}"
    return check(op, response)


def expect_400(http: httpx.Client, op_id: str, path: str, body: Any = None, **kw: Any) -> str:
    """Send a bad request; the 400 must be spec-shaped. Returns the error detail."""
    op = catalog.get(op_id)
    response = http.request(op.method, path, json=body, **kw)
    assert response.status_code == 400, f"{op_id}: {response.status_code} {response.text[:300]}"
    detail: str = check(op, response)["errors"][0]["detail"]
    return detail


def flow_definition(trigger: dict[str, str], template_id: str | None = None) -> dict[str, Any]:
    email = {"subject_line": "Thanks!", "from_email": "shop@example.com", "name": "Thanks"}
    if template_id is not None:
        email["template_id"] = template_id
    return {
        "triggers": [trigger],
        "entry_action_id": "a1",
        "actions": [
            {"temporary_id": "a1", "type": "time-delay", "links": {"next": "a2"},
             "data": {"unit": "hours", "value": 1}},
            {"temporary_id": "a2", "type": "send-email", "links": {"next": None},
             "data": {"status": "draft", "message": email}},
        ],
    }  # fmt: skip


def flow_body(name: str, metric_id: str, template_id: str | None = None) -> dict[str, Any]:
    trigger = {"type": "metric", "id": metric_id}
    attributes = {"name": name, "definition": flow_definition(trigger, template_id)}
    return {"data": {"type": "flow", "attributes": attributes}}


def image_body(source: str) -> dict[str, Any]:
    return {"data": {"type": "image", "attributes": {"import_from_url": source}}}


def deletion_body(attributes: dict[str, Any], profile_id: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if profile_id is not None:
        profile["id"] = profile_id
    attrs = {"profile": {"data": profile}}
    return {"data": {"type": "data-privacy-deletion-job", "attributes": attrs}}


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An emulator in which one of everything was created; the ids by name."""
    config = EmulatorConfig(seed=11, profiles=30, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        ids: dict[str, str] = {}
        metric = http.get("/api/metrics").json()["data"][0]["id"]
        ids["metric"] = metric
        ids["list"] = http.get("/api/lists").json()["data"][0]["id"]
        ids["segment"] = http.get("/api/segments").json()["data"][0]["id"]
        campaigns = http.get(
            "/api/campaigns", params={"filter": "equals(messages.channel,'email')"}
        )
        ids["campaign"] = campaigns.json()["data"][0]["id"]
        template = {"name": "T", "editor_type": "CODE", "html": "<p>Thanks</p>"}
        created = send(http, "create_template", "/api/templates",
                       {"data": {"type": "template", "attributes": template}})  # fmt: skip
        body = flow_body("Thanks", metric, created["data"]["id"])
        flow = send(http, "create_flow", "/api/flows", body)["data"]
        ids["flow"] = flow["id"]
        welcome = flow_definition({"type": "list", "id": ids["list"]})
        welcome_body = {"name": "Welcome", "definition": welcome}
        send(
            http,
            "create_flow",
            "/api/flows",
            {"data": {"type": "flow", "attributes": welcome_body}},
        )
        actions = flow["attributes"]["definition"]["actions"]
        ids["flow-action"] = actions[1]["id"]
        ids["flow-message"] = actions[1]["data"]["message"]["id"]
        group = send(http, "create_tag_group", "/api/tag-groups",
                     {"data": {"type": "tag-group", "attributes": {"name": "Season"}}})  # fmt: skip
        ids["tag-group"] = group["data"]["id"]
        tag = send(http, "create_tag", "/api/tags", {"data": {
            "type": "tag", "attributes": {"name": "Summer"},
            "relationships": {"tag-group": {"data": {"type": "tag-group", "id": ids["tag-group"]}}},
        }})  # fmt: skip
        ids["tag"] = tag["data"]["id"]
        for rel, rtype in (("flows", "flow"), ("lists", "list"), ("segments", "segment"),
                           ("campaigns", "campaign")):  # fmt: skip
            link = {"data": [{"type": rtype, "id": ids[rtype]}]}
            op = f"tag_{rel}"
            send(http, op, f"/api/tags/{ids['tag']}/relationships/{rel}", link)
        data_uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
        image = send(http, "upload_image_from_url", "/api/images", image_body(data_uri))
        ids["image"] = image["data"]["id"]
        yield http, ids


def _path(op: Operation, ids: dict[str, str]) -> str:
    """``op.path`` with its ``{id}`` filled from the object its path names."""
    head = op.path.split("/")[2]  # /api/<collection>/{id}/...
    kind = {
        "images": "image", "flows": "flow", "flow-actions": "flow-action",
        "flow-messages": "flow-message", "tags": "tag", "tag-groups": "tag-group",
        "lists": "list", "segments": "segment", "metrics": "metric", "campaigns": "campaign",
    }[head]  # fmt: skip
    return op.path.replace("{id}", ids[kind])


def _gets() -> list[Operation]:
    ops = [op for tag in TAGS for op in catalog.by_tag(tag) if op.method == "GET"]
    ops += [catalog.get(op_id) for op_id in EXTRA_GETS]
    return sorted(ops, key=lambda op: op.operation_id)


@pytest.mark.parametrize("op", _gets(), ids=lambda op: op.operation_id)
def test_every_get_matches_the_spec(
    session: tuple[httpx.Client, dict[str, str]], op: Operation
) -> None:
    http, ids = session
    path = _path(op, ids)
    variants: list[dict[str, str]] = [{}]
    variants += [{"include": inc} for inc in op.include]
    variants += [
        {f"additional-fields[{rtype}]": ",".join(names)}
        for rtype, names in op.additional_fields.items()
    ]
    for params in variants:
        body = check(op, http.get(path, params=params))
        assert body is not None
        assert "data" in body
        if op.operation_id not in SEGMENT_TRIGGERS:  # segment triggers are not emulated
            assert body["data"], f"{op.operation_id} {params}: empty data"


def test_flow_writes_match_the_spec(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    live = {"data": {"type": "flow", "id": ids["flow"], "attributes": {"status": "live"}}}
    flow = send(http, "update_flow", f"/api/flows/{ids['flow']}", live)
    assert flow["data"]["attributes"]["status"] == "live"
    action = send(http, "get_flow_action", f"/api/flow-actions/{ids['flow-action']}")
    assert action["data"]["attributes"]["definition"]["data"]["status"] == "live"
    definition = {"type": "send-email", "data": {"message": {"subject_line": "Thanks again"}}}
    body = {"data": {"type": "flow-action", "id": ids["flow-action"],
                     "attributes": {"definition": definition}}}  # fmt: skip
    patched = send(http, "update_flow_action", f"/api/flow-actions/{ids['flow-action']}", body)
    message = patched["data"]["attributes"]["definition"]["data"]["message"]
    assert (message["id"], message["subject_line"]) == (ids["flow-message"], "Thanks again")
    doomed = send(http, "create_flow", "/api/flows", flow_body("Doomed", ids["metric"]))
    doomed_id = doomed["data"]["id"]
    wait = doomed["data"]["attributes"]["definition"]["actions"][0]["id"]
    send(http, "delete_flow_action", f"/api/flow-actions/{wait}")
    gone = http.delete(f"/api/flow-actions/{wait}")
    assert gone.status_code == 404
    check(catalog.get("delete_flow_action"), gone)
    send(http, "delete_flow", f"/api/flows/{doomed_id}")
    assert http.get(f"/api/flows/{doomed_id}").status_code == 404
    bad = {"data": {"type": "flow", "attributes": {"name": "x", "definition": {
        "triggers": [{"type": "metric", "id": "NOPE00"}], "actions": []}}}}  # fmt: skip
    assert "does not exist" in expect_400(http, "create_flow", "/api/flows", bad)


def test_tag_writes_match_the_spec(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    tag = send(
        http, "create_tag", "/api/tags", {"data": {"type": "tag", "attributes": {"name": "T"}}}
    )
    tid = tag["data"]["id"]
    send(http, "update_tag", f"/api/tags/{tid}",
         {"data": {"type": "tag", "id": tid, "attributes": {"name": "T2"}}})  # fmt: skip
    link = {"data": [{"type": "list", "id": ids["list"]}]}
    send(http, "tag_lists", f"/api/tags/{tid}/relationships/lists", link)
    send(http, "remove_tag_from_lists", f"/api/tags/{tid}/relationships/lists", link)
    for rel, rtype in (("flows", "flow"), ("segments", "segment"), ("campaigns", "campaign")):
        other = {"data": [{"type": rtype, "id": ids[rtype]}]}
        send(http, f"remove_tag_from_{rel}", f"/api/tags/{tid}/relationships/{rel}", other)
    send(http, "delete_tag", f"/api/tags/{tid}")
    group_body = {"data": {"type": "tag-group", "attributes": {"name": "G", "exclusive": True}}}
    group = send(http, "create_tag_group", "/api/tag-groups", group_body)
    gid = group["data"]["id"]
    send(http, "update_tag_group", f"/api/tag-groups/{gid}",
         {"data": {"type": "tag-group", "id": gid, "attributes": {"name": "G2"}}})  # fmt: skip
    send(http, "delete_tag_group", f"/api/tag-groups/{gid}")
    missing = {"data": [{"type": "list", "id": "NOPE00"}]}
    path = f"/api/tags/{ids['tag']}/relationships/lists"
    assert "does not exist" in expect_400(http, "tag_lists", path, missing)


def test_image_writes_match_the_spec(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    url = {"data": {"type": "image", "attributes": {
        "import_from_url": "https://cdn.example.com/banner.gif", "hidden": True}}}  # fmt: skip
    fetched = send(http, "upload_image_from_url", "/api/images", url)["data"]["attributes"]
    assert (fetched["format"], fetched["hidden"], fetched["name"]) == ("gif", True, "banner.gif")
    files = {"file": ("pixel.png", PNG, "image/png")}
    op = catalog.get("upload_image_from_file")
    uploaded = check(op, http.post("/api/image-upload", files=files, data={"name": "Pixel"}))
    assert uploaded["data"]["attributes"]["size"] == len(PNG)
    iid = ids["image"]
    patch = {"data": {"type": "image", "id": iid, "attributes": {"name": "Renamed"}}}
    assert (
        send(http, "update_image", f"/api/images/{iid}", patch)["data"]["attributes"]["name"]
        == "Renamed"
    )
    not_an_image = {"file": ("fake.png", b"%PDF-1.7 not an image", "image/png")}
    response = http.post("/api/image-upload", files=not_an_image)
    assert response.status_code == 400
    assert "unsupported image format" in check(op, response)["errors"][0]["detail"]
    bmp = {"data": {"type": "image", "attributes": {"import_from_url": "https://x.example/a.bmp"}}}
    assert "unsupported" in expect_400(http, "upload_image_from_url", "/api/images", bmp)


def test_deletion_request_matches_the_spec(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = session
    profile = http.get("/api/profiles").json()["data"][0]
    by_email = deletion_body({"email": profile["attributes"]["email"]})
    send(http, "request_profile_deletion", "/api/data-privacy-deletion-jobs", by_email)
    both = deletion_body({"email": "x@example.com"}, profile_id=profile["id"])
    detail = expect_400(http, "request_profile_deletion", "/api/data-privacy-deletion-jobs", both)
    assert "exactly one identifier" in detail


def test_the_official_sdk_reads_and_writes_these_resources() -> None:
    """Klaviyo's own SDK deserialises every answer into its pydantic models."""
    config = EmulatorConfig(seed=3, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        k = KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)
        flow = k.Flows.get_flows().data[0]
        full = k.Flows.get_flow(flow.id, additional_fields_flow=["definition"]).data
        entry = full.attributes.definition.entry_action_id
        action = k.Flows.get_flow_action(entry, include=["flow-messages"]).data
        assert action.id == entry
        message_id = action.relationships.flow_messages.data[0].id
        message = k.Flows.get_flow_message(message_id).data
        assert message.attributes.channel == "email"
        k.Flows.delete_flow_action(entry)
        after = k.Flows.get_flow(flow.id, additional_fields_flow=["definition"]).data
        assert after.attributes.definition.entry_action_id != entry
        uploaded = k.Images.upload_image_from_file(PNG, name="Pixel", hidden=True).data
        assert (uploaded.attributes.format, uploaded.attributes.hidden) == ("png", True)
        tag = k.Tags.create_tag({"data": {"type": "tag", "attributes": {"name": "sdk"}}}).data
        list_id = k.Lists.get_lists().data[0].id
        k.Tags.tag_lists(tag.id, {"data": [{"type": "list", "id": list_id}]})
        assert tag.id in [t.id for t in k.Lists.get_tags_for_list(list_id).data]
        email = k.Profiles.get_profiles().data[0].attributes.email
        k.Data_Privacy.request_profile_deletion(deletion_body({"email": email}))
