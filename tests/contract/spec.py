"""Klaviyo's OpenAPI spec as JSON Schema, to judge the emulator's bodies by.

The spec is OpenAPI 3.0: ``nullable: true`` is not JSON Schema, so each
such schema becomes ``anyOf: [schema, {"type": "null"}]``. One
``referencing`` registry holds the converted document, so every
``#/components/...`` reference resolves. The spec is read from
``../shared/klaviyo-openapi/stable.json`` beside the repository, never copied.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kbridge.catalog import Operation

SPEC_PATH = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "klaviyo-openapi" / "stable.json"
)
_URI = "urn:klaviyo-openapi"
JSONAPI = "application/vnd.api+json"


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key != "nullable"}
    branches = out.get("oneOf")
    if branches and all(set(b) == {"type"} for b in branches):
        # ``oneOf: [number, integer]`` rejects every integer (it matches both
        # branches); the spec means "either", so say anyOf.
        out["anyOf"] = out.pop("oneOf")
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _relax(document: dict[str, Any]) -> None:
    """Where Klaviyo's documented responses contradict the spec's schema, follow the docs.

    ``CollectionLinks.next/prev``: the schema says string, but Klaviyo's docs
    show ``null`` at the ends of a collection (and the official SDK's model
    types them ``Optional``), so the emulator sends ``null``.
    """
    links = document["components"]["schemas"]["CollectionLinks"]["properties"]
    for name in ("next", "prev"):
        links[name] = {"anyOf": [links[name], {"type": "null"}]}
    # A campaign's ``send_options`` / ``tracking_options`` (and a message's
    # ``content``, a flow message's ``definition``) are ``oneOf`` per-channel
    # schemas with no required or distinguishing properties, so every value
    # matches several branches and ``oneOf`` rejects all of them; the spec
    # means "one of these shapes".
    _any_of(document, ("send_options", "tracking_options", "content", "definition"))


def _any_of(node: Any, names: tuple[str, ...]) -> None:
    """Wherever a schema's property in ``names`` is a ``oneOf``, make it ``anyOf``."""
    if isinstance(node, list):
        for item in node:
            _any_of(item, names)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name in names:
            prop = properties.get(name)
            for branch in prop.get("anyOf", [prop]) if isinstance(prop, dict) else ():
                if "oneOf" in branch:
                    branch["anyOf"] = branch.pop("oneOf")
    for value in node.values():
        _any_of(value, names)


@cache
def spec() -> dict[str, Any]:
    converted: dict[str, Any] = _convert(json.loads(SPEC_PATH.read_text()))
    _relax(converted)
    return converted


@cache
def _registry() -> Registry[Any]:
    resource = Resource(contents=spec(), specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def response_pointer(operation: Operation, status: int) -> str | None:
    """JSON pointer to the response schema the spec gives ``operation`` for ``status``."""
    responses = spec()["paths"][operation.path][operation.method.lower()]["responses"]
    key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
    if key not in responses:
        return None
    response = responses[key]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        base = ("components", "responses", name)
        response = spec()["components"]["responses"][name]
    else:
        base = ("paths", operation.path, operation.method.lower(), "responses", key)
    if JSONAPI not in response.get("content", {}):
        return None
    return _pointer(*base, "content", JSONAPI, "schema")


def errors_of(operation: Operation, status: int, body: Any) -> list[str]:
    """Every way ``body`` breaks the spec's schema for ``operation``'s ``status`` response."""
    pointer = response_pointer(operation, status)
    if pointer is None:
        return [f"the spec documents no JSON body for {operation.operation_id} {status}"]
    validator = Draft202012Validator({"$ref": f"{_URI}#/{pointer}"}, registry=_registry())
    found: list[ValidationError] = sorted(validator.iter_errors(body), key=lambda e: e.path)
    return [_describe(e) for e in found]


def _deepest(error: ValidationError) -> ValidationError:
    if not error.context:
        return error
    return max((_deepest(e) for e in error.context), key=lambda e: len(e.absolute_path))


def _describe(error: ValidationError) -> str:
    """The most specific reason: inside ``anyOf``/``oneOf``, the deepest branch's error."""
    error = _deepest(error)
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return f"{where}: {error.message[:200]}"
