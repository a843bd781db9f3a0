"""The CLI's pydantic-free option coercion answers exactly as typer's own, or defers to it."""

from __future__ import annotations

from typing import Any

import pytest
from typer._coercion import build_runtime_param

from kbridge.cli import _coercion
from kbridge.cli.app import ACTION_GROUPS, LAZY_COMMANDS, app, load_command

pytestmark = pytest.mark.unit

VALUES: tuple[Any, ...] = (
    None, "", "0", "7", "-3", "-0", "007", "1_000", " 5", "5 ", "+5", "abc", "1.5", "1e3",
    "٣", "9" * 18, "9" * 40, "caf\u00e9", ("a", "b"), ["a"], (), "a,b", True, False, 3, 2.5,
)  # fmt: skip


def _params() -> list[tuple[str, Any, Any]]:
    """Every (command, parameter, context) of the action commands and the root."""
    import typer

    root = typer.main.get_command(app)
    found = [
        ("kbridge", p, root.context_class(root)) for p in root.get_params(root.context_class(root))
    ]
    for name, (target, _) in LAZY_COMMANDS.items():
        if target != ACTION_GROUPS:
            continue
        group = load_command(name)
        for sub_name, command in group.commands.items():
            ctx = command.context_class(command, info_name=sub_name)
            found += [(f"{name} {sub_name}", p, ctx) for p in command.get_params(ctx)]
    return found


def _outcome(coerce: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # the type and message are what is compared
        return type(exc).__name__, str(exc)
    return type(result).__name__, result


def test_every_action_option_is_coerced_as_typer_does() -> None:
    params = _params()
    assert len(params) > 300, len(params)  # the action commands really were found
    mismatches = []
    for where, param, ctx in params:
        fast = _coercion._Coercion(param.type_descriptor)
        for value in VALUES:
            typer_says = _outcome(
                build_runtime_param(param.type_descriptor).coerce, value, param, ctx
            )
            ours = _outcome(fast.coerce, value, param, ctx)
            if ours != typer_says:
                mismatches.append((where, param.name, value, ours, typer_says))
    assert not mismatches, mismatches[:5]


def test_the_action_commands_use_the_fast_coercion() -> None:
    group = load_command("profiles")
    command = group.commands["list"]
    params = command.get_params(command.context_class(command))
    assert all(isinstance(p._runtime_param, _coercion._Coercion) for p in params)
