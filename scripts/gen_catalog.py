"""Generate src/kbridge/catalog/_operations.py from Klaviyo's OpenAPI spec.

Usage: python scripts/gen_catalog.py [--spec PATH] [--check]

The spec is read from ../shared/klaviyo-openapi/stable.json (never copied
into the project). Every fact comes from the spec: rate limits from
``x-klaviyo-ratelimit``, scopes from ``x-klaviyo-scopes``, filters from
``x-klaviyo-filters``, page sizes from the ``page[size]`` parameter schema
(or, where an operation has none, the fixed size its description states),
and the stricter limits some ``include``/``additional-fields`` values add
from the description's "Rate limits when using …" paragraphs.
``--check`` exits 1 when the committed module differs from what the spec gives.
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
OUT = ROOT / "src" / "kbridge" / "catalog" / "_operations.py"

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


def _operation(path: str, method: str, op: dict[str, Any], revision: str) -> str:
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
            f"FilterField({fname!r}, single={tuple(ops.get('single', ()))!r}, "
            f"list={tuple(ops.get('list', ()))!r}, none={tuple(ops.get('none', ()))!r}, "
            f"value_type={value.get('type')!r}, value_format={value.get('format')!r})"
        )

    alt = []
    for param, value, a_burst, a_steady in _ALT.findall(op.get("description", "")):
        # The descriptions say include=list/segment where the enum spells lists/segments.
        if param == "include" and value not in include and f"{value}s" in include:
            value = f"{value}s"
        alt.append(f"AltLimit({param!r}, {value!r}, RateLimit({int(a_burst)}, {int(a_steady)}))")

    path_params = tuple(re.findall(r"\{([a-zA-Z_]+)\}", path))
    auth = "public" if op.get("security") == [] else "private"
    aliases = tuple(a for a in op.get("x-klaviyo-operation-aliases", ()) if a != op["operationId"])
    tag = op.get("tags", ["Untagged"])[0]
    return (
        "    Operation(\n"
        f"        method={method.upper()!r}, path={path!r}, operation_id={op['operationId']!r},\n"
        f"        tag={tag!r}, rate_limit=RateLimit({burst}, {steady}, {daily}),\n"
        f"        scopes={tuple(op.get('x-klaviyo-scopes', ()))!r}, success_status={success},\n"
        f"        revision={revision!r}, aliases={aliases!r}, auth={auth!r},\n"
        f"        request_content_type={content_type!r},\n"
        f"        filters=({''.join(f + ', ' for f in filters)}),\n"
        f"        sort={sort!r}, include={include!r},\n"
        f"        fields={fields!r}, additional_fields={additional!r},\n"
        f"        page_size_param={page_param!r}, default_page_size={default_page!r},\n"
        f"        max_page_size={max_page!r}, paginated={paginated!r},\n"
        f"        alt_limits=({''.join(a + ', ' for a in alt)}), path_params={path_params!r},\n"
        "    ),\n"
    )


def generate(spec_path: Path) -> str:
    spec = json.loads(spec_path.read_text())
    revision = spec["info"]["version"]
    ops = []
    for path, item in sorted(spec["paths"].items()):
        for method in METHODS:
            if method in item:
                ops.append(_operation(path, method, item[method], revision))
    return (
        f'"""Generated from Klaviyo\'s OpenAPI spec (info.version {revision}) by\n'
        "scripts/gen_catalog.py — do not edit; run `make catalog`.\n"
        '"""\n\n'
        "# ruff: noqa: E501\n"
        "from __future__ import annotations\n\n"
        "from kbridge.catalog.model import AltLimit, FilterField, Operation, RateLimit\n\n"
        f"SPEC_VERSION = {revision!r}\n"
        f"REVISION = {revision!r}\n\n"
        "OPERATIONS: tuple[Operation, ...] = (\n" + "".join(ops) + ")\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--check", action="store_true", help="fail if the module is stale")
    args = parser.parse_args()
    if not args.spec.exists():
        print(f"spec not found at {args.spec}", file=sys.stderr)
        return 2
    text = generate(args.spec)
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != formatted:
            print(f"{OUT.relative_to(ROOT)} is stale: run `make catalog`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(formatted)
    print(f"wrote {OUT.relative_to(ROOT)}: {text.count('Operation(')} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
