"""The one action registry: every Klaviyo action kbridge offers, declared once.

An :class:`Action` names its CLI spelling (``profiles create``), its
parameters (type, help, required, CLI flag), the catalogue operations it
uses — so its scopes and rate tier are known without calling it — and the
service method that performs it. The parameters are derived from that typed
method (its signature and its docstring's ``Args:``; see
``docs/design/actions.md``), so the CLI, an agent interface and least-scope
planning all read the service itself::

    for action in actions.registry().values():
        print(action.cli_name, action.scopes)

Parameter values arrive as plain text (from a command line, a form, an
agent) and are converted by :func:`coerce`; :meth:`Action.invoke` then calls
the service with typed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from kbridge.api._action import (
    Action,
    ActionKind,
    Param,
    ParamType,
    coerce,
    read_text_file,
)
from kbridge.api._action_derive import declare, derive, docstring_args
from kbridge.api._action_table import declarations

__all__ = [
    "Action",
    "ActionKind",
    "Param",
    "ParamType",
    "coerce",
    "declare",
    "derive",
    "docstring_args",
    "get",
    "read_text_file",
    "registry",
]


@cache
def registry() -> Mapping[str, Action]:
    """Every action by CLI name (``"profiles create"``), in declaration order (read-only)."""
    actions = declarations()
    out = {act.cli_name: act for act in actions}
    if len(out) != len(actions):
        raise RuntimeError("two actions share a CLI name")
    return MappingProxyType(out)


def get(cli_name: str) -> Action:
    """The action called ``cli_name`` (e.g. ``"lists add-profiles"``)."""
    try:
        return registry()[cli_name]
    except KeyError:
        raise KeyError(f"no action {cli_name!r}") from None
