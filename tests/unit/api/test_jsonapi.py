"""Request documents from plain values; responses to resources with included resolved."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbridge.api import Document, Resource, build_document, decode_document, identifiers
from kbridge.core import ConfigurationError

pytestmark = pytest.mark.unit


def test_build_document_from_plain_values() -> None:
    doc = build_document(
        "profile-bulk-import-job",
        attributes={"profiles": {"data": []}},
        relationships={"lists": [("list", "Y6nRLr")], "owner": {"type": "account", "id": "A1"}},
    )
    assert doc == {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": []}},
            "relationships": {
                "lists": {"data": [{"type": "list", "id": "Y6nRLr"}]},
                "owner": {"data": {"type": "account", "id": "A1"}},
            },
        }
    }


def test_build_document_with_id_meta_resources_and_clearing() -> None:
    target = Resource("profile", "01P")
    doc = build_document(
        "profile-merge",
        id="01D",
        relationships={"profiles": [target], "cleared": None, "emptied": []},
        meta={"patch_properties": {"unset": "x"}},
    )
    data = doc["data"]
    assert data["id"] == "01D"
    assert data["attributes"] == {}
    assert data["relationships"]["profiles"] == {"data": [{"type": "profile", "id": "01P"}]}
    assert data["relationships"]["cleared"] == {"data": None}
    assert data["relationships"]["emptied"] == {"data": []}
    assert data["meta"] == {"patch_properties": {"unset": "x"}}


def test_build_document_names_a_bad_relationship() -> None:
    with pytest.raises(ConfigurationError, match="'lists'"):
        build_document("list", relationships={"lists": 42})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="type"):
        build_document("")


def test_identifiers() -> None:
    assert identifiers("profile", ["a", "b"]) == {
        "data": [{"type": "profile", "id": "a"}, {"type": "profile", "id": "b"}]
    }


BODY = {
    "data": [
        {
            "type": "event",
            "id": "E1",
            "attributes": {"timestamp": 1},
            "relationships": {
                "profile": {"data": {"type": "profile", "id": "P1"}, "links": {"self": "s"}},
                "metric": {"data": {"type": "metric", "id": "M9"}},
                "attributions": {"data": []},
            },
            "links": {"self": "https://a.klaviyo.com/api/events/E1/"},
        }
    ],
    "included": [{"type": "profile", "id": "P1", "attributes": {"email": "p@x.co"}}],
    "links": {"self": "https://a.klaviyo.com/api/events", "next": None},
    "meta": {"agent_hints": {"next_steps": []}},
}


def test_decode_resolves_included() -> None:
    doc = decode_document(BODY)
    (event,) = doc.resources
    assert (event.type, event.id, event["timestamp"]) == ("event", "E1", 1)
    assert event.links["self"].endswith("/E1/")
    profile = event.related_one("profile")
    assert profile is not None
    assert profile["email"] == "p@x.co"
    metric = event.related_one("metric")  # linked but not included: type and id only
    assert metric == Resource("metric", "M9")
    assert event.related("attributions") == []
    assert event.related("missing") == []
    assert doc.next_url is None
    assert doc.included[0].id == "P1"
    assert doc.meta == {"agent_hints": {"next_steps": []}}


def test_decode_single_and_empty_documents() -> None:
    single = decode_document({"data": {"type": "list", "id": "L1", "attributes": {"name": "VIP"}}})
    assert isinstance(single.data, Resource)
    assert single.resources[0].get("name") == "VIP"
    assert single.first is single.data
    collection = decode_document(BODY)
    assert collection.first is collection.resources[0]
    assert decode_document({"data": []}).first is None
    assert decode_document({"data": None}).resources == ()
    assert decode_document("not a document").data is None
    paged = decode_document({"data": [], "links": {"next": "https://a.klaviyo.com/api/x?page=2"}})
    assert paged.next_url == "https://a.klaviyo.com/api/x?page=2"


def test_records_are_the_decoded_objects_and_need_no_resources() -> None:
    doc = decode_document({**BODY, "data": [*BODY["data"], "not an object", None]})
    (record,) = doc.records
    assert record is BODY["data"][0]  # the decoded mapping itself: nothing copied or built
    assert doc.resources[0].id == "E1"  # resources are still there when asked for
    single = decode_document({"data": {"type": "list", "id": "L1"}})
    assert [r["id"] for r in single.records] == ["L1"]
    assert decode_document({"data": None}).records == ()
    built = Document(data=(Resource("tag", "T1", {"name": "vip"}),))
    assert [(r["id"], r["attributes"]) for r in built.records] == [("T1", {"name": "vip"})]


def test_a_decoded_document_equals_one_built_from_its_resources() -> None:
    doc = decode_document(BODY)
    built = Document(data=doc.resources, included=doc.included, links=doc.links, meta=doc.meta)
    assert doc == built
    assert doc != Document(data=None)
    assert "E1" in repr(doc)


# -- tolerant decoding: whatever Klaviyo adds or nulls, a page still decodes ----------------

_anything = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200)
@given(
    attributes=st.none() | st.dictionaries(st.text(max_size=8), _anything, max_size=5),
    odd=st.dictionaries(
        st.sampled_from(["relationships", "links", "meta", "x_new_member"]), _anything, max_size=4
    ),
    top=st.dictionaries(st.sampled_from(["links", "meta", "jsonapi", "x_new"]), _anything),
)
def test_resources_with_nulls_unknown_members_and_odd_shapes_still_decode(
    attributes: dict[str, Any] | None, odd: dict[str, Any], top: dict[str, Any]
) -> None:
    resource = {"type": "profile", "id": "01X", "attributes": attributes, **odd}
    doc = decode_document({"data": [resource], "included": [resource], **top})
    (decoded,) = doc.resources
    assert dict(decoded.attributes) == (attributes or {})  # unknown attributes kept as given
    assert decoded.get("x_not_there") is None
    for name in decoded.relationships:
        assert all(isinstance(r, Resource) for r in decoded.related(name))
    assert doc.next_url is None or isinstance(doc.next_url, str)
