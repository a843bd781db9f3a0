"""``next_link``: a page's top-level ``links.next`` read from the end of its body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbridge.api.jsonapi import next_link
from kbridge.core import dumps
from kbridge.core.jsoncodec import JSONDecodeError

pytestmark = pytest.mark.unit


NEXT = "https://a.klaviyo.com/api/events?page%5Bcursor%5D=abc"


def _event(i: int, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "id": f"e{i}",
        "attributes": attributes,
        "links": {"self": f"https://a.klaviyo.com/api/events/e{i}/"},
    }


def test_top_level_links_after_data() -> None:
    body = dumps({"data": [_event(1), _event(2)], "links": {"self": "s", "next": NEXT}})
    assert next_link(body) == NEXT


def test_no_next_page() -> None:
    assert next_link(dumps({"data": [], "links": {"self": "s", "next": None}})) is None
    assert next_link(dumps({"data": []})) is None


def test_links_before_data_is_found_by_reading_the_whole_body() -> None:
    # the last "links" is the last resource's: read as the top level it does not parse
    body = dumps({"links": {"next": NEXT}, "data": [_event(1)]})
    assert next_link(body) == NEXT


def test_members_after_links_are_read_too() -> None:
    body = dumps({"data": [_event(1)], "links": {"next": NEXT}, "meta": {"count": 1}})
    assert next_link(body) == NEXT
    body = dumps({"data": [_event(1)], "links": {"next": NEXT}, "included": [_event(9)]})
    assert next_link(body) == NEXT


def test_a_links_member_inside_a_record_is_not_taken_for_the_page_s() -> None:
    body = dumps(
        {
            "links": {"next": NEXT},
            "data": [_event(1, event_properties={"links": {"next": "https://evil.example/"}})],
        }
    )
    assert next_link(body) == NEXT


def test_whitespace_as_a_pretty_printer_writes_it() -> None:
    body = json.dumps({"data": [_event(1)], "links": {"next": NEXT}}, indent=2).encode()
    assert next_link(body) == NEXT


def test_a_body_that_is_not_json_raises() -> None:
    with pytest.raises(JSONDecodeError):
        next_link(b'{"data": [{"id": "x"}], "links": {"next": "')


_texts = st.text(max_size=12)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_texts | st.just("links"), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    records=st.lists(st.dictionaries(_texts | st.just("links"), _values, max_size=4), max_size=4),
    nxt=st.none() | _texts,
    links_first=st.booleans(),
    extra=st.dictionaries(st.sampled_from(["meta", "included", "jsonapi"]), _values, max_size=2),
)
def test_it_agrees_with_decoding_the_whole_body(
    records: list[dict[str, Any]], nxt: str | None, links_first: bool, extra: dict[str, Any]
) -> None:
    links = {"self": "s", "next": nxt}
    doc = {"links": links, "data": records} if links_first else {"data": records, "links": links}
    doc.update(extra)
    expected = nxt if nxt else None
    assert next_link(dumps(doc)) == expected
