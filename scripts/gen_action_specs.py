"""Generate src/kbridge/cli/_actions_snapshot.py: the action registry as the CLI shows it.

Usage: python scripts/gen_action_specs.py [--check]

The command line builds each ``kbridge <resource> <action>`` command from this
snapshot, so that showing a command's help or starting it does not import the
client and derive every action first (see ``kbridge/cli/_actionspec.py``).
Run it after changing a service method or ``api/_action_table.py``;
``--check`` exits 1 when the committed module differs from what this produces.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from kbridge.api.actions import registry
from kbridge.cli._actionspec import ActionSpec, ParamSpec, spec_of

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "kbridge" / "cli" / "_actions_snapshot.py"

HEADER = '''"""The action registry as the command line shows it (see ``cli/_actionspec.py``).

Generated from ``kbridge.api.actions.registry()`` by ``scripts/gen_action_specs.py``
— do not edit; run it after changing a service method or the action table.
"""

from __future__ import annotations

from kbridge.cli._actionspec import ActionSpec as A
from kbridge.cli._actionspec import ParamSpec as P

ACTIONS: tuple[A, ...] = (
'''


def _param(p: ParamSpec) -> str:
    fields = [repr(p.name)]
    default = ParamSpec(p.name)
    for attribute in ("type", "help", "required", "argument", "flag", "choices"):
        value = getattr(p, attribute)
        if value != getattr(default, attribute):
            fields.append(f"{attribute}={value!r}")
    return f"P({', '.join(fields)})"


def _action(a: ActionSpec) -> str:
    params = "".join(f"{_param(p)}," for p in a.params)
    return (
        f"A({a.resource!r}, {a.name!r}, {a.kind!r}, {a.summary!r}, "
        f"operations={a.operations!r}, scopes={a.scopes!r}, params=({params})),"
    )


def render() -> str:
    """The module as ``ruff format`` leaves it."""
    body = "".join(_action(spec_of(action)) + "\n" for action in registry().values())
    text = HEADER + body + ")\n"
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(OUT), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the module is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python scripts/gen_action_specs.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(registry())} actions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
