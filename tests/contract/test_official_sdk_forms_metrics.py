"""Forms and the new Metrics operations through the official SDK (``klaviyo-api`` 25.0.0,
which sends its own revision).

The SDK parses each answer into its pydantic models: every GET of forms and
of custom metrics, mapped metrics and metric properties (with real ids) must
come back as its models. (The server SDK has no client-endpoint methods
beyond ``get_client_ip_allowlist``; test_conformance_client covers those.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from klaviyo_api import KlaviyoAPI

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[KlaviyoAPI, dict[str, str]]]:
    config = EmulatorConfig(seed=21, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        klaviyo = KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)
        ids = _make_everything(klaviyo)
        yield klaviyo, ids


def _make_everything(k: KlaviyoAPI) -> dict[str, str]:
    ids: dict[str, str] = {}
    versions = [{"type": "popup", "name": "A", "steps": []}]
    attrs: dict[str, Any] = {"name": "SDK form", "status": "draft", "ab_test": False,
                             "definition": {"versions": versions}}  # fmt: skip
    ids["form"] = k.Forms.create_form({"data": {"type": "form", "attributes": attrs}}).data.id
    ids["form-version"] = k.Forms.get_version_ids_for_form(ids["form"]).data[0].id
    metrics = {m.attributes.name: m.id for m in k.Metrics.get_metrics().data}
    ids["metric"] = metrics["Placed Order"]
    definition = {"aggregation_method": "count", "metric_groups": [{"metric_id": ids["metric"]}]}
    body = {"data": {"type": "custom-metric",
                     "attributes": {"name": "SDK orders", "definition": definition}}}  # fmt: skip
    ids["custom-metric"] = k.Metrics.create_custom_metric(body).data.id
    ids["mapped-metric"] = "revenue"
    for mid in metrics.values():
        # the first metric whose recent events carry properties
        found = k.Metrics.get_property_ids_for_metric(mid).data
        if found:
            ids["metric"], ids["metric-property"] = mid, found[0].id
            break
    return ids


KINDS = {"forms": "form", "form-versions": "form-version", "custom-metrics": "custom-metric",
         "mapped-metrics": "mapped-metric", "metric-properties": "metric-property",
         "metrics": "metric"}  # fmt: skip
GETS = [
    op
    for op in [*catalog.by_tag("Forms"), *catalog.by_tag("Metrics")]
    if op.method == "GET" and op.path.split("/")[2] in KINDS and op.operation_id != "get_metrics"
    and op.operation_id not in ("get_metric", "get_flow_triggers_for_metric",
                                "get_flow_trigger_ids_for_metric")
]  # fmt: skip


@pytest.mark.parametrize("op", GETS, ids=lambda op: op.operation_id)
def test_every_get_parses_into_the_sdk_models(
    session: tuple[KlaviyoAPI, dict[str, str]], op: catalog.Operation
) -> None:
    klaviyo, ids = session
    api = klaviyo.Forms if op.tag == "Forms" else klaviyo.Metrics
    args = [ids[KINDS[op.path.split("/")[2]]]] if "{id}" in op.path else []
    answer = getattr(api, op.operation_id)(*args)
    if "custom-metric" in op.path.split("/")[-1] and op.path.startswith("/api/mapped-metrics"):
        # revenue starts mapped to a metric: its custom metric is null, which the SDK models
        assert answer.data is None
    else:
        assert answer.data is not None
