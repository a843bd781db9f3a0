"""Custom metrics, mapped metrics and metric properties, judged by Klaviyo's OpenAPI spec.

A scripted session creates a custom metric over two generated metrics and
sends an event with a new property, then calls every GET of these
operations with real ids, plain and with each ``include``.
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

PREFIXES = ("/api/custom-metrics", "/api/mapped-metrics", "/api/metric-properties")


def _ops() -> list[Operation]:
    return [
        op
        for op in catalog.by_tag("Metrics")
        if op.path.startswith(PREFIXES) or "metric-properties" in op.path
    ]


def custom(name: str, *metric_ids: str, method: str = "count") -> dict[str, Any]:
    groups: list[dict[str, Any]] = [{"metric_id": m} for m in metric_ids]
    if method == "value":
        for g in groups:
            g["value_property"] = "$value"
    attrs = {"name": name, "definition": {"aggregation_method": method, "metric_groups": groups}}
    return {"data": {"type": "custom-metric", "attributes": attrs}}


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    config = EmulatorConfig(seed=5, profiles=30, events=400, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        metrics = {
            m["attributes"]["name"]: m["id"] for m in http.get("/api/metrics").json()["data"]
        }
        ids = dict(metrics)
        ids["custom-metric"] = send(
            http, "create_custom_metric", "/api/custom-metrics",
            custom("All revenue", metrics["Placed Order"], metrics["Ordered Product"],
                   method="value"),
        )["data"]["id"]  # fmt: skip
        event = {
            "type": "event",
            "attributes": {
                "properties": {"Coupon": "SPRING", "Items": 3},
                "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": "m@example.com"}}},
            },
        }
        assert http.post("/api/events", json={"data": event}).status_code == 202
        props = http.get(f"/api/metrics/{metrics['Placed Order']}/metric-properties").json()
        ids["metric-property"] = next(
            p["id"] for p in props["data"] if p["attributes"]["property"] == "Coupon"
        )
        ids["mapped-metric"] = "revenue"
        ids["metric"] = metrics["Placed Order"]
        yield http, ids


def test_every_operation_is_emulated() -> None:
    from kbridge.emulator.backend.custom_metrics import CustomMetricsBackend

    assert {op.operation_id for op in _ops()} <= CustomMetricsBackend.operations
    assert len(CustomMetricsBackend.operations) == 19


def _path(op: Operation, ids: dict[str, str]) -> str:
    head = op.path.split("/")[2]
    kind = {"custom-metrics": "custom-metric", "mapped-metrics": "mapped-metric",
            "metric-properties": "metric-property", "metrics": "metric"}[head]  # fmt: skip
    return op.path.replace("{id}", ids[kind]) if "{id}" in op.path else op.path


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
        check(op, response)


def test_custom_metric_links_its_metrics(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    linked = send(http, "get_metric_ids_for_custom_metric",
                  f"/api/custom-metrics/{ids['custom-metric']}/relationships/metrics")  # fmt: skip
    assert [m["id"] for m in linked["data"]] == [ids["Placed Order"], ids["Ordered Product"]]
    body = {"data": {"type": "custom-metric", "id": ids["custom-metric"],
                     "attributes": {"name": "Gross revenue"}}}  # fmt: skip
    path = f"/api/custom-metrics/{ids['custom-metric']}"
    assert send(http, "update_custom_metric", path, body)["data"]["attributes"]["name"] == (
        "Gross revenue"
    )
    dup = http.post("/api/custom-metrics", json=custom("Gross revenue", ids["Placed Order"]))
    assert dup.status_code == 409
    check(catalog.get("create_custom_metric"), dup)
    no_prop = custom("Sum", ids["Placed Order"])
    no_prop["data"]["attributes"]["definition"]["aggregation_method"] = "value"
    assert "value_property" in expect_400(http, "create_custom_metric", "/api/custom-metrics",
                                          no_prop)  # fmt: skip
    unknown = custom("Ghost", "NOSUCH")
    expect_400(http, "create_custom_metric", "/api/custom-metrics", unknown)
    temp = send(http, "create_custom_metric", "/api/custom-metrics",
                custom("Temp", ids["Viewed Product"]))["data"]["id"]  # fmt: skip
    assert http.delete(f"/api/custom-metrics/{temp}").status_code == 204
    gone = http.get(f"/api/custom-metrics/{temp}")
    assert gone.status_code == 404
    check(catalog.get("get_custom_metric"), gone)


def test_mapped_metrics_remap(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    revenue = send(http, "get_mapped_metric", "/api/mapped-metrics/revenue")["data"]
    assert revenue["relationships"]["metric"]["data"]["id"] == ids["Placed Order"]
    all_mapped = http.get("/api/mapped-metrics").json()["data"]
    assert len(all_mapped) == 7
    linkage = {"data": {"type": "custom-metric", "id": ids["custom-metric"]}}
    rels: dict[str, Any] = {"custom-metric": linkage}
    body = {"data": {"type": "mapped-metric", "id": "revenue", "relationships": rels}}
    send(http, "update_mapped_metric", "/api/mapped-metrics/revenue", body)
    now = send(http, "get_custom_metric_id_for_mapped_metric",
               "/api/mapped-metrics/revenue/relationships/custom-metric")  # fmt: skip
    assert now["data"] == {"type": "custom-metric", "id": ids["custom-metric"]}
    rels["metric"] = {"data": {"type": "metric", "id": ids["metric"]}}
    expect_400(http, "update_mapped_metric", "/api/mapped-metrics/revenue", body)


def test_metric_properties_come_from_events(session: tuple[httpx.Client, dict[str, str]]) -> None:
    http, ids = session
    prop = send(http, "get_metric_property", f"/api/metric-properties/{ids['metric-property']}")
    attrs = prop["data"]["attributes"]
    assert (attrs["property"], attrs["sample_values"]) == ("Coupon", ["SPRING"])
    props = http.get(f"/api/metrics/{ids['Placed Order']}/metric-properties").json()["data"]
    items = next(p for p in props if p["attributes"]["property"] == "Items")
    assert items["attributes"]["inferred_type"] == "number"
    missing = http.get("/api/metric-properties/NOSUCH00000000")
    assert missing.status_code == 404
    check(catalog.get("get_metric_property"), missing)
