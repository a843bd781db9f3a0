"""Generate the emulator's spec tables and its coverage page.

Usage: python scripts/gen_emulator_coverage.py [--spec PATH] [--check]

Writes two files, both reproduced by this script (never edit them by hand):

- ``src/kbridge/emulator/http/_spectables.py``: the facts the HTTP layer
  needs from Klaviyo's spec that the catalogue does not hold — each request
  body's allowed ``data.type`` values (and whether ``data`` is an array),
  each resource type's collection path (for absolute ``links.self``), and the
  client operations whose ``company_id`` is optional, and each operation's own
  plain query parameters;
- ``docs/emulator-coverage.md``: every spec operation by tag, emulated or
  not (from the catalogue and ``EmulatorBackend.implemented``).

The spec is read from ../shared/klaviyo-openapi/stable.json (never copied).
``--check`` exits 1 when a committed file differs from what it would write.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "klaviyo-openapi" / "stable.json"
TABLES_OUT = ROOT / "src" / "kbridge" / "emulator" / "http" / "_spectables.py"
COVERAGE_OUT = ROOT / "docs" / "emulator-coverage.md"

_ITEM_PATH = re.compile(r"^(/(?:api|client)/[a-z0-9-]+)/\{[a-z_]+\}$")


def _resolve(schemas: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _properties(schemas: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema's properties, merged across ``allOf`` parts."""
    node = _resolve(schemas, node)
    props = dict(node.get("properties", {}))
    for part in node.get("allOf", []):
        for name, value in _properties(schemas, part).items():
            props.setdefault(name, value)
    return props


def _data_types(schemas: dict[str, Any], document: dict[str, Any]) -> tuple[list[str], bool]:
    """The ``data.type`` enum of a JSON:API document schema, and whether data is an array."""
    data = _properties(schemas, document).get("data")
    if data is None:
        return [], False
    data = _resolve(schemas, data)
    is_array = data.get("type") == "array"
    if is_array:
        data = _resolve(schemas, data.get("items", {}))
    type_schema = _properties(schemas, data).get("type")
    if type_schema is None:
        return [], is_array
    return list(_resolve(schemas, type_schema).get("enum", [])), is_array


def request_types(spec: dict[str, Any]) -> dict[str, tuple[list[str], bool]]:
    schemas = spec["components"]["schemas"]
    out: dict[str, tuple[list[str], bool]] = {}
    for item in spec["paths"].values():
        for method, op in item.items():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if method not in ("post", "patch", "delete") or not body:
                continue
            for content in body.get("content", {}).values():
                types, is_array = _data_types(schemas, _resolve(schemas, content["schema"]))
                if types:
                    out[op["operationId"]] = (types, is_array)
    return dict(sorted(out.items()))


def resource_paths(spec: dict[str, Any]) -> dict[str, str]:
    """type → collection path, from each ``GET /api/<things>/{id}`` and its response type."""
    schemas = spec["components"]["schemas"]
    out: dict[str, str] = {}
    for path, item in sorted(spec["paths"].items()):
        m = _ITEM_PATH.match(path)
        op = item.get("get")
        if not m or not op:
            continue
        ok = op["responses"].get("200", {}).get("content", {})
        for content in ok.values():
            types, is_array = _data_types(schemas, _resolve(schemas, content["schema"]))
            if len(types) == 1 and not is_array:
                out.setdefault(types[0], m.group(1))
    return dict(sorted(out.items()))


def optional_company_id(spec: dict[str, Any]) -> list[str]:
    """Client operations whose ``company_id`` may be left out (a global resource)."""
    out = []
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                if param.get("name") == "company_id" and not param.get("required"):
                    out.append(op["operationId"])
    return sorted(out)


_JSONAPI_PARAMS = re.compile(r"^(filter|sort|include|page_cursor|company_id|\w[\w-]*\[.*\])$")


def plain_params(spec: dict[str, Any]) -> dict[str, list[str]]:
    """Operation id → its own query parameters (not JSON:API's, not ``company_id``)."""
    out: dict[str, list[str]] = {}
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            names = [
                p["name"]
                for p in op.get("parameters", [])
                if p.get("in") == "query" and not _JSONAPI_PARAMS.match(p["name"])
            ]
            if names:
                out[op["operationId"]] = sorted(names)
    return dict(sorted(out.items()))


def render_tables(spec: dict[str, Any]) -> str:
    version = spec["info"]["version"]
    lines = [
        f'"""Generated from Klaviyo\'s OpenAPI spec (info.version {version}) by',
        'scripts/gen_emulator_coverage.py — do not edit; run it again."""',
        "",
        "from __future__ import annotations",
        "",
        "#: operation id → (allowed request ``data.type`` values, whether ``data`` is an array)",
        "REQUEST_TYPES: dict[str, tuple[tuple[str, ...], bool]] = {",
    ]
    for op_id, (types, is_array) in request_types(spec).items():
        tup = "(" + ", ".join(json.dumps(t) for t in types) + ("," if len(types) == 1 else "") + ")"
        lines.append(f"    {json.dumps(op_id)}: ({tup}, {is_array}),")
    lines += [
        "}",
        "",
        "#: resource type → collection path (its item path is ``<path>/{id}``)",
        "RESOURCE_PATHS: dict[str, str] = {",
    ]
    for rtype, path in resource_paths(spec).items():
        lines.append(f"    {json.dumps(rtype)}: {json.dumps(path)},")
    lines += [
        "}",
        "",
        "#: client operations that answer without ``company_id`` (Klaviyo-wide resources)",
        "OPTIONAL_COMPANY_ID: frozenset[str] = frozenset(",
        "    {",
    ]
    for op_id in optional_company_id(spec):
        lines.append(f"        {json.dumps(op_id)},")
    lines += [
        "    }",
        ")",
        "",
        "#: operation id → its own plain query parameters (kept for the backend to read)",
        "PLAIN_PARAMS: dict[str, tuple[str, ...]] = {",
    ]
    for op_id, names in plain_params(spec).items():
        tup = "(" + ", ".join(json.dumps(n) for n in names) + ("," if len(names) == 1 else "") + ")"
        lines.append(f"    {json.dumps(op_id)}: {tup},")
    lines += ["}", ""]
    return "\n".join(lines)


def _implemented() -> frozenset[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from kbridge.emulator.backend import EmulatorBackend
    from kbridge.emulator.config import EmulatorConfig
    from kbridge.emulator.simclock import SimClock

    backend = EmulatorBackend(EmulatorConfig(profiles=0, events=0), SimClock())
    return frozenset(backend.implemented)


def render_coverage(implemented: frozenset[str]) -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from kbridge import catalog

    ops = catalog.all_operations()
    tags: dict[str, list[catalog.Operation]] = {}
    for op in ops:
        tags.setdefault(op.tag, []).append(op)
    done = sum(1 for op in ops if op.operation_id in implemented)
    lines = [
        "# Emulator coverage",
        "",
        "<!-- generated by scripts/gen_emulator_coverage.py from the catalogue and",
        "     EmulatorBackend.implemented — do not edit; run the script again. -->",
        "",
        f"The emulator serves **{done} of {len(ops)}** operations of Klaviyo's API "
        f"(revision {catalog.REVISION}). "
        + (
            "Every other operation answers **501** with a JSON:API error naming it — never a "
            "fake success."
            if done < len(ops)
            else "An operation a backend does not serve (a narrowed `Backend`) answers **501** "
            "with a JSON:API error naming it — never a fake success."
        ),
        "",
        "| Tag | Emulated | Operations |",
        "|---|---:|---:|",
    ]
    for tag, tag_ops in sorted(tags.items()):
        n = sum(1 for op in tag_ops if op.operation_id in implemented)
        lines.append(f"| {tag} | {n} | {len(tag_ops)} |")
    for tag, tag_ops in sorted(tags.items()):
        lines += [
            "",
            f"## {tag}",
            "",
            "| Operation | Method | Path | Emulated |",
            "|---|---|---|---|",
        ]
        for op in sorted(tag_ops, key=lambda o: (o.path, o.method)):
            mark = "yes" if op.operation_id in implemented else "—"
            lines.append(f"| `{op.operation_id}` | {op.method} | `{op.path}` | {mark} |")
    lines += _revisions()
    lines.append("")
    return "\n".join(lines)


def _revisions() -> list[str]:
    from kbridge.emulator.http.revisions import DERIVED_SHAPES, IMPLEMENTED_REVISIONS

    lines = [
        "",
        "## Revisions",
        "",
        "The emulator implements revisions "
        + ", ".join(f"`{r}`" for r in IMPLEMENTED_REVISIONS)
        + " (and any `EmulatorConfig.extra_revisions`, answered like the spec's); another "
        "revision gets Klaviyo's 400 on `revision`. Only the 2026-07-15 spec is available, so "
        "the 2026-10-15 shapes below are **derived from the official SDK `klaviyo-api` "
        "25.0.0's models**; every other operation answers the same under both.",
        "",
        "| What | SDK model | 2026-10-15 shape |",
        "|---|---|---|",
    ]
    for what, model, shape in DERIVED_SHAPES:
        shown = model if model == "—" else f"`{model}`"
        lines.append(f"| {what} | {shown} | {shape} |")
    lines += [
        "",
        "Not emulated at 2026-10-15: the operations that revision adds (campaign audiences, "
        "variations, translations, message schedules, `campaign-schedule`, message clone); "
        "their paths are not in the spec the router is built from, so they answer 404.",
    ]
    return lines


def _format_python(text: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff), "format", "--stdin-filename", str(TABLES_OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    outputs = {
        TABLES_OUT: _format_python(render_tables(spec)),
        COVERAGE_OUT: render_coverage(_implemented()),
    }
    stale = [
        path for path, text in outputs.items() if not path.exists() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run scripts/gen_emulator_coverage.py)")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
