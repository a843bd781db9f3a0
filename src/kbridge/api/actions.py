"""The one action registry: every Klaviyo action kbridge offers, declared once.

An :class:`Action` names its CLI spelling (``profiles create``), its
parameters (type, help, required, CLI flag), the catalogue operations it
uses — so its scopes and rate tier are known without calling it — and the
service method that performs it. The CLI is generated from this registry;
a web UI, an agent interface or least-scope planning read the same list::

    for action in actions.registry().values():
        print(action.cli_name, action.scopes)

Parameter values arrive as plain text (from a command line, a form, an
agent) and are converted by :func:`coerce`; :meth:`Action.invoke` then calls
the service with typed values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from kbridge import catalog
from kbridge.api.resources import Contact, NewEvent, email_message, sms_message, timeframe
from kbridge.api.validation import ValidationError, check_aware
from kbridge.catalog import Operation, RateLimit
from kbridge.core.jsoncodec import JSONDecodeError, loads

if TYPE_CHECKING:
    from kbridge.api.client import AsyncClient

__all__ = [
    "Action",
    "ActionKind",
    "Param",
    "ParamType",
    "coerce",
    "get",
    "read_text_file",
    "registry",
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
        return args, _query_kwargs(kwargs)

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


def _query_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fields``/``additional_fields`` given as ``TYPE=a,b`` texts become mappings."""
    for key in ("fields", "additional_fields"):
        value = kwargs.get(key)
        if isinstance(value, list):
            kwargs[key] = _pairs(value, key)
    return kwargs


# -- declarations ---------------------------------------------------------------
ID = Param("id", argument=True, required=True, help="the resource id")
FILTER = Param("filter", help="Klaviyo filter, e.g. equals(email,'a@b.co')")
SORT = Param("sort", help="sort key; prefix - for descending")
FIELDS = Param("fields", "strs", help="sparse fieldset TYPE=a,b (repeatable)")
INCLUDE = Param("include", "strs", help="related resources to include (repeatable)")
ADDITIONAL = Param("additional_fields", "strs", help="TYPE=field (e.g. profile=subscriptions)")
PAGE_SIZE = Param("page_size", "int", help="page size (default: the maximum)")
NAME = Param("name", required=True, help="the name")


def _list_query(op_id: str) -> tuple[Param, ...]:
    """The query params ``op_id`` accepts, per the catalogue."""
    op = catalog.get(op_id)
    out: list[Param] = []
    if op.filters:
        out.append(FILTER)
    if op.sort:
        out.append(SORT)
    if op.fields:
        out.append(FIELDS)
    if op.include:
        out.append(INCLUDE)
    if op.additional_fields:
        out.append(ADDITIONAL)
    if op.page_size_param and op.max_page_size:
        out.append(PAGE_SIZE)
    return tuple(out)


def _listing(
    resource: str,
    op_id: str,
    method: str,
    summary: str,
    *,
    name: str = "list",
    service: str | None = None,
    extra: tuple[Param, ...] = (),
    with_id: bool = False,
) -> Action:
    params = ((ID,) if with_id else ()) + extra + _list_query(op_id)
    return Action(
        resource,
        name,
        summary,
        service or resource.replace("-", "_"),
        method,
        (op_id,),
        params,
        "list",
    )


def _getting(resource: str, op_id: str, summary: str, *, service: str | None = None) -> Action:
    op = catalog.get(op_id)
    optional = (
        FIELDS if op.fields else None,
        INCLUDE if op.include else None,
        ADDITIONAL if op.additional_fields else None,
    )
    params = (ID, *(p for p in optional if p is not None))
    return Action(
        resource, "get", summary, service or resource.replace("-", "_"), op_id, (op_id,), params
    )


def _deleting(resource: str, op_id: str, summary: str) -> Action:
    return Action(
        resource, "delete", summary, resource.replace("-", "_"), op_id, (op_id,), (ID,), "write"
    )


PROFILE_FIELDS = (
    Param("email", help="email address"),
    Param("phone_number", help="E.164 phone number, e.g. +15005550006"),
    Param("external_id", help="your system's id"),
    Param("first_name"),
    Param("last_name"),
    Param("organization"),
    Param("title"),
    Param("image", help="image URL"),
    Param("locale", help="e.g. en-US"),
    Param("location", "json_object", help='JSON object, e.g. {"city": "Paris"} (or @file.json)'),
    Param("properties", "json_object", help="custom properties as a JSON object (or @file.json)"),
)

EMAIL_CONTENT = (
    Param("channel", choices=("email", "sms"), default="email", help="email or sms"),
    Param("subject", help="email subject"),
    Param("from_email", help="sender address"),
    Param("from_label", help="sender name"),
    Param("preview_text"),
    Param("sms_body", help="SMS text (channel sms)"),
)


def _campaign_create(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if values.get("channel", "email") == "sms":
        message = sms_message(body=values.get("sms_body") or "")
    else:
        for required in ("subject", "from_email"):
            if not values.get(required):
                raise ValidationError(required, "is required for an email campaign")
        message = email_message(
            subject=values["subject"],
            from_email=values["from_email"],
            from_label=values.get("from_label"),
            preview_text=values.get("preview_text"),
        )
    kwargs = {
        "name": values["name"],
        "included": values.get("included") or [],
        "excluded": values.get("excluded") or [],
        "message": message,
        "send_at": values.get("send_at"),
    }
    return (), kwargs


def _report(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    frame = timeframe(values.get("timeframe"), start=values.get("start"), end=values.get("end"))
    kwargs = {
        "statistics": values.get("statistics") or [],
        "conversion_metric_id": values.get("conversion_metric_id") or "",
        "timeframe": frame,
        "group_by": values.get("group_by"),
        "filter": values.get("filter"),
    }
    return (), kwargs


REPORT_PARAMS = (
    Param("statistics", "strs", required=True, help="e.g. opens, clicks (repeatable)"),
    Param("conversion_metric_id", required=True, help="metric counted as a conversion"),
    Param("timeframe", help="e.g. last_30_days (or --start/--end)"),
    Param("start", "datetime"),
    Param("end", "datetime"),
    Param("group_by", "strs", help="grouping (repeatable)"),
    Param("filter"),
)


def _contacts(values: Mapping[str, Any]) -> list[Contact]:
    items = list(values.get("profile") or [])
    if values.get("file") is not None:
        items += [ln.strip() for ln in values["file"].splitlines() if ln.strip()]
    return [Contact.parse(i) for i in items]


def _subscribe(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "list_id": values.get("list_id"),
        "channels": values.get("channel") or ["email"],
    }
    if values.get("custom_source") is not None:
        kwargs["custom_source"] = values["custom_source"]
    return (_contacts(values),), kwargs


def _unsubscribe(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    kwargs = {"list_id": values.get("list_id"), "channels": values.get("channel") or ["email"]}
    return (_contacts(values),), kwargs


SUBSCRIBE_PARAMS = (
    Param("profile", "strs", help="an email or +E.164 phone number (repeatable)"),
    Param("file", "text_file", help="a file with one email or phone number per line"),
    Param("list_id", help="the list to subscribe into"),
    Param("channel", "strs", help="email and/or sms (repeatable; default email)"),
)


def _event_from(obj: Any, where: str) -> NewEvent:
    if not isinstance(obj, Mapping):
        raise ValidationError(where, "each event must be a JSON object")
    time = obj.get("time")
    parsed = None
    if time is not None:
        try:
            parsed = datetime.fromisoformat(str(time).replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{where}.time", f"{time!r} is not ISO 8601") from None
    try:
        return NewEvent(
            metric=str(obj.get("metric", "")),
            profile=obj.get("profile") or {},
            properties=obj.get("properties") or {},
            time=parsed,
            value=obj.get("value"),
            value_currency=obj.get("value_currency"),
            unique_id=obj.get("unique_id"),
        )
    except TypeError as exc:
        raise ValidationError(where, str(exc)) from None


def _event_create(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    profile = {
        k: values[k] for k in ("email", "phone_number", "external_id") if values.get(k) is not None
    }
    if values.get("profile_id"):
        profile["id"] = values["profile_id"]
    event = NewEvent(
        metric=values.get("metric") or "",
        profile=profile,
        properties=values.get("properties") or {},
        time=values.get("time"),
        value=values.get("value"),
        value_currency=values.get("value_currency"),
        unique_id=values.get("unique_id"),
    )
    return (event,), {}


def _events_bulk(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    text: str = values["file"]
    events = []
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except JSONDecodeError:
            raise ValidationError(f"file line {n + 1}", "is not valid JSON") from None
        events.append(_event_from(obj, f"file line {n + 1}"))
    return (events,), {}


def _image_upload(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if (values.get("url") is None) == (values.get("file") is None):
        raise ValidationError("url", "give exactly one of --url (https or data: URI) or --file")
    kwargs = {k: values[k] for k in ("name", "hidden") if values.get(k) is not None}
    if values.get("file") is not None:
        return (values["file"],), kwargs
    return (), {"url": values["url"], **kwargs}


def _image_method(values: Mapping[str, Any]) -> str:
    return "upload_image_from_file" if values.get("file") is not None else "upload_image_from_url"


def _deletion(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    keys = ("email", "phone_number", "profile_id")
    return (), {k: values[k] for k in keys if values.get(k) is not None}


def _declare() -> list[Action]:
    a: list[Action] = []
    # accounts
    a.append(
        Action(
            "accounts",
            "list",
            "The account of this key",
            "accounts",
            "get_accounts",
            ("get_accounts",),
            (FIELDS,),
        )
    )
    a.append(_getting("accounts", "get_account", "One account"))
    # profiles
    a.append(_listing("profiles", "get_profiles", "iter_profiles", "List profiles"))
    a.append(_getting("profiles", "get_profile", "One profile"))
    a.append(
        Action(
            "profiles",
            "create",
            "Create a profile",
            "profiles",
            "create_profile",
            ("create_profile",),
            PROFILE_FIELDS,
            "write",
        )
    )
    a.append(
        Action(
            "profiles",
            "upsert",
            "Create a profile, or update the one with this email / phone / external id",
            "profiles",
            "create_or_update_profile",
            ("create_or_update_profile",),
            PROFILE_FIELDS,
            "write",
        )
    )
    a.append(
        Action(
            "profiles",
            "update",
            "Update a profile's given attributes",
            "profiles",
            "update_profile",
            ("update_profile",),
            (ID, *PROFILE_FIELDS),
            "write",
        )
    )
    # lists
    a.append(_listing("lists", "get_lists", "iter_lists", "List lists"))
    a.append(_getting("lists", "get_list", "One list"))
    opt_in = Param("opt_in_process", choices=("single_opt_in", "double_opt_in"))
    a.append(
        Action(
            "lists",
            "create",
            "Create a list",
            "lists",
            "create_list",
            ("create_list",),
            (NAME, opt_in),
            "write",
        )
    )
    a.append(
        Action(
            "lists",
            "update",
            "Rename a list",
            "lists",
            "update_list",
            ("update_list",),
            (ID, Param("name"), opt_in),
            "write",
        )
    )
    a.append(_deleting("lists", "delete_list", "Delete a list"))
    a.append(
        _listing(
            "lists",
            "get_profiles_for_list",
            "iter_profiles_for_list",
            "Profiles on a list",
            name="profiles",
            with_id=True,
        )
    )
    ids = Param(
        "profile_ids",
        "strs",
        flag="--profile-id",
        help="a profile id (repeatable; any number, sent 1000 at a time)",
    )
    emails = Param(
        "emails",
        "strs",
        flag="--email",
        help="a profile's email (repeatable; looked up first, membership only, no consent)",
    )
    a.append(
        _Membership(
            "lists",
            "add-profiles",
            "Add profiles to a list, by id or by email",
            "lists",
            "add_profiles_to_list",
            ("add_profiles_to_list", "get_profiles"),
            (ID, ids, emails),
            "bulk",
            _membership,
        )
    )
    a.append(
        _Membership(
            "lists",
            "remove-profiles",
            "Remove profiles from a list, by id or by email",
            "lists",
            "remove_profiles_from_list",
            ("remove_profiles_from_list", "get_profiles"),
            (ID, ids, emails),
            "bulk",
            _membership,
        )
    )
    # segments
    groups = Param(
        "condition_groups", "json_list", help="JSON list of {conditions: [...]} (or @file)"
    )
    starred = Param("is_starred", "bool", help="star the segment")
    a.append(_listing("segments", "get_segments", "iter_segments", "List segments"))
    a.append(_getting("segments", "get_segment", "One segment"))
    a.append(
        Action(
            "segments",
            "create",
            "Create a segment",
            "segments",
            "create_segment",
            ("create_segment",),
            (NAME, Param(groups.name, "json_list", help=groups.help, required=True), starred),
            "write",
        )
    )
    a.append(
        Action(
            "segments",
            "update",
            "Update a segment",
            "segments",
            "update_segment",
            ("update_segment",),
            (ID, Param("name"), groups, starred),
            "write",
        )
    )
    a.append(_deleting("segments", "delete_segment", "Delete a segment"))
    a.append(
        _listing(
            "segments",
            "get_profiles_for_segment",
            "iter_profiles_for_segment",
            "Profiles in a segment",
            name="profiles",
            with_id=True,
        )
    )
    # metrics
    a.append(_listing("metrics", "get_metrics", "iter_metrics", "List metrics"))
    a.append(_getting("metrics", "get_metric", "One metric"))
    # events
    a.append(_listing("events", "get_events", "iter_events", "List events"))
    a.append(_getting("events", "get_event", "One event"))
    a.append(
        Action(
            "events",
            "create",
            "Record one event",
            "events",
            "create_event",
            ("create_event",),
            (
                Param("metric", required=True, help="metric name, e.g. 'Placed Order'"),
                Param("email"),
                Param("phone_number"),
                Param("external_id"),
                Param("profile_id"),
                Param("properties", "json_object", help="JSON object (or @file.json)"),
                Param("time", "datetime"),
                Param("value", "float"),
                Param("value_currency", help="ISO 4217, e.g. USD"),
                Param("unique_id"),
            ),
            "write",
            _event_create,
        )
    )
    a.append(
        Action(
            "events",
            "bulk-create",
            "Record many events from a JSON-lines file",
            "events",
            "bulk_create_events",
            ("bulk_create_events",),
            (
                Param(
                    "file",
                    "text_file",
                    required=True,
                    help="JSON lines: {metric, profile: {email…}, properties, time, value}",
                ),
            ),
            "bulk",
            _events_bulk,
        )
    )
    # campaigns
    a.append(
        _listing(
            "campaigns",
            "get_campaigns",
            "iter_campaigns",
            "List campaigns of a channel",
            extra=(
                Param(
                    "channel",
                    choices=("email", "sms", "mobile_push"),
                    help="required unless the filter names messages.channel",
                ),
            ),
        )
    )
    a.append(_getting("campaigns", "get_campaign", "One campaign"))
    audience = (
        Param("included", "strs", flag="--include-audience", help="list/segment id"),
        Param("excluded", "strs", flag="--exclude-audience", help="list/segment id"),
    )
    a.append(
        Action(
            "campaigns",
            "create",
            "Create a draft campaign",
            "campaigns",
            "create_campaign",
            ("create_campaign",),
            (
                NAME,
                *audience,
                *EMAIL_CONTENT,
                Param("send_at", "datetime", help="scheduled send time (ISO, with offset)"),
            ),
            "write",
            _campaign_create,
        )
    )
    a.append(
        Action(
            "campaigns",
            "update",
            "Update a campaign",
            "campaigns",
            "update_campaign",
            ("update_campaign",),
            (ID, Param("name"), *audience, Param("send_at", "datetime")),
            "write",
        )
    )
    a.append(_deleting("campaigns", "delete_campaign", "Delete a campaign"))
    a.append(
        Action(
            "campaigns",
            "clone",
            "Clone a campaign",
            "campaigns",
            "create_campaign_clone",
            ("create_campaign_clone",),
            (ID, Param("new_name")),
            "write",
        )
    )
    a.append(
        Action(
            "campaigns",
            "messages",
            "A campaign's messages",
            "campaigns",
            "get_messages_for_campaign",
            ("get_messages_for_campaign",),
            (ID,),
        )
    )
    a.append(
        Action(
            "campaigns",
            "assign-template",
            "Give a campaign message a template",
            "campaigns",
            "assign_template_to_campaign_message",
            ("assign_template_to_campaign_message",),
            (
                Param("id", argument=True, required=True, help="the message id"),
                Param("template_id", required=True),
            ),
            "write",
        )
    )
    a.append(
        Action(
            "campaigns",
            "send",
            "Send or schedule a campaign",
            "campaigns",
            "send_campaign",
            ("send_campaign",),
            (ID,),
            "write",
        )
    )
    a.append(
        Action(
            "campaigns",
            "send-job",
            "A send job's status",
            "campaigns",
            "get_campaign_send_job",
            ("get_campaign_send_job",),
            (ID,),
        )
    )
    a.append(
        Action(
            "campaigns",
            "cancel-send",
            "Cancel a send, or revert it to draft",
            "campaigns",
            "cancel_campaign_send",
            ("cancel_campaign_send",),
            (
                Param("id", argument=True, required=True, help="the send job id"),
                Param("action", choices=("cancel", "revert"), default="cancel"),
            ),
            "write",
        )
    )
    # templates
    html = Param("html", "text_file", flag="--html-file", help="file with the template's HTML")
    text = Param("text", "text_file", flag="--text-file", help="file with the plain-text version")
    a.append(_listing("templates", "get_templates", "iter_templates", "List templates"))
    a.append(_getting("templates", "get_template", "One template"))
    a.append(
        Action(
            "templates",
            "create",
            "Create a CODE template",
            "templates",
            "create_template",
            ("create_template",),
            (NAME, html, text),
            "write",
        )
    )
    a.append(
        Action(
            "templates",
            "update",
            "Update a template",
            "templates",
            "update_template",
            ("update_template",),
            (ID, Param("name"), html, text),
            "write",
        )
    )
    a.append(_deleting("templates", "delete_template", "Delete a template"))
    a.append(
        Action(
            "templates",
            "render",
            "Render a template with a context",
            "templates",
            "render_template",
            ("render_template",),
            (ID, Param("context", "json_object", help="JSON object (or @file.json)")),
            "write",
        )
    )
    a.append(
        Action(
            "templates",
            "clone",
            "Clone a template",
            "templates",
            "clone_template",
            ("clone_template",),
            (ID, Param("name")),
            "write",
        )
    )
    # images
    a.append(_listing("images", "get_images", "iter_images", "List images"))
    a.append(_getting("images", "get_image", "One image"))
    a.append(
        Action(
            "images",
            "update",
            "Rename or hide an image",
            "images",
            "update_image",
            ("update_image",),
            (ID, Param("name"), Param("hidden", "bool")),
            "write",
        )
    )
    a.append(
        _ImageUpload(
            "images",
            "upload",
            "Upload an image from a URL, data URI or file",
            "images",
            "upload_image_from_url",
            ("upload_image_from_url", "upload_image_from_file"),
            (
                Param("url", help="https URL or data: URI"),
                Param("file", "path", help="a local image file"),
                Param("name"),
                Param("hidden", "bool"),
            ),
            "write",
            _image_upload,
        )
    )
    # flows
    a.append(_listing("flows", "get_flows", "iter_flows", "List flows"))
    a.append(_getting("flows", "get_flow", "One flow"))
    a.append(
        Action(
            "flows",
            "create",
            "Create a flow from a definition",
            "flows",
            "create_flow",
            ("create_flow",),
            (NAME, Param("definition", "json_object", required=True, help="JSON (or @file)")),
            "write",
        )
    )
    a.append(
        Action(
            "flows",
            "update-status",
            "Set a flow's status",
            "flows",
            "update_flow",
            ("update_flow",),
            (ID, Param("status", required=True, choices=("draft", "manual", "live"))),
            "write",
        )
    )
    a.append(_deleting("flows", "delete_flow", "Delete a flow"))
    # tags
    a.append(_listing("tags", "get_tags", "iter_tags", "List tags"))
    a.append(_getting("tags", "get_tag", "One tag"))
    a.append(
        Action(
            "tags",
            "create",
            "Create a tag",
            "tags",
            "create_tag",
            ("create_tag",),
            (NAME, Param("tag_group_id")),
            "write",
        )
    )
    a.append(
        Action(
            "tags",
            "update",
            "Rename a tag",
            "tags",
            "update_tag",
            ("update_tag",),
            (ID, NAME),
            "write",
        )
    )
    a.append(_deleting("tags", "delete_tag", "Delete a tag"))
    kind = Param("kind", required=True, choices=("campaigns", "flows", "lists", "segments"))
    targets = Param("ids", "strs", required=True, flag="--resource-id", help="repeatable")
    a.append(
        Action(
            "tags",
            "attach",
            "Tag campaigns, flows, lists or segments",
            "tags",
            "tag_resources",
            ("tag_campaigns", "tag_flows", "tag_lists", "tag_segments"),
            (ID, kind, targets),
            "write",
        )
    )
    a.append(
        Action(
            "tags",
            "detach",
            "Untag campaigns, flows, lists or segments",
            "tags",
            "untag_resources",
            (
                "remove_tag_from_campaigns",
                "remove_tag_from_flows",
                "remove_tag_from_lists",
                "remove_tag_from_segments",
            ),
            (ID, kind, targets),
            "write",
        )
    )
    # subscriptions
    a.append(
        Action(
            "subscriptions",
            "subscribe",
            "Subscribe profiles to marketing",
            "subscriptions",
            "bulk_subscribe_profiles",
            ("bulk_subscribe_profiles",),
            (*SUBSCRIBE_PARAMS, Param("custom_source")),
            "bulk",
            _subscribe,
        )
    )
    a.append(
        Action(
            "subscriptions",
            "unsubscribe",
            "Unsubscribe profiles from marketing",
            "subscriptions",
            "bulk_unsubscribe_profiles",
            ("bulk_unsubscribe_profiles",),
            SUBSCRIBE_PARAMS,
            "bulk",
            _unsubscribe,
        )
    )
    # reporting
    a.append(
        Action(
            "reporting",
            "campaign-values",
            "Campaign performance values",
            "reporting",
            "query_campaign_values",
            ("query_campaign_values",),
            REPORT_PARAMS,
            "get",
            _report,
        )
    )
    a.append(
        Action(
            "reporting",
            "flow-values",
            "Flow performance values",
            "reporting",
            "query_flow_values",
            ("query_flow_values",),
            REPORT_PARAMS,
            "get",
            _report,
        )
    )
    # data privacy
    a.append(
        Action(
            "data-privacy",
            "request-deletion",
            "Delete a person's data (one identifier)",
            "data_privacy",
            "request_profile_deletion",
            ("request_profile_deletion",),
            (Param("email"), Param("phone_number"), Param("profile_id")),
            "write",
            _deletion,
        )
    )
    return a


@dataclass(frozen=True, slots=True)
class _ImageUpload(Action):
    """Upload picks the file or URL operation from the values given."""

    def _method_for(self, values: Mapping[str, Any]) -> str:
        return _image_method(values)


def _membership(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    ids, emails = list(values.get("profile_ids") or ()), list(values.get("emails") or ())
    if not ids and not emails:
        raise ValidationError("profile_ids", "give --profile-id ID or --email ADDRESS (repeatable)")
    kwargs: dict[str, Any] = {"profile_ids": ids}
    if emails:
        kwargs["emails"] = emails
    return (values["id"],), kwargs


@dataclass(frozen=True, slots=True)
class _Membership(Action):
    """With emails, the ``…_by_email`` variant looks the profiles up first."""

    def _method_for(self, values: Mapping[str, Any]) -> str:
        return f"{self.method}_by_email" if values.get("emails") else self.method

    def bulk_size(self, values: Mapping[str, Any]) -> int | None:
        return len(set(values.get("profile_ids") or ())) + len(set(values.get("emails") or ()))


@cache
def registry() -> Mapping[str, Action]:
    """Every action by CLI name (``"profiles create"``), in declaration order (read-only)."""
    actions = _declare()
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
