"""An action's parameters read off the typed service method it calls.

Each parameter of the method becomes a :class:`~kbridge.api._action.Param`:
its type from the annotation, ``required`` from the absence of a default,
its help from the method docstring's ``Args:`` section (Google style). The
resource id (the first positional ``*_id``) becomes the positional ``id``
argument; ``**query: Unpack[ListQuery]`` becomes the query options the
catalogue says the operation accepts. A parameter whose value is built from
several options (a campaign's message, a report's timeframe) is *expanded*
by a typed function whose own parameters are derived the same way.

So adding a parameter to a service method adds the CLI option (and the agent
tool's argument) without touching the declaration.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from kbridge import catalog
from kbridge.api._action import Action, ActionKind, Build, Param, ParamType, query_kwargs
from kbridge.api.resources import SERVICES

__all__ = ["QUERY_PARAMS", "declare", "derive", "docstring_args", "query_params"]

#: the shared query options, by the name services and ``ListQuery`` give them
QUERY_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("filter", help="Klaviyo filter, e.g. equals(email,'a@b.co')"),
        Param("sort", help="sort key; prefix - for descending"),
        Param("fields", "strs", help="sparse fieldset TYPE=a,b (repeatable)"),
        Param("include", "strs", help="related resources to include (repeatable)"),
        Param("additional_fields", "strs", help="TYPE=field (e.g. profile=subscriptions)"),
        Param("page_size", "int", help="page size (default: the maximum)"),
    )
}

#: filled in by the action itself, never an option
_INTERNAL = frozenset({"self", "progress"})

_ARGS_HEADER = re.compile(r"^(\s*)Args:\s*$")
_ARG_LINE = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def docstring_args(func: Callable[..., Any]) -> dict[str, str]:
    """``name`` → help text from the docstring's ``Args:`` section (continuation lines joined)."""
    doc = inspect.getdoc(func) or ""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    for start, line in enumerate(lines):
        header = _ARGS_HEADER.match(line)
        if header is None:
            continue
        base = len(header.group(1))
        entry_indent: int | None = None
        current: str | None = None
        for body in lines[start + 1 :]:
            if not body.strip():
                continue
            indent = len(body) - len(body.lstrip())
            if indent <= base:
                break
            if entry_indent is None:
                entry_indent = indent
            found = _ARG_LINE.match(body.strip()) if indent == entry_indent else None
            if found is not None:
                current = found.group(1)
                out[current] = found.group(2).strip()
            elif current is not None:
                out[current] = f"{out[current]} {body.strip()}".strip()
        break
    return out


def query_params(operation_id: str) -> tuple[Param, ...]:
    """The query options ``operation_id`` accepts, per the catalogue."""
    op = catalog.get(operation_id)
    offered = {
        "filter": bool(op.filters),
        "sort": bool(op.sort),
        "fields": bool(op.fields),
        "include": bool(op.include),
        "additional_fields": bool(op.additional_fields),
        "page_size": bool(op.page_size_param and op.max_page_size),
    }
    return tuple(QUERY_PARAMS[name] for name, yes in offered.items() if yes)


def _param_type(hint: Any) -> tuple[ParamType, tuple[str, ...]]:
    """How text becomes a value of ``hint`` (and its choices, for a ``Literal``)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if set(members) == {str, Path}:
            return "path", ()
        if len(members) == 1:
            return _param_type(members[0])
        return "json", ()
    if origin is Literal:
        return "str", tuple(str(a) for a in get_args(hint))
    simple: dict[Any, ParamType] = {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        datetime: "datetime",
        Path: "path",
    }
    if hint in simple:
        return simple[hint], ()
    if origin in (list, tuple, Sequence):
        inner = get_args(hint)[0] if get_args(hint) else Any
        return ("strs" if inner is str else "json_list"), ()
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "json_object", ()
    return "json", ()


@dataclass(frozen=True, slots=True)
class _Slot:
    """One parameter of the called method: where its value comes from."""

    name: str  # the method's parameter name
    positional: bool
    source: str | None = None  # the value's Param name (None: expanded or **query)
    expander: Callable[..., Any] | None = None
    expanded: tuple[str, ...] = ()  # the expander's Param names


@cache
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


#: (module, annotation text) → its type: the services share a few dozen annotations, and
#: evaluating each once keeps building the registry off the CLI's start-up time
_HINTS: dict[tuple[str, str], Any] = {}


def _hint(func: Callable[..., Any], sp: inspect.Parameter) -> Any:
    """``sp``'s annotation as a type (what ``typing.get_type_hints`` gives, evaluated once)."""
    annotation = sp.annotation
    if annotation is sp.empty:
        return str
    if not isinstance(annotation, str):
        return annotation
    key = (func.__module__, annotation)
    if key not in _HINTS:
        _HINTS[key] = eval(annotation, func.__globals__)  # noqa: S307 (our own annotations)
    return _HINTS[key]


def _simple_default(value: Any) -> Any:
    if value is inspect.Parameter.empty or value is None:
        return None
    if isinstance(value, tuple | list):
        return tuple(value) or None
    return value


def _params_of(
    func: Callable[..., Any], override: Mapping[str, Mapping[str, Any]], *, resource_id: bool
) -> list[tuple[inspect.Parameter, Param]]:
    helps = docstring_args(func)
    out: list[tuple[inspect.Parameter, Param]] = []
    first_positional = True
    for sp in _signature(func).parameters.values():
        if sp.name in _INTERNAL or sp.kind in (sp.VAR_KEYWORD, sp.VAR_POSITIONAL):
            continue
        positional = sp.kind in (sp.POSITIONAL_ONLY, sp.POSITIONAL_OR_KEYWORD)
        if resource_id and positional and first_positional and sp.name.endswith("_id"):
            noun = sp.name.removesuffix("_id").replace("_", " ")
            param = Param(
                "id", argument=True, required=True, help=helps.get(sp.name, f"the {noun} id")
            )
        elif sp.name in QUERY_PARAMS and sp.name not in helps:
            param = QUERY_PARAMS[sp.name]
        else:
            ptype, choices = _param_type(_hint(func, sp))
            param = Param(
                sp.name,
                ptype,
                help=helps.get(sp.name, ""),
                required=sp.default is inspect.Parameter.empty,
                choices=choices,
                default=_simple_default(sp.default),
            )
        first_positional = first_positional and not positional
        if sp.name in override:
            param = replace(param, **override[sp.name])
        out.append((sp, param))
    return out


def derive(
    method: Callable[..., Any],
    *,
    operation: str | None = None,
    expand: Mapping[str, Callable[..., Any]] | None = None,
    override: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[tuple[Param, ...], Build]:
    """``method``'s parameters as action params, and the build that maps values back to a call.

    ``operation`` (the catalogue id) says which query options ``**query`` stands for;
    ``expand`` maps a parameter to the function that builds its value from options of
    its own; ``override`` changes a derived param's CLI spelling (``flag``, ``type``,
    ``choices`` …), keyed by the method's (or the expander's) parameter name.
    """
    expand = expand or {}
    override = override or {}
    params: list[Param] = []
    slots: list[_Slot] = []
    for sp, param in _params_of(method, override, resource_id=True):
        positional = sp.kind in (sp.POSITIONAL_ONLY, sp.POSITIONAL_OR_KEYWORD)
        expander = expand.get(sp.name)
        if expander is None:
            params.append(param)
            slots.append(_Slot(sp.name, positional, param.name))
            continue
        inner = [p for _, p in _params_of(expander, override, resource_id=False)]
        params.extend(inner)
        slots.append(_Slot(sp.name, positional, None, expander, tuple(p.name for p in inner)))
    takes_query = any(p.kind is p.VAR_KEYWORD for p in _signature(method).parameters.values())
    query: tuple[Param, ...] = ()
    if takes_query and operation is not None:
        query = tuple(p for p in query_params(operation) if p.name not in {q.name for q in params})
        params.extend(query)

    def build(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for slot in slots:
            if slot.expander is not None:
                given = {n: values[n] for n in slot.expanded if values.get(n) is not None}
                value = slot.expander(**given)
            else:
                value = values.get(slot.source or slot.name)
            if slot.positional:
                args.append(value)
            elif value is not None:
                kwargs[slot.name] = value
        for q in query:
            if values.get(q.name) is not None:
                kwargs[q.name] = values[q.name]
        return tuple(args), query_kwargs(kwargs)

    return tuple(params), build


def _service_of(method: Callable[..., Any]) -> str:
    for name, cls in SERVICES.items():
        if getattr(cls, method.__name__, None) is method:
            return name
    raise LookupError(f"{method.__qualname__} is not a method of a client service")


def _kind_of(method: Callable[..., Any]) -> ActionKind:
    name = method.__name__
    if name.startswith("iter_"):
        return "list"
    if "progress" in _signature(method).parameters:
        return "bulk"
    return "get" if name.startswith(("get_", "query_")) else "write"


def _operations_of(method: Callable[..., Any]) -> tuple[str, ...]:
    # the services name their methods after the operation they call (iter_x walks get_x)
    name = method.__name__
    op_id = "get_" + name.removeprefix("iter_") if name.startswith("iter_") else name
    catalog.get(op_id)  # a method named otherwise must declare its operations
    return (op_id,)


def declare(
    cli_name: str,
    method: Callable[..., Any],
    summary: str,
    *,
    operations: tuple[str, ...] | None = None,
    kind: ActionKind | None = None,
    expand: Mapping[str, Callable[..., Any]] | None = None,
    override: Mapping[str, Mapping[str, Any]] | None = None,
    build: Build | None = None,
    service: str | None = None,
    cls: type[Action] = Action,
) -> Action:
    """The action ``cli_name`` (``"lists create"``) calling the service ``method``.

    Its params are derived from ``method`` (see :func:`derive`); its operations default to
    the one the method is named after, its kind to what the method's name and signature
    say (``iter_…`` lists, a ``progress`` parameter makes it bulk, ``get_…`` reads).
    A ``build`` replaces the derived mapping of values to the call's arguments.
    """
    resource, _, name = cli_name.partition(" ")
    ops = operations or _operations_of(method)
    params, derived = derive(method, operation=ops[0], expand=expand, override=override)
    return cls(
        resource=resource,
        name=name,
        summary=summary,
        service=service or _service_of(method),
        method=method.__name__,
        operations=ops,
        params=params,
        kind=kind or _kind_of(method),
        build=build or derived,
    )
