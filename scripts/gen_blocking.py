"""Generate src/kbridge/api/_blocking.py: typed blocking twins of the async services.

Usage: python scripts/gen_blocking.py [--check]

``Client.profiles`` must offer exactly what ``AsyncClient.profiles`` offers,
typed, so that ``client.profiles.get_profle()`` fails type checking instead of
at run time. Each public method of each service in ``kbridge.api.resources`` is
copied with its parameters, defaults and annotations as written in the source
(read with :mod:`ast`): a coroutine becomes a method returning its result on
the client's loop, an ``iter_…`` method one returning a lazy ``Iterator``.
``--check`` exits 1 when the committed module differs from what this produces.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "kbridge" / "api" / "_blocking.py"
RESOURCES = ROOT / "src" / "kbridge" / "api" / "resources"

HEADER = '''"""Typed blocking services for :class:`kbridge.api.Client` (``client.profiles`` …).

Generated from the async services in ``kbridge.api.resources`` by
``scripts/gen_blocking.py`` — do not edit; run ``make blocking`` after changing a service.
"""

from __future__ import annotations

'''


def _services() -> list[tuple[str, str, ast.ClassDef]]:
    """(attribute on the client, module, class) for every service, in the client's order."""
    init = importlib.import_module("kbridge.api.resources")
    found: list[tuple[str, str, ast.ClassDef]] = []
    for path in sorted(RESOURCES.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = f"kbridge.api.resources.{path.stem}"
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if (
                isinstance(node, ast.ClassDef)
                and node.name.endswith("Service")
                and hasattr(init, node.name)
            ):
                found.append((path.stem, module, node))
    return found


def _annotation_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _home(module: str, name: str) -> str:
    """Where to import ``name`` (as the service module sees it) from, explicitly exported."""
    mod = importlib.import_module(module)
    obj = getattr(mod, name)
    owner = getattr(obj, "__module__", None)
    if isinstance(owner, str) and owner != "builtins":
        home = sys.modules.get(owner) or importlib.import_module(owner)
        public = getattr(home, "__all__", None)
        if getattr(home, name, None) is obj and (
            public is None or name in public or not owner.startswith("kbridge")
        ):
            return "typing" if owner == "typing_extensions" else owner
    # an alias (``Progress = Callable[…]``) carries no module of its own: its exporter
    for candidate in (module, "kbridge.api.resources", "kbridge.api.resources._base"):
        home = importlib.import_module(candidate)
        if name in getattr(home, "__all__", ()) and getattr(home, name) is obj:
            return candidate
    raise SystemExit(f"gen_blocking: cannot tell where {name} (used by {module}) is exported")


def _forward(args: ast.arguments) -> str:
    """The call passing every parameter of ``args`` (after ``self``) on as it came."""
    parts = [a.arg for a in (*args.posonlyargs, *args.args)[1:]]
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    parts += [f"{a.arg}={a.arg}" for a in args.kwonlyargs]
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _method(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], set[str]]:
    """The blocking method's lines and the names its signature needs imported."""
    needed: set[str] = set()
    for arg in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs):
        needed |= _annotation_names(arg.annotation)
    for extra in (fn.args.vararg, fn.args.kwarg):
        if extra is not None:
            needed |= _annotation_names(extra.annotation)
    for default in (*fn.args.defaults, *fn.args.kw_defaults):
        needed |= _annotation_names(default)
    returns = fn.returns
    call = f"self._service.{fn.name}({_forward(fn.args)})"
    if isinstance(fn, ast.AsyncFunctionDef):
        result = ast.unparse(returns) if returns is not None else "None"
        body = f"return self._client.run(lambda: {call})"
    else:
        if not (
            isinstance(returns, ast.Subscript)
            and isinstance(returns.value, ast.Name)
            and returns.value.id == "AsyncIterator"
        ):
            raise SystemExit(f"gen_blocking: {fn.name} is neither a coroutine nor an AsyncIterator")
        result = f"Iterator[{ast.unparse(returns.slice)}]"
        returns = returns.slice
        body = f"return self._client._drain({call})"
    needed |= _annotation_names(returns)
    signature = ast.unparse(fn.args)
    lines = [f"    def {fn.name}({signature}) -> {result}:"]
    lines.append(f'        """See :meth:`{{service}}.{fn.name}`."""')
    lines.append(f"        {body}")
    return lines, needed


def render() -> str:
    imports: dict[str, set[str]] = {
        "collections.abc": {"Iterator"},
        "typing": {"TYPE_CHECKING"},
    }
    classes: list[str] = []
    exported: list[str] = []
    for _attr, module, node in _services():
        service = node.name
        blocking = f"Blocking{service}"
        exported.append(blocking)
        imports.setdefault("kbridge.api.resources", set()).add(service)
        out = [
            "",
            "",
            f"class {blocking}:",
            f'    """:class:`{service}` for blocking code: calls run on the client\'s loop."""',
            "",
            "    def __init__(self, client: Client, service: " + service + ") -> None:",
            "        self._client = client",
            "        self._service = service",
            "",
            "    @property",
            f"    def service(self) -> {service}:",
            '        """The underlying async service."""',
            "        return self._service",
        ]
        for fn in node.body:
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if fn.name.startswith("_"):
                continue
            lines, needed = _method(fn)
            lines[1] = lines[1].replace("{service}", service)
            out += ["", *lines]
            for name in sorted(needed - {"AsyncIterator"}):
                if hasattr(builtins, name):
                    continue
                imports.setdefault(_home(module, name), set()).add(name)
        classes.append("\n".join(out))
    head = [HEADER.rstrip("\n"), ""]
    for mod in sorted(imports, key=lambda m: (m.startswith("kbridge"), m)):
        names = sorted(imports[mod] - ({"TYPE_CHECKING"} if mod != "typing" else set()))
        head.append(f"from {mod} import {', '.join(names)}")
    head += ["", "if TYPE_CHECKING:", "    from kbridge.api._blocking_client import Client", ""]
    head.append("__all__ = [" + ", ".join(f'"{n}"' for n in sorted(exported)) + "]")
    return "\n".join(head) + "\n" + "\n".join(classes) + "\n"


def _formatted(text: str) -> str:
    """The module as ``ruff format`` and ``ruff check --fix`` (import order) leave it."""
    ruff = [sys.executable, "-m", "ruff"]
    fixed = subprocess.run(
        [*ruff, "check", "--fix", "--quiet", "--stdin-filename", str(OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout
    return subprocess.run(
        [*ruff, "format", "--stdin-filename", str(OUT), "-"],
        input=fixed,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the module is stale")
    args = parser.parse_args()
    text = _formatted(render())
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python scripts/gen_blocking.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
