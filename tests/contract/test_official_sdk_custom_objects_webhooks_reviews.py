"""Custom objects, webhooks, reviews and conversations through Klaviyo's official SDK
(``klaviyo-api`` 25.0.0, which sends its own revision).

The SDK parses each answer into its pydantic models: every GET of the four
tags (by its operation id, with real ids), and the writes that make those
ids, must come back as its models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from klaviyo_api import KlaviyoAPI

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.contract

TAGS = {"Custom Objects": "Custom_Objects", "Webhooks": "Webhooks", "Reviews": "Reviews"}
PROPS = [{"id": 1, "name": "name", "type": "string"}, {"id": 2, "name": "points", "type": "int"}]


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[KlaviyoAPI, dict[str, str]]]:
    config = EmulatorConfig(seed=21, profiles=20, events=100, rate_limit_factor=None)
    with EmulatorServer(config) as server:
        klaviyo = KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)
        ids = _make_everything(klaviyo)
        httpx.post(f"{server.base_url}/_emulator/clock", json={"advance_seconds": 600})
        yield klaviyo, ids


def _make_everything(k: KlaviyoAPI) -> dict[str, str]:
    co = k.Custom_Objects
    ids: dict[str, str] = {}
    source = {"type": "data-source", "attributes": {"title": "SDK source"}}
    ids["data-source"] = co.create_data_source({"data": source}).data.id
    mapping = [
        {
            "id": p["id"],
            "type": "simple",
            "source": {
                "source_id": ids["data-source"],
                "id_path": "$['id']",
                "data_path": f"$['{p['name']}']",
            },
        }
        for p in PROPS
    ]
    schema = {
        "type": "object-schema",
        "attributes": {
            "properties": PROPS,
            "status": "active",
            "source-mapping": {
                "data": {"type": "source-mapping", "attributes": {"property_mappings": mapping}}
            },
        },
    }
    otype = {
        "type": "object-type",
        "attributes": {"title": "SDK type", "object-schema": {"data": schema}},
    }
    made = co.create_object_type({"data": otype}).data
    ids["object-type"] = made.id
    ids["object-schema"] = made.relationships.current_schema.data.id
    draft = {
        "type": "object-schema",
        "attributes": {"title": "SDK type", "properties": PROPS},
        "relationships": {"object-type": {"data": {"type": "object-type", "id": made.id}}},
    }
    co.create_object_schema({"data": draft})
    got = co.get_object_schema(ids["object-schema"])
    ids["source-mapping"] = got.data.relationships.source_mapping.data.id
    record = {
        "type": "data-source-record",
        "attributes": {"record": {"id": "S1", "name": "x", "points": "bad"}},
    }
    bulk = {
        "data": {
            "type": "data-source-record-bulk-create-job",
            "attributes": {
                "data-source-records": {
                    "data": [
                        record,
                        {
                            "type": "data-source-record",
                            "attributes": {"record": {"id": "S1", "name": "Ada"}},
                        },
                    ]
                }
            },
            "relationships": {
                "data-source": {"data": {"type": "data-source", "id": ids["data-source"]}}
            },
        }
    }
    co.bulk_create_data_source_records(bulk)
    ids["object-record"] = f"{made.id}:::S1"
    link = [{"type": "object-schema", "id": ids["object-schema"], "meta": {"name": "self"}}]
    co.create_object_schema_relationship(ids["object-schema"], {"data": link})
    hook = {
        "type": "webhook",
        "attributes": {"name": "SDK", "endpoint_url": "https://h.example.com/x", "secret_key": "k"},
        "relationships": {
            "webhook-topics": {"data": [{"type": "webhook-topic", "id": "event:klaviyo.sent_sms"}]}
        },
    }
    ids["webhook"] = k.Webhooks.create_webhook({"data": hook}).data.id
    ids["webhook-topic"] = "event:klaviyo.sent_sms"
    ids["review"] = k.Reviews.get_reviews().data[0].id
    return ids


GETS = [op for tag in TAGS for op in catalog.by_tag(tag) if op.method == "GET"]


@pytest.mark.parametrize("op", GETS, ids=lambda op: op.operation_id)
def test_every_get_parses_into_the_sdk_models(
    session: tuple[KlaviyoAPI, dict[str, str]], op: catalog.Operation
) -> None:
    klaviyo, ids = session
    api = getattr(klaviyo, TAGS[op.tag])
    args: list[Any] = []
    if "{id}" in op.path:
        args.append(ids[op.path.split("/")[2][:-1]])
    answer = getattr(api, op.operation_id)(*args)
    if "relationships/object-types" in op.path or "relationships/profile-object" in op.path:
        return  # the SDK's own type has no relationships here
    assert answer.data


def test_a_review_is_moderated_and_a_message_sent(
    session: tuple[KlaviyoAPI, dict[str, str]],
) -> None:
    klaviyo, ids = session
    body = {
        "data": {
            "type": "review",
            "id": ids["review"],
            "attributes": {"status": {"value": "featured"}},
        }
    }
    done = klaviyo.Reviews.update_review(ids["review"], body)
    assert done.data.attributes.status == {"value": "featured"}
    texter = next(p for p in klaviyo.Profiles.get_profiles().data if p.attributes.phone_number)
    message = {
        "data": {
            "type": "conversation-message",
            "attributes": {"body": "Hi"},
            "relationships": {"conversation": {"data": {"type": "conversation", "id": texter.id}}},
        }
    }
    assert klaviyo.Conversations.create_conversation_message(message) is None
