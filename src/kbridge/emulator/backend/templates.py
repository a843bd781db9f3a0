"""Templates: CRUD, render and clone, with Klaviyo's Django-like variable syntax.

Rendering supports what clients test with: ``{{ var }}`` and dotted paths
``{{ person.first_name }}`` (a missing variable renders as nothing, as in
Klaviyo), an optional ``|default:"…"`` filter, and non-nested
``{% if x %}…{% else %}…{% endif %}`` blocks (missing or falsy → else).
Anything else between ``{% %}`` is left out of the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    page_of,
    page_outcome,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["MAX_API_TEMPLATES", "TemplateRecord", "TemplatesBackend", "render", "templates_of"]

#: Klaviyo caps templates created through the API at 1,000 per account
MAX_API_TEMPLATES = 1000
EDITOR_TYPES = ("CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE", "SIMPLE")
_CREATABLE = ("CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE")
_PTR = "/data/attributes"

_IF = re.compile(r"{%\s*if\s+([\w.]+)\s*%}(.*?)(?:{%\s*else\s*%}(.*?))?{%\s*endif\s*%}", re.S)
_VAR = re.compile(r"{{\s*([\w.]+)\s*(?:\|\s*default\s*:\s*(?:\"([^\"]*)\"|'([^']*)'))?\s*}}")
_TAG = re.compile(r"{%.*?%}", re.S)


def _lookup(context: Any, path: str) -> Any:
    value = context
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def render(source: str | None, context: dict[str, Any]) -> str | None:
    """``source`` with its variables and if-blocks resolved against ``context``."""
    if source is None:
        return None

    def branch(m: re.Match[str]) -> str:
        return m.group(2) if _lookup(context, m.group(1)) else (m.group(3) or "")

    def var(m: re.Match[str]) -> str:
        value = _lookup(context, m.group(1))
        if value is None or value == "":
            return m.group(2) or m.group(3) or ""
        if isinstance(value, bool):
            return "True" if value else "False"
        return str(value)

    return _TAG.sub("", _VAR.sub(var, _IF.sub(branch, source)))


@dataclass(slots=True)
class TemplateRecord:
    seq: int
    id: str
    name: str
    editor_type: str
    html: str
    text: str | None
    amp: str | None
    created: float
    updated: float
    definition: dict[str, Any] | None = None


def templates_of(ctx: Context) -> dict[str, TemplateRecord]:
    """The account's templates (shared with campaigns, which assign them)."""
    return ctx.templates


def template_resource(t: TemplateRecord, attrs_override: dict[str, Any] | None = None) -> Resource:
    attrs: dict[str, Any] = {
        "name": t.name,
        "editor_type": t.editor_type,
        "html": t.html,
        "text": t.text,
        "amp": t.amp,
        "created": iso(t.created),
        "updated": iso(t.updated),
    }
    attrs.update(attrs_override or {})
    return Resource("template", t.id, attrs)


def _optional_text(attrs: dict[str, Any], name: str) -> str | None:
    value = attrs.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidError(f"{name} must be a string", pointer=f"{_PTR}/{name}")
    return value


def _name(attrs: dict[str, Any]) -> str:
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidError(
            "name is required and must be a non-empty string", pointer=f"{_PTR}/name"
        )
    return name


class TemplatesBackend(TagBackend):
    operations = frozenset(
        {
            "get_templates",
            "get_template",
            "create_template",
            "update_template",
            "delete_template",
            "render_template",
            "clone_template",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.templates = templates_of(ctx)
        self.api_created = 0

    def _get(self, tid: str) -> TemplateRecord:
        return existing(self.templates, "template", tid)

    def _new(
        self,
        name: str,
        *,
        editor_type: str,
        html: str,
        text: str | None,
        amp: str | None,
        definition: dict[str, Any] | None,
    ) -> TemplateRecord:
        if self.api_created >= MAX_API_TEMPLATES:
            raise InvalidError(
                f"this account has reached the limit of {MAX_API_TEMPLATES} templates "
                "created through the API",
                pointer="/data",
            )
        now = self.ctx.now()
        store = self.store
        t = TemplateRecord(
            seq=store.next_seq(),
            id=store.next_short_id(43),
            name=name,
            editor_type=editor_type,
            html=html,
            text=text,
            amp=amp,
            created=now,
            updated=now,
            definition=definition,
        )
        self.templates[t.id] = t
        self.api_created += 1
        return t

    def get_templates(self, call: Call) -> Outcome:
        by_seq = {t.seq: t for t in self.templates.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s)

        getters = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self._with_extras(call, by_seq[s]))

    def get_template(self, call: Call) -> Outcome:
        return Outcome(data=self._with_extras(call, self._get(self.path_id(call))))

    @staticmethod
    def _with_extras(call: Call, t: TemplateRecord) -> Resource:
        """The template, plus its ``definition`` when ``additional-fields[template]`` asks."""
        extra = {"definition": t.definition} if call.query.wants("template", "definition") else {}
        return template_resource(t, extra)

    def create_template(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "template"))
        name = _name(attrs)
        editor = attrs.get("editor_type")
        if editor not in _CREATABLE:
            raise InvalidError(
                f"editor_type must be one of {', '.join(_CREATABLE)}, not {editor!r}",
                pointer=f"{_PTR}/editor_type",
            )
        html = _optional_text(attrs, "html")
        definition = attrs.get("definition")
        if editor == "CODE" and not html:
            raise InvalidError("a CODE template needs html", pointer=f"{_PTR}/html")
        if definition is not None and not isinstance(definition, dict):
            raise InvalidError("definition must be an object", pointer=f"{_PTR}/definition")
        t = self._new(
            name,
            editor_type=editor,
            html=html or "",
            text=_optional_text(attrs, "text"),
            amp=_optional_text(attrs, "amp"),
            definition=definition,
        )
        return Outcome(data=template_resource(t), status=201)

    def update_template(self, call: Call) -> Outcome:
        t = self._get(self.path_id(call))
        data = data_of(call.body, "template")
        if data.get("id") != t.id:
            raise InvalidError("data.id must match the template id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        if "name" in attrs:
            t.name = _name(attrs)
        if "html" in attrs:
            t.html = _optional_text(attrs, "html") or ""
        for name in ("text", "amp"):
            if name in attrs:
                setattr(t, name, _optional_text(attrs, name))
        t.updated = self.ctx.now()
        return Outcome(data=template_resource(t))

    def delete_template(self, call: Call) -> Outcome:
        t = self._get(self.path_id(call))
        del self.templates[t.id]
        return Outcome(status=204)

    def render_template(self, call: Call) -> Outcome:
        data = data_of(call.body, "template")
        t = self._get(str(data.get("id") or ""))
        context = attributes_of(data).get("context")
        if not isinstance(context, dict):
            raise InvalidError("context must be an object", pointer=f"{_PTR}/context")
        rendered = {name: render(getattr(t, name), context) for name in ("html", "text", "amp")}
        return Outcome(data=template_resource(t, rendered), status=201)

    def clone_template(self, call: Call) -> Outcome:
        data = data_of(call.body, "template")
        source = self._get(str(data.get("id") or ""))
        attrs = data.get("attributes") or {}
        name = _name(attrs) if isinstance(attrs, dict) and "name" in attrs else None
        t = self._new(
            name or f"Clone of {source.name}",
            editor_type=source.editor_type,
            html=source.html,
            text=source.text,
            amp=source.amp,
            definition=source.definition,
        )
        return Outcome(data=template_resource(t), status=201)
