"""Typer's option coercion without pydantic for the values that need none.

Recent typer releases coerce every parameter through a pydantic
``TypeAdapter``, built the first time the parameter is processed: even an
option that was not given (``None``) or a plain string. Importing pydantic
and building the adapters cost about 0.15 s of CPU before a command could
run, half of the 0.3 s start-up a command has (#18 item 11); the action
commands need none of it.

:class:`FastCommand` and :class:`FastGroup` give each of their typer
parameters a coercion that answers, without pydantic, only what it can answer
exactly as typer would (a missing value, a string for a ``str``, decimal
digits within range for an ``int``, strings for a ``list[str]``) and hands
every other value to typer's own coercion, built on first need. So every
value typer would reject is still rejected by typer, with typer's message.
With a typer that coerces through click types (no ``get_runtime_param``),
nothing is changed. ``tests/unit/cli/test_coercion.py`` holds the answers to
typer's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, get_args, get_origin

from typer.core import TyperCommand, TyperGroup

__all__ = ["FastCommand", "FastGroup", "install"]

_build_runtime_param: Any
try:  # typer coercing through pydantic adapters
    from typer._coercion import build_runtime_param as _build_runtime_param
except ImportError:  # pragma: no cover - an older typer coerces with click types
    _build_runtime_param = None

#: decimal integers as pydantic reads them from a string, without its corner cases
#: (signs on zero, leading zeros, underscores, whitespace, more digits than it allows)
_INT = re.compile(r"(?:0|-?[1-9][0-9]{0,17})\Z", re.ASCII)
_MISS = object()


def _answer(descriptor: Any, value: Any) -> Any:
    """``value`` coerced as typer would, or ``_MISS`` when only typer can say."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or getattr(info, "parser", None) is not None:
        return _MISS
    annotation = descriptor.annotation
    if annotation is str:
        return value if type(value) is str else _MISS
    if annotation is int:
        if getattr(info, "clamp", False) or type(value) is not str or not _INT.match(value):
            return _MISS
        number = int(value)
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None and number < low) or (high is not None and number > high):
            return _MISS
        return number
    strings = get_origin(annotation) is list and get_args(annotation) == (str,)
    if strings and isinstance(value, list | tuple) and all(type(v) is str for v in value):
        return list(value)
    return _MISS


class _Coercion:
    """A typer runtime parameter that builds typer's own only for what it cannot answer."""

    __slots__ = ("_descriptor", "_typer")

    def __init__(self, descriptor: Any) -> None:
        self._descriptor = descriptor
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            # typer's RuntimeParam.coerce answers a missing value before its adapter is used
            return () if multi else None
        if not (multi and isinstance(value, str)):
            answer = _answer(self._descriptor, value)
            if answer is not _MISS:
                return answer
        if self._typer is None:
            assert _build_runtime_param is not None
            self._typer = _build_runtime_param(self._descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def install(params: Iterable[Any]) -> None:
    """Give each typer parameter in ``params`` the pydantic-free coercion (once)."""
    if _build_runtime_param is None:  # pragma: no cover - older typer
        return
    for param in params:
        if getattr(param, "_runtime_param", _MISS) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _Coercion(param.type_descriptor)


class FastCommand(TyperCommand):
    """A typer command whose options are coerced without pydantic where that is exact."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        install(params)
        return params


class FastGroup(TyperGroup):
    """A typer group whose own options are coerced without pydantic where that is exact."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        install(params)
        return params
