"""What a tool is, and the tools generated from the one action registry.

Every :class:`~kbridge.api.actions.Action` becomes a :class:`ToolSpec`: its name
(``profiles list`` → ``profiles_list``), its summary, a JSON schema read off its
typed parameters, its scopes, and MCP hints read off the catalogue operations it
spends. Nothing here names a particular action, except the one a workflow tool
guards (``data-privacy request-deletion``: ``privacy_delete`` asks first).

Values from an agent are JSON, not command-line text: a JSON parameter takes the
value itself, a text-file parameter the text itself, and nothing an agent sends is
read as a path on this machine (``@file.json``, an image ``--file``): the server's
disk is not the agent's to read.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.api import Document, Resource
from kbridge.api.actions import Action, Param, coerce, registry
from kbridge.api.validation import ValidationError
from kbridge.core.jsoncodec import JSONDecodeError, loads

if TYPE_CHECKING:
    from kbridge.agent.server import Call

__all__ = [
    "CONVENTIONS",
    "DEFAULT_LIMIT",
    "GUARDED_ACTIONS",
    "MAX_LIMIT",
    "Handler",
    "ToolSpec",
    "action_tools",
    "plain",
    "tool_name",
]

Handler = Callable[["Call", Mapping[str, Any]], Awaitable[Any]]

#: how many items a list tool returns unless asked (a context window is small)
DEFAULT_LIMIT = 20
MAX_LIMIT = 200

#: actions a workflow tool replaces with a guarded one: deletion without the two-step
#: confirmation (``privacy_delete``), a send or cancel without a dry run (``campaign_*``)
GUARDED_ACTIONS = frozenset(
    {"data-privacy request-deletion", "campaigns send", "campaigns cancel-send"}
)
#: resources whose actions stay CLI-only for now: their 13 tools (≈5 KB of schema) would
#: take ``tools/list`` past its 30 KB budget; listing them needs a leaner schema first
CLI_ONLY_RESOURCES = frozenset({"catalog-items", "coupons"})


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool: its schema, its truthful hints, the scopes it needs, its handler.

    ``read_only``: changes nothing anywhere; ``destructive``: may overwrite or remove
    (meaningful for writes only); ``idempotent``: the same call twice has the effect
    of one. ``api``: talks to Klaviyo (so it takes ``connection`` with many accounts);
    ``warehouse``: needs ``--warehouse``.
    """

    name: str
    description: str
    handler: Handler = field(repr=False)
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    scopes: tuple[str, ...] = ()
    api: bool = True
    warehouse: bool = False


def tool_name(action: Action) -> str:
    """``lists add-profiles`` → ``lists_add_profiles``."""
    return action.cli_name.replace(" ", "_").replace("-", "_")


# -- hints ---------------------------------------------------------------------------------
#: POSTs that change nothing (a render, a report query)
_READ_POSTS = ("render_", "query_")
#: operation prefixes → (destructive, idempotent) for writes
_WRITE_HINTS: tuple[tuple[str, bool, bool], ...] = (
    ("create_or_update_", True, True),
    ("bulk_unsubscribe", True, True),
    ("bulk_subscribe", False, True),
    ("add_", False, True),
    ("tag_", False, True),
    ("untag_", True, True),
    ("remove_", True, True),
    ("delete_", True, True),
    ("update_", True, True),
    ("assign_", True, True),
    ("cancel_", True, True),
    ("send_", True, False),
    ("request_", True, False),
    ("create_", False, False),
    ("clone_", False, False),
    ("upload_", False, False),
    ("bulk_create_", False, False),
)


def _hints(action: Action) -> tuple[bool, bool, bool]:
    """(read_only, destructive, idempotent) from the operations the action spends."""
    writes = [op for op in action.operations if not op.startswith(("get_", *_READ_POSTS))]
    if action.kind in ("get", "list") or not writes:
        return True, False, True
    destructive, idempotent = False, True
    for op in writes:
        for prefix, d, i in _WRITE_HINTS:
            if op.startswith(prefix):
                destructive, idempotent = destructive or d, idempotent and i
                break
        else:  # an operation nobody classified: claim the worst
            destructive, idempotent = True, False
    return False, destructive, idempotent


# -- schemas -------------------------------------------------------------------------------
_JSON_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "strs": {"type": "array", "items": {"type": "string"}},
    "json": {},
    "json_object": {"type": "object"},
    "json_list": {"type": "array"},
    "datetime": {"type": "string", "format": "date-time"},
    "text_file": {"type": "string"},
}
#: help texts written for a command line, and what they mean to an agent
_HELP_LIMIT = 56


#: the shared options are explained once, in the server's instructions (:data:`CONVENTIONS`):
#: each appears on dozens of tools and the whole tools/list must fit a small context (≤ 30 KB)
_BRIEF = dict.fromkeys(("filter", "sort", "fields", "include", "additional_fields", "id"), "")

#: what every list tool's shared options mean (the MCP server's instructions)
CONVENTIONS = (
    f"List tools return at most `limit` items (default {DEFAULT_LIMIT}, max {MAX_LIMIT}) "
    "and say `more` when there are others. `filter` is Klaviyo's filter syntax, e.g. "
    "equals(email,'a@b.co') or greater-than(datetime,2026-01-01T00:00:00Z); `sort` is a "
    "field, prefixed with - to descend; `fields` are sparse fieldsets TYPE=a,b; "
    "`additional_fields` e.g. profile=subscriptions; `include` names related resources."
)


def _help(param: Param) -> str:
    text = _BRIEF.get(param.name, param.help)
    # the command line's asides (repeatable, --start/--end) mean nothing to an agent
    text = re.sub(r"\s*\((?:repeatable|or --|the text)[^)]*\)", "", text)
    for article in ("the ", "a ", "an "):
        text = text.removeprefix(article)
    return text if len(text) <= _HELP_LIMIT else text[: _HELP_LIMIT - 1] + "…"


def _restates(text: str, param: Param, noun: str) -> bool:
    """Whether ``text`` only says the parameter's name again ("segment's name" for name)."""
    words = set(re.findall(r"[a-z0-9]+", text.lower().replace("'s", ""))) - {"the", "a", "an"}
    return words <= {*param.name.split("_"), noun, noun.rstrip("s")}


def param_schema(param: Param, noun: str = "") -> dict[str, Any]:
    """One parameter's JSON schema (type, enum, a short description)."""
    schema = dict(_JSON_TYPES[param.type])
    if param.choices:
        schema["enum"] = list(param.choices)
    described = _help(param)
    if described and not _restates(described, param, noun):
        schema["description"] = described
    return schema


#: options an agent is not offered, by action kind: the page size follows ``limit``;
#: ``include``d resources are not in the answer; one resource's fields are few anyway
_NOT_OFFERED = {
    "list": ("page_size", "include"),
    "get": ("include", "fields"),
}


def _offered(action: Action) -> list[Param]:
    # a path names a file on the server's disk: never the agent's to choose
    return [
        p
        for p in action.params
        if p.name not in _NOT_OFFERED.get(action.kind, ()) and p.type != "path"
    ]


# -- values --------------------------------------------------------------------------------
def _value(param: Param, raw: Any) -> Any:
    """An agent's JSON value as the value ``param`` takes (no file is ever read)."""
    if param.type == "text_file":
        if not isinstance(raw, str):
            raise ValidationError(param.name, "must be text")
        return raw
    if param.type in ("json", "json_object", "json_list"):
        value = raw
        if isinstance(raw, str) and param.type != "json":
            try:
                value = loads(raw)
            except JSONDecodeError:
                raise ValidationError(param.name, "is not valid JSON") from None
        shape = {"json_object": dict, "json_list": list}.get(param.type)
        if shape is not None and not isinstance(value, shape):
            raise ValidationError(param.name, f"must be a JSON {shape.__name__}")
        return value
    if param.type in ("int", "float", "bool") and not isinstance(raw, str):
        raw = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return coerce(param, raw)


def values_for(action: Action, args: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for ``action`` from a tool call's arguments; unknown names refused."""
    offered = {p.name: p for p in _offered(action)}
    for name in args:
        if name not in offered and name not in ("limit", "connection"):
            raise ValidationError(name, f"is not a parameter of {tool_name(action)}")
    values: dict[str, Any] = {}
    for p in action.params:
        raw = args.get(p.name) if p.name in offered else None
        value = None if raw is None else _value(p, raw)
        values[p.name] = p.default if value is None else value
    return values


def plain(value: Any) -> Any:
    """Resources, documents and result objects as JSON-ready values."""
    if isinstance(value, Resource):
        out: dict[str, Any] = {"type": value.type, "id": value.id}
        out["attributes"] = {k: plain(v) for k, v in value.attributes.items()}
        linked = {
            k: v["data"]
            for k, v in value.relationships.items()
            if isinstance(v, Mapping) and v.get("data") is not None
        }
        if linked:
            out["relationships"] = linked
        return out
    if isinstance(value, Document):
        return plain(value.data)
    for method in ("to_dict", "as_json"):
        fn = getattr(value, method, None)
        if callable(fn):
            return plain(fn())
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _runner(action: Action) -> Handler:
    async def run(call: Call, args: Mapping[str, Any]) -> Any:
        values = values_for(action, args)
        client = call.account.client
        if action.kind == "list":
            limit = _limit(args.get("limit"))
            if any(p.name == "page_size" for p in action.params):
                maximum = action.catalog_operations[0].max_page_size or limit
                values["page_size"] = min(limit + 1, maximum)
            stream = action.invoke(client, values)
            assert isinstance(stream, AsyncIterator)
            items: list[Any] = []
            more = False
            async with contextlib.aclosing(stream) as rows:  # type: ignore[type-var]
                async for row in rows:
                    if len(items) == limit:
                        more = True
                        break
                    items.append(plain(row))
            return {"items": items, "count": len(items), "more": more}
        call_ = action.invoke(client, values)
        assert not isinstance(call_, AsyncIterator)
        result = await call_
        if isinstance(result, int) and not isinstance(result, bool):
            return {"sent": result}
        return {"done": action.cli_name} if result is None else plain(result)

    return run


def _limit(raw: Any) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_LIMIT:
        raise ValidationError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return raw


def action_tools() -> list[ToolSpec]:
    """One tool per action of the registry (less :data:`GUARDED_ACTIONS` and
    :data:`CLI_ONLY_RESOURCES`), in its order."""
    tools = []
    for action in registry().values():
        if action.cli_name in GUARDED_ACTIONS or action.resource in CLI_ONLY_RESOURCES:
            continue
        params = _offered(action)
        properties = {p.name: param_schema(p, action.resource) for p in params}
        if action.kind == "list":
            properties["limit"] = {"type": "integer"}
        read_only, destructive, idempotent = _hints(action)
        tools.append(
            ToolSpec(
                name=tool_name(action),
                description=action.summary,
                handler=_runner(action),
                properties=properties,
                required=tuple(p.name for p in params if p.required),
                read_only=read_only,
                destructive=destructive,
                idempotent=idempotent,
                scopes=action.scopes,
            )
        )
    return tools
