"""What an action is: :class:`Param`, :class:`Action`, and text → value conversion.

The declarations live in :mod:`kbridge.api._action_table` (derived from the
service methods by :mod:`kbridge.api._action_derive`); :mod:`kbridge.api.actions`
is the public face.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kbridge import catalog
from kbridge.api.validation import ValidationError, check_aware
from kbridge.catalog import Operation, RateLimit
from kbridge.core.jsoncodec import JSONDecodeError, loads

if TYPE_CHECKING:
    from kbridge.api.client import AsyncClient

__all__ = [
    "Action",
    "ActionKind",
    "Build",
    "Param",
    "ParamType",
    "coerce",
    "query_kwargs",
    "read_text_file",
]

ParamType = Literal[
    "str",
    "int",
    "float",
    "bool",
    "strs",
    "json",
    "json_object",
    "json_list",
    "datetime",
    "text_file",
    "path",
]
"""How a parameter's text becomes a value: ``strs`` repeats (a list), ``json`` takes JSON
text or ``@file.json`` (``json_object`` / ``json_list``: and it must be an object / a list),
``datetime`` ISO 8601 with an offset, ``text_file`` a file's (UTF-8) text."""

_JSON_SHAPES: dict[str, tuple[type, str, str]] = {
    "json_object": (dict, "a JSON object", '{"key": "value"}'),
    "json_list": (list, "a JSON list", '[{"key": "value"}]'),
}

ActionKind = Literal["get", "list", "write", "bulk"]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an action."""

    name: str
    type: ParamType = "str"
    help: str = ""
    required: bool = False
    argument: bool = False  # positional on the CLI (resource ids)
    flag: str | None = None  # CLI spelling; default ``--name-with-dashes``
    choices: tuple[str, ...] = ()
    default: Any = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


Build = Callable[[Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Action:
    """One action: what it is called, what it takes, which operations it spends."""

    resource: str
    name: str
    summary: str
    service: str
    method: str
    operations: tuple[str, ...]
    params: tuple[Param, ...] = ()
    kind: ActionKind = "get"
    build: Build | None = field(default=None, repr=False)

    @property
    def cli_name(self) -> str:
        return f"{self.resource} {self.name}"

    @property
    def catalog_operations(self) -> tuple[Operation, ...]:
        return tuple(catalog.get(op) for op in self.operations)

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope the action's operations need (what a key must grant)."""
        return tuple(sorted({s for op in self.catalog_operations for s in op.scopes}))

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        return {op.operation_id: op.rate_limit for op in self.catalog_operations}

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def arguments(self, values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The service call's (args, kwargs) from typed values."""
        for p in self.params:
            if p.required and values.get(p.name) in (None, "", [], ()):
                raise ValidationError(p.name, f"is required by '{self.cli_name}'")
        if self.build is not None:
            return self.build(values)
        args = tuple(values[p.name] for p in self.params if p.argument)
        kwargs = {
            p.name: values[p.name]
            for p in self.params
            if not p.argument and values.get(p.name) is not None
        }
        return args, query_kwargs(kwargs)

    def invoke(
        self,
        client: AsyncClient,
        values: Mapping[str, Any],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Awaitable[Any] | AsyncIterator[Any]:
        """Call the service: an awaitable result, or for ``list`` actions an async iterator.

        ``progress`` (bulk actions only) hears of each finished chunk's size.
        """
        args, kwargs = self.arguments(values)
        if progress is not None and self.kind == "bulk":
            kwargs["progress"] = progress
        method = getattr(getattr(client, self.service), self._method_for(values))
        result: Awaitable[Any] | AsyncIterator[Any] = method(*args, **kwargs)
        return result

    def _method_for(self, values: Mapping[str, Any]) -> str:
        return self.method

    def bulk_size(self, values: Mapping[str, Any]) -> int | None:
        """How many items a bulk action will send (for a progress bar's total)."""
        if self.kind != "bulk":
            return None
        args, kwargs = self.arguments(values)
        for candidate in (*args, *kwargs.values()):
            if isinstance(candidate, list | tuple):
                return len(set(candidate)) if self.service == "lists" else len(candidate)
        return None


# -- conversion -----------------------------------------------------------------
def coerce(param: Param, raw: Any) -> Any:
    """``raw`` (usually text) as the value ``param`` takes; errors name the parameter."""
    if raw is None:
        return None
    t = param.type
    try:
        if t == "strs":
            items = [raw] if isinstance(raw, str) else list(raw)
            return [str(i) for i in items]
        if isinstance(raw, str):
            return _from_text(param, raw)
    except ValueError as exc:
        raise ValidationError(param.name, str(exc)) from None
    return raw


def _from_text(param: Param, raw: str) -> Any:
    t = param.type
    if param.choices and raw not in param.choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(param.choices)}")
    if t == "int":
        return int(raw)
    if t == "float":
        return float(raw)
    if t == "bool":
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{raw!r} is not true/false")
    if t == "datetime":
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{raw!r} is not an ISO 8601 datetime") from None
        return check_aware(value, param.name)
    if t in ("json", "json_object", "json_list"):
        text = _read_text(raw[1:], param.name) if raw.startswith("@") else raw
        try:
            value = loads(text)
        except JSONDecodeError:
            raise ValueError("is not valid JSON") from None
        shape = _JSON_SHAPES.get(t)
        # A list or a string where an object belongs would otherwise reach code that
        # iterates it as keys ('"paris"' read as the keys p, a, r, i, s) or fails deep inside.
        if shape is not None and not isinstance(value, shape[0]):
            raise ValueError(
                f"must be {shape[1]}, e.g. {shape[2]}, not {_json_kind(value)} {_excerpt(text)}"
            )
        return value
    if t == "text_file":
        return _read_text(raw, param.name)
    if t == "path":
        return Path(raw)
    return raw


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "an object"


def _excerpt(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_text_file(path: str | Path, name: str) -> str:
    """A file's text as UTF-8; a missing, unreadable or non-UTF-8 file is a
    :class:`ValidationError` naming the parameter (never a traceback)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(name, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(
            name,
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8, e.g. iconv -f latin1 -t utf-8",
        ) from None


_read_text = read_text_file


def _pairs(items: Sequence[str] | None, name: str) -> dict[str, list[str]] | None:
    """``["profile=email,first_name"]`` → ``{"profile": ["email", "first_name"]}``."""
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        rtype, sep, names = item.partition("=")
        if not sep or not rtype or not names:
            raise ValidationError(name, f"{item!r}: write TYPE=attr1,attr2 (e.g. profile=email)")
        out.setdefault(rtype, []).extend(n for n in names.split(",") if n)
    return out


def query_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fields``/``additional_fields`` given as ``TYPE=a,b`` texts become mappings."""
    for key in ("fields", "additional_fields"):
        value = kwargs.get(key)
        if isinstance(value, list):
            kwargs[key] = _pairs(value, key)
    return kwargs
