"""The last operations the emulator learned: profile conversations, client reviews,
push tokens and IP allowlists, and form and segment reports.

Every body, errors included, must validate against the spec's schema for its
status; where the official SDK ``klaviyo-api`` has the call, its models must
parse the answer too.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    with_phone = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {
        "email": "texter@example.com", "phone_number": "+15005550177"}}})  # fmt: skip
    without = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {
        "email": "quiet@example.com"}}})  # fmt: skip
    return with_phone.json()["data"]["id"], without.json()["data"]["id"]


def test_a_profile_with_a_phone_has_one_sms_conversation(http: httpx.Client) -> None:
    texter, quiet = _profiles(http)
    one = get(http, "get_conversation_for_profile", f"/api/profiles/{texter}/conversation")
    assert isinstance(one, dict)
    assert one["data"]["attributes"] == {"channel": "sms"}
    assert one["data"]["relationships"]["profile"]["data"] == {"type": "profile", "id": texter}
    conversation = one["data"]["id"]
    ident = get(http, "get_conversation_id_for_profile",
                f"/api/profiles/{texter}/relationships/conversation")  # fmt: skip
    assert ident == {"data": {"type": "conversation", "id": conversation}, "links": ident["links"]}  # type: ignore[index]
    many = get(http, "get_conversations_for_profile", f"/api/profiles/{texter}/conversations")
    assert [c["id"] for c in many["data"]] == [conversation]  # type: ignore[index]
    ids = get(http, "get_conversation_ids_for_profile",
              f"/api/profiles/{texter}/relationships/conversations")  # fmt: skip
    assert ids["data"] == [{"type": "conversation", "id": conversation}]  # type: ignore[index]
    # the id is the one a reply is posted to
    reply = {"data": {"type": "conversation-message", "attributes": {"body": "Hi"},
             "relationships": {"conversation": {"data": {"type": "conversation",
                                                         "id": conversation}}}}}  # fmt: skip
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
