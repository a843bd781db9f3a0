"""The last operations the emulator learned: profile conversations, client reviews,
push tokens and IP allowlists, and form and segment reports.

Every body, errors included, must validate against the spec's schema for its
status; where the official SDK ``klaviyo-api`` has the call, its models must
parse the answer too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from klaviyo_api import KlaviyoAPI

from kbridge import catalog
from kbridge.emulator import EmulatorConfig, EmulatorServer
from kbridge.testing.plugin import http_client_for
from tests.contract.test_conformance_flows_images_tags import check

pytestmark = pytest.mark.contract

CONFIG = EmulatorConfig(seed=23, profiles=30, events=400, rate_limit_factor=None)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with http_client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(server: EmulatorServer) -> KlaviyoAPI:
    return KlaviyoAPI(server.api_key, max_delay=1, max_retries=0, test_host=server.base_url)


def get(http: httpx.Client, op_id: str, path: str, status: int = 200) -> object:
    op = catalog.get(op_id)
    response = http.get(path)
    assert response.status_code == status, f"{op_id}: {response.text[:300]}"
    return check(op, response)


def _profiles(http: httpx.Client) -> tuple[str, str]:
    """A profile with a phone number (an SMS conversation) and one without."""
    with_phone = http.post(
        "/api/profiles",
        json={
            "data": {
                "type": "profile",
                "attributes": {"email": "texter@example.com", "phone_number": "+15005550177"},
            }
        },
    )
    without = http.post(
        "/api/profiles",
        json={"data": {"type": "profile", "attributes": {"email": "quiet@example.com"}}},
    )
    return with_phone.json()["data"]["id"], without.json()["data"]["id"]


def test_a_profile_with_a_phone_has_one_sms_conversation(http: httpx.Client) -> None:
    texter, quiet = _profiles(http)
    one = get(http, "get_conversation_for_profile", f"/api/profiles/{texter}/conversation")
    assert isinstance(one, dict)
    assert one["data"]["attributes"] == {"channel": "sms"}
    assert one["data"]["relationships"]["profile"]["data"] == {"type": "profile", "id": texter}
    conversation = one["data"]["id"]
    ident = get(
        http,
        "get_conversation_id_for_profile",
        f"/api/profiles/{texter}/relationships/conversation",
    )
    assert ident == {"data": {"type": "conversation", "id": conversation}, "links": ident["links"]}  # type: ignore[index]
    many = get(http, "get_conversations_for_profile", f"/api/profiles/{texter}/conversations")
    assert [c["id"] for c in many["data"]] == [conversation]  # type: ignore[index]
    ids = get(
        http,
        "get_conversation_ids_for_profile",
        f"/api/profiles/{texter}/relationships/conversations",
    )
    assert ids["data"] == [{"type": "conversation", "id": conversation}]  # type: ignore[index]
    # the id is the one a reply is posted to
    reply = {
        "data": {
            "type": "conversation-message",
            "attributes": {"body": "Hi"},
            "relationships": {
                "conversation": {"data": {"type": "conversation", "id": conversation}}
            },
        }
    }
    assert http.post("/api/conversation-messages", json=reply).status_code == 202
    none = get(http, "get_conversation_for_profile", f"/api/profiles/{quiet}/conversation")
    assert none["data"] is None  # type: ignore[index]
    empty = get(http, "get_conversations_for_profile", f"/api/profiles/{quiet}/conversations")
    assert empty["data"] == []  # type: ignore[index]
    get(http, "get_conversation_for_profile", "/api/profiles/NOPE/conversation", status=404)


def test_the_sdk_reads_profile_conversations(http: httpx.Client, sdk: KlaviyoAPI) -> None:
    texter = http.get("/api/profiles", params={"filter": "equals(email,'texter@example.com')"})
    found = texter.json()["data"]
    pid = found[0]["id"] if found else _profiles(http)[0]
    one = sdk.Profiles.get_conversation_for_profile(pid).data
    assert one.attributes.channel == "sms"
    assert sdk.Profiles.get_conversation_id_for_profile(pid).data.id == one.id
    assert [c.id for c in sdk.Profiles.get_conversations_for_profile(pid).data] == [one.id]
    assert [c.id for c in sdk.Profiles.get_conversation_ids_for_profile(pid).data] == [one.id]


# -- client endpoints: the public key as company_id, no private key -------------------


@pytest.fixture(scope="module")
def public(server: EmulatorServer) -> Iterator[httpx.Client]:
    headers = {"revision": catalog.get("get_client_reviews").revision}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def company(http: httpx.Client) -> str:
    key: str = http.get("/api/accounts").json()["data"][0]["attributes"]["public_api_key"]
    return key


def client_call(
    public: httpx.Client,
    op_id: str,
    company: str,
    *,
    status: int | None = None,
    body: object = None,
    **params: str,
) -> Any:
    op = catalog.get(op_id)
    response = public.request(
        op.method,
        op.path.replace("{id}", params.pop("id", "")),
        params={"company_id": company, **params},
        json=body,
    )
    want = op.success_status if status is None else status
    assert response.status_code == want, f"{op_id}: {response.text[:400]}"
    return check(op, response)


def push_body(kind: str, token: str, email: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "token": token,
        "platform": "ios",
        "vendor": "apns",
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
    }
    return {"data": {"type": kind, "attributes": attrs}}


def test_a_client_push_token_is_the_profiles_until_unregistered(
    http: httpx.Client, public: httpx.Client, company: str
) -> None:
    email = "phone-owner@example.com"
    client_call(
        public,
        "create_client_push_token",
        company,
        body=push_body("push-token", "apns-token-1", email),
    )
    profile = http.get("/api/profiles", params={"filter": f"equals(email,'{email}')"})
    pid = profile.json()["data"][0]["id"]
    tokens = http.get(f"/api/profiles/{pid}/push-tokens").json()["data"]
    assert [t["attributes"]["token"] for t in tokens] == ["apns-token-1"]
    client_call(
        public,
        "unregister_client_push_token",
        company,
        body=push_body("push-token-unregister", "apns-token-1", email),
    )
    assert http.get(f"/api/profiles/{pid}/push-tokens").json()["data"] == []
    bad = push_body("push-token", "apns-token-2", email)
    bad["data"]["attributes"]["platform"] = "windows"
    client_call(public, "create_client_push_token", company, status=400, body=bad)


def review_body(email: str, **attrs: Any) -> dict[str, Any]:
    base = {
        "review_type": "review",
        "email": email,
        "author": "Kim L.",
        "rating": 5,
        "content": "Great fit",
        "title": "Love it",
    }
    return {"data": {"type": "review", "attributes": {**base, **attrs}}}


def test_a_client_review_waits_for_moderation_before_it_is_public(
    http: httpx.Client, public: httpx.Client, company: str
) -> None:
    before = client_call(public, "get_client_reviews", company, **{"page[size]": "100"})
    shown = {r["id"] for r in before["data"]}
    private = {
        r["id"]: r for r in http.get("/api/reviews", params={"page[size]": "100"}).json()["data"]
    }
    public_statuses = {"published", "featured"}
    assert shown == {
        i for i, r in private.items() if r["attributes"]["status"]["value"] in public_statuses
    }
    assert all("email" not in r["attributes"] for r in before["data"])
    item = http.get("/api/catalog-items").json()["data"][0]
    product = {"external_id": item["attributes"]["external_id"], "integration_key": "shopify"}
    client_call(
        public,
        "create_client_review",
        company,
        body=review_body("kim@example.com", product=product),
    )
    mine = http.get("/api/reviews", params={"filter": "contains(content,'Great fit')"})
    (review,) = mine.json()["data"]
    assert review["attributes"]["status"] == {"value": "pending"}
    assert review["attributes"]["email"] == "kim@example.com"
    assert review["relationships"]["item"]["data"]["id"] == item["id"]
    after = client_call(public, "get_client_reviews", company, **{"page[size]": "100"})
    assert review["id"] not in {r["id"] for r in after["data"]}
    publish = {
        "data": {
            "type": "review",
            "id": review["id"],
            "attributes": {"status": {"value": "published"}},
        }
    }
    assert http.patch(f"/api/reviews/{review['id']}", json=publish).status_code == 200
    five = client_call(
        public, "get_client_reviews", company, sort="-created", filter="equals(rating,5)"
    )
    assert five["data"][0]["id"] == review["id"]
    assert all(r["attributes"]["rating"] == 5 for r in five["data"])
    unknown = review_body("kim@example.com", product={**product, "external_id": "NOPE"})
    client_call(public, "create_client_review", company, status=400, body=unknown)
    missing = review_body("kim@example.com", product=product)
    del missing["data"]["attributes"]["content"]
    client_call(public, "create_client_review", company, status=400, body=missing)


def test_review_values_report_recounts_the_public_reviews(
    http: httpx.Client, public: httpx.Client, company: str
) -> None:
    reviews = http.get("/api/reviews", params={"page[size]": "100"}).json()["data"]
    shown = [r for r in reviews if r["attributes"]["status"]["value"] in ("published", "featured")]
    ratings = [
        r["attributes"]["rating"] for r in shown if r["attributes"]["review_type"] == "review"
    ]
    stats = "average_rating,total_reviews,total_questions,total_ratings"
    whole = client_call(
        public,
        "get_client_review_values_reports",
        company,
        group_by="company_id",
        statistics=stats,
        timeframe="all_time",
    )
    (report,) = whole["data"]
    (row,) = report["attributes"]["results"]
    assert row["groupings"] == {"company_id": company}
    figures = row["statistics"]
    assert figures["total_reviews"] == len(ratings)
    assert figures["total_ratings"] == len(ratings)
    assert figures["average_rating"] == round(sum(ratings) / len(ratings), 2)
    assert figures["total_questions"] == sum(
        r["attributes"]["review_type"] == "question" for r in shown
    )
    by_product = client_call(
        public,
        "get_client_review_values_reports",
        company,
        group_by="product_id",
        statistics="total_reviews",
        timeframe="all_time",
    )
    rows = by_product["data"][0]["attributes"]["results"]
    assert sum(r["statistics"]["total_reviews"] for r in rows) == len(ratings)
    first = rows[0]["groupings"]["product_id"]
    narrowed = client_call(
        public,
        "get_client_review_values_reports",
        company,
        group_by="product_id",
        statistics="total_reviews",
        timeframe="all_time",
        filter=f"any(product_external_ids,['{first}','NOPE'])",
    )
    assert narrowed["data"][0]["attributes"]["results"] == [rows[0]]
    client_call(
        public,
        "get_client_review_values_reports",
        company,
        status=400,
        group_by="product_id",
        statistics="loudness",
        timeframe="all_time",
    )


def test_the_ip_allowlist_is_one_global_list(public: httpx.Client, company: str) -> None:
    op = catalog.get("get_client_ip_allowlist")
    found = public.get("/client/ip-allowlists/integration-egress")
    assert found.status_code == 200, found.text
    body = check(op, found)
    assert body["data"]["id"] == "integration-egress"
    # the resource's own link is where it is read, not a private-API path
    assert body["data"]["links"]["self"].endswith("/client/ip-allowlists/integration-egress/")
    assert body["data"]["attributes"]["prefixes"]
    again = client_call(public, "get_client_ip_allowlist", company, id="integration-egress")
    assert again["data"]["attributes"]["sync_token"] == body["data"]["attributes"]["sync_token"]
    client_call(public, "get_client_ip_allowlist", company, id="other", status=404)


def test_the_sdk_reads_the_ip_allowlist(server: EmulatorServer) -> None:
    k = KlaviyoAPI("", max_delay=1, max_retries=0, test_host=server.base_url)
    found = k.Client.get_client_ip_allowlist("integration-egress").data
    assert found.id == "integration-egress"
    assert found.attributes.prefixes


# -- form and segment reports, computed over the account's own events and members ----


def report(http: httpx.Client, op_id: str, attributes: dict[str, Any], status: int = 200) -> Any:
    op = catalog.get(op_id)
    rtype = op.path.rsplit("/", 1)[-1][: -len("s")]
    response = http.post(op.path, json={"data": {"type": rtype, "attributes": attributes}})
    assert response.status_code == status, f"{op_id}: {response.text[:400]}"
    return check(op, response)


def form_event(http: httpx.Client, metric: str, email: str, form: str, version: str) -> None:
    body = {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {"form_id": form, "form_version_id": version},
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            },
        }
    }
    assert http.post("/api/events", json=body).status_code == 202


def test_form_reports_count_the_forms_events(http: httpx.Client, sdk: KlaviyoAPI) -> None:
    forms = http.get("/api/forms").json()["data"]
    a, b = forms[0]["id"], forms[1]["id"]
    for email in ("v1@example.com", "v2@example.com", "v1@example.com"):
        form_event(http, "Viewed Form", email, a, "V1")
    form_event(http, "Submitted Form", "v1@example.com", a, "V1")
    form_event(http, "Viewed Form", "v3@example.com", b, "V9")
    stats = ["viewed_form", "viewed_form_uniques", "submits", "submit_rate"]
    today = {"key": "today"}
    values = report(
        http,
        "query_form_values",
        {"statistics": stats, "timeframe": today, "group_by": ["form_id", "form_version_id"]},
    )
    rows = {r["groupings"]["form_id"]: r for r in values["data"]["attributes"]["results"]}
    assert rows[a]["groupings"] == {"form_id": a, "form_version_id": "V1"}
    assert rows[a]["statistics"] == {
        "viewed_form": 3,
        "viewed_form_uniques": 2,
        "submits": 1,
        "submit_rate": 0.5,
    }
    assert rows[b]["statistics"]["viewed_form"] == 1
    only_a = report(
        http,
        "query_form_values",
        {"statistics": ["viewed_form"], "timeframe": today, "filter": f'equals(form_id,"{a}")'},
    )
    assert [r["groupings"] for r in only_a["data"]["attributes"]["results"]] == [{"form_id": a}]
    series = report(
        http,
        "query_form_series",
        {"statistics": ["viewed_form"], "timeframe": {"key": "this_week"}, "interval": "daily"},
    )
    attrs = series["data"]["attributes"]
    by_form = {r["groupings"]["form_id"]: r["statistics"]["viewed_form"] for r in attrs["results"]}
    assert len(by_form[a]) == len(attrs["date_times"])
    assert sum(by_form[a]) == 3
    report(http, "query_form_values", {"statistics": ["opens"], "timeframe": today}, status=400)
    report(
        http,
        "query_form_values",
        {"statistics": ["submits"], "timeframe": today, "group_by": ["form_version_id"]},
        status=400,
    )
    sdk_values = sdk.Reporting.query_form_values(
        {
            "data": {
                "type": "form-values-report",
                "attributes": {"statistics": ["viewed_form"], "timeframe": today},
            }
        }
    )
    assert sdk_values.data.attributes.results


def _members(http: httpx.Client, segment: str) -> int:
    count, url = 0, f"/api/segments/{segment}/profiles"
    params: dict[str, str] | None = {"page[size]": "100"}
    while url:
        page = http.get(url, params=params).json()
        count += len(page["data"])
        url, params = page["links"].get("next"), None
    return count


def test_segment_reports_follow_the_members(http: httpx.Client, sdk: KlaviyoAPI) -> None:
    segment = http.get("/api/segments").json()["data"][0]["id"]
    members = _members(http, segment)
    stats = ["total_members", "members_added", "members_removed", "net_members_changed"]
    only = f'equals(segment_id,"{segment}")'
    values = report(
        http,
        "query_segment_values",
        {"statistics": stats, "timeframe": {"key": "today"}, "filter": only},
    )
    (row,) = values["data"]["attributes"]["results"]
    assert row["groupings"] == {"segment_id": segment}
    figures = row["statistics"]
    assert figures["total_members"] == members
    assert figures["net_members_changed"] == figures["members_added"] - figures["members_removed"]
    series = report(
        http,
        "query_segment_series",
        {
            "statistics": stats,
            "timeframe": {"key": "last_30_days"},
            "interval": "weekly",
            "filter": only,
        },
    )
    (line,) = series["data"]["attributes"]["results"]
    totals, added = line["statistics"]["total_members"], line["statistics"]["members_added"]
    assert totals == sorted(totals)  # nobody leaves a segment in the emulator's history
    assert totals[-1] - totals[0] == sum(added[1:])
    everyone = report(
        http,
        "query_segment_values",
        {"statistics": ["total_members"], "timeframe": {"key": "today"}},
    )
    assert len(everyone["data"]["attributes"]["results"]) == len(
        http.get("/api/segments").json()["data"]
    )
    sdk_series = sdk.Reporting.query_segment_series(
        {
            "data": {
                "type": "segment-series-report",
                "attributes": {
                    "statistics": ["total_members"],
                    "timeframe": {"key": "today"},
                    "interval": "hourly",
                },
            }
        }
    )
    assert sdk_series.data.attributes.date_times
