"""Every emulated operation's bodies, judged by the schemas in Klaviyo's OpenAPI spec.

Every emulated GET is called (path ids taken from its parent collection),
plain and with each ``include`` and ``additional-fields`` value it offers;
writes are exercised by a scripted session. Each JSON body must validate
against the spec's schema for its status — error bodies against the spec's
error schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbridge import catalog
from kbridge.catalog import Operation
from kbridge.emulator import EmulatorConfig, EmulatorServer, SimClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.testing.plugin import http_client_for
from tests.contract.spec import errors_of

pytestmark = pytest.mark.contract

IMPLEMENTED: frozenset[str] = frozenset(
    EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock()).implemented
)
GETS = sorted(
    (
        op
        for op in catalog.all_operations()
        # client endpoints take company_id, not a key: test_conformance_client judges them
        if op.method == "GET" and op.operation_id in IMPLEMENTED and op.auth == "private"
    ),
    key=lambda op: op.operation_id,
)
#: query parameters some operations require
REQUIRED_PARAMS: dict[str, dict[str, str]] = {
    "get_campaigns": {"filter": "equals(messages.channel,'email')"},
    "get_coupon_codes": {"filter": "equals(coupon.id,['WELCOME10'])"},
}
_PARAM = re.compile(r"\{([a-z_]+)\}")


def _start_jobs(http: httpx.Client) -> None:
    """One job of each bulk kind, so their GETs have something to show."""
    profiles = {"data": [{"type": "profile", "attributes": {"email": "bulk@example.com"}}]}
    list_id = http.get("/api/lists").json()["data"][0]["id"]
    jobs = {
        "/api/profile-bulk-import-jobs": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": profiles},
            "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
        },
        "/api/profile-suppression-bulk-create-jobs": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {"profiles": profiles},
        },
        "/api/profile-suppression-bulk-delete-jobs": {
            "type": "profile-suppression-bulk-delete-job",
            "attributes": {"profiles": profiles},
        },
    }
    jobs.update(_catalog_jobs())
    for path, data in jobs.items():
        op = catalog.match("POST", path)[0]
        check(op, http.post(path, json={"data": data}))


def _catalog_jobs() -> dict[str, dict[str, Any]]:
    """One catalogue job of each kind (deletes of unknown ids: rows fail, jobs stay)."""
    item = {"external_id": "BULK-1", "title": "Bulk", "description": "d", "url": "https://x.io"}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        "item": {
            "create": [{"type": "catalog-item", "attributes": item}],
            "update": [{"type": "catalog-item", "id": "$custom:::$default:::1000",
                        "attributes": {"price": 130.0}}],
        },
        "variant": {
            "create": [{"type": "catalog-variant", "attributes": {
                **item, "external_id": "BULK-1-V", "sku": "BULK-1-V",
                "inventory_quantity": 1, "price": 1.0},
                "relationships": {"item": {"data": {"type": "catalog-item",
                                                    "id": "$custom:::$default:::1000"}}}}],
            "update": [{"type": "catalog-variant", "id": "$custom:::$default:::SKU-1000",
                        "attributes": {"inventory_quantity": 5}}],
        },
        "category": {
            "create": [{"type": "catalog-category",
                        "attributes": {"external_id": "bulk", "name": "Bulk"}}],
            "update": [{"type": "catalog-category", "id": "$custom:::$default:::home",
                        "attributes": {"name": "Home & Living"}}],
        },
    }  # fmt: skip
    plural = {"item": "items", "variant": "variants", "category": "categories"}
    jobs: dict[str, dict[str, Any]] = {}
    for kind, by_verb in rows.items():
        by_verb["delete"] = [{"type": f"catalog-{kind}", "id": "$custom:::$default:::gone"}]
        for verb, data in by_verb.items():
            jtype = f"catalog-{kind}-bulk-{verb}-job"
            jobs[f"/api/{jtype}s"] = {
                "type": jtype, "attributes": {plural[kind]: {"data": data}},
            }  # fmt: skip
    coupon = {"data": {"type": "coupon", "id": "WELCOME10"}}
    code = {"type": "coupon-code", "attributes": {"unique_code": "BULKCODE"},
            "relationships": {"coupon": coupon}}  # fmt: skip
    jobs["/api/coupon-code-bulk-create-jobs"] = {
        "type": "coupon-code-bulk-create-job", "attributes": {"coupon-codes": {"data": [code]}},
    }  # fmt: skip
    return jobs


#: path ids for GETs whose answer needs a resource set up first (operation → id)
SET_UP_IDS: dict[str, str] = {}


def _message_with_an_image(http: httpx.Client) -> None:
    """A draft campaign whose message shows an image (the generated ones are sent)."""
    list_id = http.get("/api/lists").json()["data"][0]["id"]
    definition = {"channel": "email", "label": "Img", "content": {"subject": "s"}}
    body = {
        "data": {
            "type": "campaign",
            "attributes": {
                "name": "With an image",
                "audiences": {"included": [list_id], "excluded": []},
                "send_strategy": {"method": "immediate"},
                "campaign-messages": {
                    "data": [{"type": "campaign-message", "attributes": {"definition": definition}}]
                },
            },
        }
    }
    made = http.post("/api/campaigns", json=body)
    assert made.status_code == 201, made.text
    mid = made.json()["data"]["relationships"]["campaign-messages"]["data"][0]["id"]
    image = http.get("/api/images").json()["data"][0]["id"]
    linked = http.patch(
        f"/api/campaign-messages/{mid}/relationships/image",
        json={"data": {"type": "image", "id": image}},
    )
    assert linked.status_code == 204, linked.text
    SET_UP_IDS["get_image_for_campaign_message"] = mid


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    config = EmulatorConfig(seed=7, profiles=30, events=300, rate_limit_factor=None)
    with EmulatorServer(config) as server, http_client_for(server) as http:
        _start_jobs(http)
        _message_with_an_image(http)
        yield http


def check(op: Operation, response: httpx.Response) -> Any:
    """Assert ``response`` is a spec-valid answer of ``op`` and return its JSON (or None)."""
    assert response.status_code < 500, f"{op.operation_id}: {response.text[:500]}"
    if not response.content:
        assert response.status_code in (202, 204), (
            f"{op.operation_id}: empty {response.status_code}"
        )
        return None
    body = response.json()
    problems = errors_of(op, response.status_code, body)
    assert not problems, f"{op.operation_id} {response.status_code}:\n" + "\n".join(problems[:20])
    return body


def _collection_for(path: str) -> str:
    """``/api/lists/{id}/profiles`` → ``/api/lists``: where the first path id comes from."""
    return path[: path.index("/{")]


#: collections Klaviyo does not list: (listing to take the id from, which may itself
#: need a parent id; relationship whose first linked id to use, or None for the
#: listed resource's own id)
ID_SOURCES: dict[str, tuple[str, str | None]] = {
    "/api/campaign-messages": ("/api/campaigns", "campaign-messages"),
    "/api/campaign-send-jobs": ("/api/campaigns", None),
    "/api/campaign-recipient-estimation-jobs": ("/api/campaigns", None),
    "/api/campaign-recipient-estimations": ("/api/campaigns", None),
    "/api/flow-actions": ("/api/flows/{id}/flow-actions", None),
    "/api/flow-messages": ("/api/flow-actions/{id}/flow-messages", None),
    "/api/object-schemas": ("/api/object-types", "schema-versions"),
    "/api/object-records": ("/api/object-types/{id}/object-records", None),
    "/api/source-mappings": ("/api/object-schemas/{id}/relationships/source-mapping", None),
    "/api/form-versions": ("/api/forms/{id}/form-versions", None),
    "/api/metric-properties": ("/api/metrics/{id}/metric-properties", None),
}


def _fill(client: httpx.Client, op: Operation) -> str:
    if op.operation_id in SET_UP_IDS:
        return op.path.replace("{id}", SET_UP_IDS[op.operation_id])
    return _fill_path(client, op.path, op)


def _fill_path(client: httpx.Client, template: str, op: Operation) -> str:
    path = template
    for name in _PARAM.findall(template):
        collection = _collection_for(path)
        source, relationship = ID_SOURCES.get(collection, (collection, None))
        if "{" in source:
            source = _fill_path(client, source, op)
        listing = catalog.match("GET", source)[0]
        r = client.get(source, params=REQUIRED_PARAMS.get(listing.operation_id, {}))
        assert r.status_code == 200, f"listing {source} for {op.operation_id}: {r.text[:300]}"
        data = r.json()["data"]
        items = data if isinstance(data, list) else [data]  # a to-one relationship's linkage
        assert items, f"{source} is empty; cannot exercise {op.operation_id}"
        first = items[0]
        ident = (
            first["id"]
            if relationship is None
            else (first["relationships"][relationship]["data"][0]["id"])
        )
        path = path.replace(f"{{{name}}}", ident, 1)
    return path


def _variants(op: Operation) -> list[dict[str, str]]:
    base = dict(REQUIRED_PARAMS.get(op.operation_id, {}))
    variants = [base]
    variants += [{**base, "include": inc} for inc in op.include]
    for rtype, names in op.additional_fields.items():
        variants.append({**base, f"additional-fields[{rtype}]": ",".join(names)})
    return variants


@pytest.mark.parametrize("op", GETS, ids=lambda op: op.operation_id)
def test_every_emulated_get_matches_the_spec(client: httpx.Client, op: Operation) -> None:
    path = _fill(client, op)
    for params in _variants(op):
        body = check(op, client.get(path, params=params))
        assert body is not None
        assert "data" in body


def test_error_bodies_match_the_spec(client: httpx.Client) -> None:
    get_profiles = catalog.get("get_profiles")
    check(get_profiles, client.get("/api/profiles", params={"filter": "equals(nope,1)"}))
    check(get_profiles, client.get("/api/profiles", headers={"Authorization": "Bearer x"}))
    check(catalog.get("get_profile"), client.get("/api/profiles/01NOSUCHPROFILE000000000000"))


def _send(client: httpx.Client, op_id: str, path: str, body: Any = None) -> Any:
    op = catalog.get(op_id)
    response = client.request(op.method, path, json=body)
    assert response.status_code == op.success_status or op_id == "create_or_update_profile", (
        f"{op_id}: {response.status_code} {response.text[:300]}"
    )
    return check(op, response)


def _profiles(*emails: str, consent: str | None = None) -> dict[str, Any]:
    data = []
    for email in emails:
        attributes: dict[str, Any] = {"email": email}
        if consent:
            attributes["subscriptions"] = {"email": {"marketing": {"consent": consent}}}
        data.append({"type": "profile", "attributes": attributes})
    return {"data": data}


def test_every_emulated_write_matches_the_spec(client: httpx.Client) -> None:
    profile = _send(
        client,
        "create_profile",
        "/api/profiles",
        {"data": {"type": "profile", "attributes": {"email": "writes@example.com"}}},
    )
    pid = profile["data"]["id"]
    _send(
        client,
        "update_profile",
        f"/api/profiles/{pid}",
        {"data": {"type": "profile", "id": pid, "attributes": {"first_name": "W"}}},
    )
    upsert = {"data": {"type": "profile", "attributes": {"email": "upsert@example.com"}}}
    created = client.post("/api/profile-import", json=upsert)
    updated = client.post("/api/profile-import", json=upsert)
    assert (created.status_code, updated.status_code) == (201, 200)
    check(catalog.get("create_or_update_profile"), created)
    check(catalog.get("create_or_update_profile"), updated)

    new_list = _send(
        client, "create_list", "/api/lists", {"data": {"type": "list", "attributes": {"name": "W"}}}
    )
    lid = new_list["data"]["id"]
    _send(
        client,
        "update_list",
        f"/api/lists/{lid}",
        {"data": {"type": "list", "id": lid, "attributes": {"name": "W2"}}},
    )
    members = {"data": [{"type": "profile", "id": pid}]}
    _send(client, "add_profiles_to_list", f"/api/lists/{lid}/relationships/profiles", members)
    _send(client, "remove_profiles_from_list", f"/api/lists/{lid}/relationships/profiles", members)

    to_list = {"list": {"data": {"type": "list", "id": lid}}}
    _send(
        client,
        "bulk_subscribe_profiles",
        "/api/profile-subscription-bulk-create-jobs",
        {
            "data": {
                "type": "profile-subscription-bulk-create-job",
                "attributes": {"profiles": _profiles("sub@example.com", consent="SUBSCRIBED")},
                "relationships": to_list,
            }
        },
    )
    _send(
        client,
        "bulk_unsubscribe_profiles",
        "/api/profile-subscription-bulk-delete-jobs",
        {
            "data": {
                "type": "profile-subscription-bulk-delete-job",
                "attributes": {"profiles": _profiles("sub@example.com", consent="UNSUBSCRIBED")},
                "relationships": to_list,
            }
        },
    )

    definition = {
        "condition_groups": [
            {
                "conditions": [
                    {"type": "profile-group-membership", "is_member": True, "group_ids": [lid]}
                ]
            }
        ]
    }
    segment = _send(
        client,
        "create_segment",
        "/api/segments",
        {"data": {"type": "segment", "attributes": {"name": "W", "definition": definition}}},
    )
    sid = segment["data"]["id"]
    _send(
        client,
        "update_segment",
        f"/api/segments/{sid}",
        {"data": {"type": "segment", "id": sid, "attributes": {"name": "W2"}}},
    )
    _send(client, "delete_segment", f"/api/segments/{sid}")
    _send(client, "delete_list", f"/api/lists/{lid}")

    metric = {"data": {"type": "metric", "attributes": {"name": "Contract Metric"}}}
    event = {
        "type": "event",
        "attributes": {
            "properties": {"k": "v"},
            "metric": metric,
            "profile": {"data": {"type": "profile", "attributes": {"email": "ev@example.com"}}},
        },
    }
    _send(client, "create_event", "/api/events", {"data": event})
    _send(
        client,
        "bulk_create_events",
        "/api/event-bulk-create-jobs",
        {
            "data": {
                "type": "event-bulk-create-job",
                "attributes": {
                    "events-bulk-create": {
                        "data": [
                            {
                                "type": "event-bulk-create",
                                "attributes": {
                                    "profile": {
                                        "data": {
                                            "type": "profile",
                                            "attributes": {"email": "bulk.ev@example.com"},
                                        }
                                    },
                                    "events": {
                                        "data": [
                                            {
                                                "type": "event",
                                                "attributes": {
                                                    "properties": {},
                                                    "metric": metric,
                                                },
                                            }
                                        ]
                                    },
                                },
                            }
                        ]
                    }
                },
            }
        },
    )


def test_error_bodies_of_writes_match_the_spec(client: httpx.Client) -> None:
    body = {"data": {"type": "profile", "attributes": {"email": "twice@example.com"}}}
    create = catalog.get("create_profile")
    assert client.post("/api/profiles", json=body).status_code == 201
    duplicate = client.post("/api/profiles", json=body)
    assert duplicate.status_code == 409
    check(create, duplicate)
    invalid = client.post(
        "/api/profiles", json={"data": {"type": "profile", "attributes": {"email": "nope"}}}
    )
    assert invalid.status_code == 400
    check(create, invalid)
