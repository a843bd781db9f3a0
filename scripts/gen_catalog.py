"""Generate src/kbridge/catalog/operations.jsonl from Klaviyo's OpenAPI spec.

Usage: python scripts/gen_catalog.py [--spec PATH] [--check]

The spec is read from ../shared/klaviyo-openapi/stable.json (never copied
into the project). Every fact comes from the spec: rate limits from
``x-klaviyo-ratelimit``, scopes from ``x-klaviyo-scopes``, filters from
``x-klaviyo-filters``, page sizes from the ``page[size]`` parameter schema
(or, where an operation has none, the fixed size its description states),
and the stricter limits some ``include``/``additional-fields`` values add
from the description's "Rate limits when using …" paragraphs.

The output is JSON Lines: a header line (``_generated``, ``revision``), then one
operation a line sorted by path and method, so that a spec update changes only the
lines of the operations it touches. ``--check`` exits 1 when the committed file
differs from what the spec gives.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "klaviyo-openapi" / "stable.json"
OUT = ROOT / "src" / "kbridge" / "catalog" / "operations.jsonl"

METHODS = ("get", "post", "patch", "put", "delete")
_RATE = re.compile(r"^(\d+)/([smd])$")
_ALT = re.compile(
    r"Rate limits when using the `([^`=]+)=([^`]+)` parameter[^<]*<br>"
    r"Burst: `(\d+)/s`<br>Steady: `(\d+)/m`"
)
_FIXED_PAGE = re.compile(r"(?:Returns a maximum of|maximum of) (\d+) results per page", re.I)


def _rate(value: str | None, unit: str) -> int | None:
    if value is None:
        return None
    m = _RATE.match(value.strip())
    if not m or m.group(2) != unit:
        raise SystemExit(f"unexpected rate limit {value!r} (wanted …/{unit})")
    return int(m.group(1))


def _enum(param: dict[str, Any]) -> tuple[str, ...]:
    schema = param.get("schema", {})
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    return tuple(schema.get("enum", ()))


def _operation(path: str, method: str, op: dict[str, Any], revision: str) -> dict[str, Any]:
    rl = op["x-klaviyo-ratelimit"]
    burst, steady = _rate(rl["burst"], "s"), _rate(rl["steady"], "m")
    daily = _rate(rl.get("daily"), "d")
    params = {p["name"]: p for p in op.get("parameters", [])}

    success = min(int(code) for code in op["responses"] if code.isdigit() and code.startswith("2"))
    body = op.get("requestBody", {}).get("content", {})
    content_type = next(iter(body), None)

    fields: dict[str, tuple[str, ...]] = {}
    additional: dict[str, tuple[str, ...]] = {}
    for name, p in params.items():
        if name.startswith("fields["):
            fields[name[7:-1]] = _enum(p)
        elif name.startswith("additional-fields["):
            additional[name[18:-1]] = _enum(p)

    sort = _enum(params["sort"]) if "sort" in params else ()
    include = _enum(params["include"]) if "include" in params else ()

    default_page = max_page = None
    page_param = "page[size]" in params
    if page_param:
        schema = params["page[size]"]["schema"]
        default_page, max_page = schema.get("default"), schema.get("maximum")
    paginated = "page[cursor]" in params or "page_cursor" in params
    if paginated and not page_param:
        m = _FIXED_PAGE.search(op.get("description", ""))
        if m:
            default_page = max_page = int(m.group(1))

    filters = []
    for fname, spec in (op.get("x-klaviyo-filters") or {}).items():
        ops = spec.get("operators", {})
        value = spec.get("value", {})
        filters.append(
            {
                "name": fname,
                "single": list(ops.get("single", ())),
                "list": list(ops.get("list", ())),
                "none": list(ops.get("none", ())),
                "value_type": value.get("type"),
                "value_format": value.get("format"),
            }
        )

    alt = []
    for param, value, a_burst, a_steady in _ALT.findall(op.get("description", "")):
        # The descriptions say include=list/segment where the enum spells lists/segments.
        if param == "include" and value not in include and f"{value}s" in include:
            value = f"{value}s"
        alt.append({"param": param, "value": value, "burst": int(a_burst), "steady": int(a_steady)})

    # Keys in the order of kbridge.catalog.model.Operation's fields.
    return {
        "method": method.upper(),
        "path": path,
        "operation_id": op["operationId"],
        "tag": op.get("tags", ["Untagged"])[0],
        "rate_limit": {"burst": burst, "steady": steady, "daily": daily},
        "scopes": list(op.get("x-klaviyo-scopes", ())),
        "success_status": success,
        "revision": revision,
        "aliases": [a for a in op.get("x-klaviyo-operation-aliases", ()) if a != op["operationId"]],
        "auth": "public" if op.get("security") == [] else "private",
        "request_content_type": content_type,
        "filters": filters,
        "sort": list(sort),
        "include": list(include),
        "fields": {k: list(v) for k, v in fields.items()},
        "additional_fields": {k: list(v) for k, v in additional.items()},
        "page_size_param": page_param,
        "default_page_size": default_page,
        "max_page_size": max_page,
        "paginated": paginated,
        "alt_limits": alt,
        "path_params": re.findall(r"\{([a-zA-Z_]+)\}", path),
    }


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def generate(spec_path: Path) -> str:
    spec = json.loads(spec_path.read_text())
    revision = spec["info"]["version"]
    header = {
        "_generated": f"from Klaviyo's OpenAPI spec (info.version {revision}) by "
        "scripts/gen_catalog.py; do not edit, run `make catalog`",
        "revision": revision,
        "spec_version": revision,
    }
    lines = [_line(header)]
    for path, item in sorted(spec["paths"].items()):
        for method in METHODS:
            if method in item:
                lines.append(_line(_operation(path, method, item[method], revision)))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    if not args.spec.exists():
        print(f"spec not found at {args.spec}", file=sys.stderr)
        return 2
    text = generate(args.spec)
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run `make catalog`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {text.count(chr(10)) - 1} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
