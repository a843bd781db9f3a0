"""Templates: rendering rules, CRUD validation, the API-created cap, clone."""

from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend.errors import InvalidError, NotFoundError
from kbridge.emulator.backend.templates import MAX_API_TEMPLATES, render
from kbridge.emulator.query import Query
from tests.unit.emulator.backend.conftest import Caller

pytestmark = pytest.mark.unit


def body(**attrs: Any) -> dict[str, Any]:
    attrs.setdefault("name", "T")
    attrs.setdefault("editor_type", "CODE")
    attrs.setdefault("html", "<p>{{ first_name }}</p>")
    return {"data": {"type": "template", "attributes": attrs}}


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("Hi {{ first_name }}!", {"first_name": "Ada"}, "Hi Ada!"),
        ("Hi {{first_name}}!", {}, "Hi !"),
        ("{{ person.address.city }}", {"person": {"address": {"city": "Oslo"}}}, "Oslo"),
        ("{{ items.1 }}", {"items": ["a", "b"]}, "b"),
        ("{{ first_name|default:'friend' }}", {}, "friend"),
        ('{{ first_name|default:"friend" }}', {"first_name": "Bo"}, "Bo"),
        ("{% if vip %}Gold{% else %}Std{% endif %}", {"vip": True}, "Gold"),
        ("{% if vip %}Gold{% else %}Std{% endif %}", {}, "Std"),
        ("{% if vip %}Gold{% endif %}.", {"vip": 0}, "."),
        ("{% unknown tag %}x", {}, "x"),
        ("{{ n }}", {"n": 3}, "3"),
    ],
)
def test_render(source: str, context: dict[str, Any], expected: str) -> None:
    assert render(source, context) == expected


def test_render_keeps_none() -> None:
    assert render(None, {"a": 1}) is None


def test_create_get_update_delete(ecall: Caller) -> None:
    t = ecall("create_template", body=body()).data
    assert t is not None
    assert not isinstance(t, list)
    assert t.attributes["editor_type"] == "CODE"
    ecall("update_template", body={"data": {"type": "template", "id": t.id,
          "attributes": {"name": "Renamed", "text": "plain"}}}, id=t.id)  # fmt: skip
    got = ecall("get_template", id=t.id).data
    assert got.attributes["name"] == "Renamed"
    assert got.attributes["text"] == "plain"
    assert got.attributes["html"] == "<p>{{ first_name }}</p>"
    ecall("delete_template", id=t.id)
    with pytest.raises(NotFoundError):
        ecall("get_template", id=t.id)


def test_create_validation_names_the_field(ecall: Caller) -> None:
    with pytest.raises(InvalidError) as err:
        ecall("create_template", body=body(editor_type="SIMPLE"))
    assert err.value.pointer == "/data/attributes/editor_type"
    with pytest.raises(InvalidError) as err:
        ecall("create_template", body=body(html=None))
    assert err.value.pointer == "/data/attributes/html"
    with pytest.raises(InvalidError) as err:
        ecall("create_template", body=body(name=""))
    assert err.value.pointer == "/data/attributes/name"


def test_render_and_clone(ecall: Caller) -> None:
    t = ecall("create_template", body=body(text="Hi {{ first_name }}")).data
    out = ecall("render_template", body={"data": {"type": "template", "id": t.id,
                "attributes": {"context": {"first_name": "Ada"}}}})  # fmt: skip
    assert out.status == 201
    assert out.data.attributes["html"] == "<p>Ada</p>"
    assert out.data.attributes["text"] == "Hi Ada"
    clone = ecall("clone_template", body={"data": {"type": "template", "id": t.id}})
    assert clone.status == 201
    assert clone.data.id != t.id
    assert clone.data.attributes["name"] == "Clone of T"
    assert clone.data.attributes["html"] == t.attributes["html"]
    with pytest.raises(InvalidError):
        ecall("render_template", body={"data": {"type": "template", "id": t.id,
              "attributes": {"context": "nope"}}})  # fmt: skip


def test_the_api_creation_cap_and_page_size(ecall: Caller) -> None:
    for k in range(MAX_API_TEMPLATES):
        ecall("create_template", body=body(name=f"T{k}"))
    with pytest.raises(InvalidError) as err:
        ecall("create_template", body=body(name="one too many"))
    assert "1000" in err.value.detail
    page = ecall("get_templates", Query()).data
    assert len(page.items) == 10
    assert page.next_cursor is not None


def test_definition_is_an_additional_field(ecall: Caller) -> None:
    definition = {"rows": [{"type": "text", "content": "Hi"}]}
    t = ecall("create_template", body=body(editor_type="SYSTEM_DRAGGABLE", html=None,
              definition=definition)).data  # fmt: skip
    assert "definition" not in ecall("get_template", id=t.id).data.attributes
    wants = Query(additional_fields={"template": ("definition",)})
    assert ecall("get_template", wants, id=t.id).data.attributes["definition"] == definition
    listed = ecall("get_templates", wants).data.items
    assert listed[0].attributes["definition"] == definition
