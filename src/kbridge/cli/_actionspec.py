"""What the command line needs to know of an action to build its command, and no more.

Building ``kbridge profiles list`` from the live registry
(:func:`kbridge.api.actions.registry`) means importing every service, the
client and httpx, and deriving every action: most of a second before
``kbridge profiles list --help`` printed a line. The commands are built from
:data:`kbridge.cli._actions_snapshot.ACTIONS` instead, a snapshot of the
registry written by ``scripts/gen_action_specs.py``; the real
:class:`~kbridge.api.actions.Action` is looked up when a command runs.
``tests/unit/cli/test_action_specs.py`` fails when the snapshot and the
registry disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbridge.api.actions import Action, Param

__all__ = ["ActionSpec", "ParamSpec", "spec_of"]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A parameter as its command-line option (or argument) shows it."""

    name: str
    type: str = "str"
    help: str = ""
    required: bool = False
    argument: bool = False
    flag: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action as its command shows it: name, kind, help, parameters."""

    resource: str
    name: str
    kind: str
    summary: str
    operations: tuple[str, ...]
    scopes: tuple[str, ...]
    params: tuple[ParamSpec, ...] = ()

    @property
    def cli_name(self) -> str:
        return f"{self.resource} {self.name}"


def _param_spec(param: Param) -> ParamSpec:
    return ParamSpec(
        name=param.name,
        type=param.type,
        help=param.help,
        required=param.required,
        argument=param.argument,
        flag=param.flag,
        choices=tuple(param.choices),
    )


def spec_of(action: Action) -> ActionSpec:
    """The snapshot of ``action`` (what ``scripts/gen_action_specs.py`` writes)."""
    return ActionSpec(
        resource=action.resource,
        name=action.name,
        kind=action.kind,
        summary=action.summary,
        operations=tuple(action.operations),
        scopes=tuple(action.scopes),
        params=tuple(_param_spec(p) for p in action.params),
    )
