"""Universal content: blocks shared by many templates (list, get, create, update, delete).

Klaviyo creates and updates only the simple block types through the API (button,
drop shadow, horizontal rule, HTML, image, spacer, text); each definition is a block
(``content_type: "block"``) whose ``data`` is an object. Screenshots are never
generated here, as for content no template has rendered yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    not_found,
    page_of,
    page_outcome,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso, ulid
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["UniversalContentBackend", "UniversalContentRecord"]

TYPE = "template-universal-content"
#: the block types the API may create or update (the spec's request oneOf)
WRITABLE_BLOCKS = ("button", "drop_shadow", "horizontal_rule", "html", "image", "spacer", "text")
_PTR = "/data/attributes"
#: the members a block's ``data`` must have (the other writable blocks take ``data: null``)
_DATA_NEEDS: dict[str, tuple[str, ...]] = {
    "html": ("content", "display_options"),
    "text": ("content", "display_options", "styles"),
}


@dataclass(slots=True)
class UniversalContentRecord:
    seq: int
    id: str
    name: str
    definition: dict[str, Any]
    created: float
    updated: float


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidError("name must be a non-empty string", pointer=f"{_PTR}/name")
    return value


def _definition(value: Any) -> dict[str, Any]:
    ptr = f"{_PTR}/definition"
    if not isinstance(value, dict):
        raise InvalidError("definition must be a block object", pointer=ptr)
    if value.get("content_type") != "block":
        raise InvalidError("definition.content_type must be 'block'", pointer=f"{ptr}/content_type")
    if value.get("type") not in WRITABLE_BLOCKS:
        raise InvalidError(
            f"definition.type must be one of {', '.join(WRITABLE_BLOCKS)}, "
            f"not {value.get('type')!r}",
            pointer=f"{ptr}/type",
        )
    if "data" not in value:
        raise InvalidError("definition.data is required", pointer=f"{ptr}/data")
    data, needs = value["data"], _DATA_NEEDS.get(value["type"])
    if needs is None:
        if data is not None and not isinstance(data, dict):
            raise InvalidError("definition.data must be an object or null", pointer=f"{ptr}/data")
        return value
    if not isinstance(data, dict):
        raise InvalidError("definition.data must be an object", pointer=f"{ptr}/data")
    for member in needs:
        if member not in data:
            raise InvalidError(
                f"definition.data.{member} is required", pointer=f"{ptr}/data/{member}"
            )
    if not isinstance(data["content"], str):
        raise InvalidError(
            "definition.data.content must be a string", pointer=f"{ptr}/data/content"
        )
    return value


def _block(kind: str, content: str) -> dict[str, Any]:
    data: dict[str, Any] = {"content": content, "display_options": {}}
    if kind == "text":
        data["styles"] = {}
    return {"content_type": "block", "type": kind, "data": data}


class UniversalContentBackend(TagBackend):
    operations = frozenset(
        {
            "get_all_universal_content",
            "get_universal_content",
            "create_universal_content",
            "update_universal_content",
            "delete_universal_content",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.contents: dict[str, UniversalContentRecord] = {}
        if ctx.store.profiles:  # a generated account shares a footer and a banner
            footer = "<p>You received this email because you subscribed.</p>"
            self._add("Footer", _block("html", footer))
            self._add("Announcement bar", _block("text", "Free shipping over $50"))

    @staticmethod
    def resource(c: UniversalContentRecord) -> Resource:
        attrs = {
            "name": c.name,
            "definition": c.definition,
            "created": iso(c.created),
            "updated": iso(c.updated),
            "screenshot_status": "never_generated",
            "screenshot_url": "",
        }
        return Resource(TYPE, c.id, attrs)

    def _get(self, call: Call) -> UniversalContentRecord:
        cid = self.path_id(call)
        content = self.contents.get(cid)
        if content is None:
            raise not_found(TYPE, cid)
        return content

    # -- reads -------------------------------------------------------------------------

    def get_all_universal_content(self, call: Call) -> Outcome:
        by_seq = {c.seq: c for c in self.contents.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s)

        getters = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
            "definition.content_type": lambda s: by_seq[s].definition.get("content_type"),
            "definition.type": lambda s: by_seq[s].definition.get("type"),
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self.resource(by_seq[s]))

    def get_universal_content(self, call: Call) -> Outcome:
        return Outcome(data=self.resource(self._get(call)))

    # -- writes ------------------------------------------------------------------------

    def create_universal_content(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, TYPE))
        name = _name(attrs.get("name"))
        definition = _definition(attrs.get("definition"))
        return Outcome(data=self.resource(self._add(name, definition)), status=201)

    def _add(self, name: str, definition: dict[str, Any]) -> UniversalContentRecord:
        now = self.ctx.now()
        seq = self.store.next_seq()
        content = UniversalContentRecord(
            seq=seq,
            id=ulid(now, seq, len(self.contents)),
            name=name,
            definition=definition,
            created=now,
            updated=now,
        )
        self.contents[content.id] = content
        return content

    def update_universal_content(self, call: Call) -> Outcome:
        content = self._get(call)
        data = data_of(call.body, TYPE)
        if data.get("id") != content.id:
            raise InvalidError("the body's id must match the id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        # validate both before changing either: a refused update leaves the content as it was
        name = _name(attrs["name"]) if attrs.get("name") is not None else content.name
        definition = (
            _definition(attrs["definition"])
            if attrs.get("definition") is not None
            else content.definition
        )
        content.name, content.definition = name, definition
        content.updated = self.ctx.now()
        return Outcome(data=self.resource(content))

    def delete_universal_content(self, call: Call) -> Outcome:
        content = self._get(call)
        del self.contents[content.id]
        return Outcome(status=204)
