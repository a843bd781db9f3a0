"""The streams, declared as data: what to call, which table, how a resource becomes a row.

A stream names its Klaviyo operation, its table (``account_id`` first, keyed
by ``(account_id, id)`` or the membership pair), how to turn one JSON:API
resource into a tuple, and its replication cursor (the attribute, the
filter field and whether the API sorts by it, which decides whether a
bookmark can advance page by page). Membership streams name a parent whose
ids they walk; the events stream is split into time slices. The engine
(:mod:`kbridge.sync.engine`) reads these facts and nothing else.

Rows are plain tuples: timestamps stay RFC 3339 strings, nested objects are
serialised to JSON text once, so no object is built per value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kbridge.api import Resource
from kbridge.core.jsoncodec import dumps_str
from kbridge.sync.errors import UnknownStreamError
from kbridge.warehouse import ColumnType, FromJson, Table, table

__all__ = [
    "EVENTS_LOOKBACK",
    "REPORT_LOOKBACK",
    "REPORT_STATISTICS",
    "RUN_COLUMN",
    "STREAMS",
    "UPDATED_LOOKBACK",
    "Child",
    "Cursor",
    "Parent",
    "Partition",
    "Record",
    "Report",
    "Stream",
    "as_record",
    "get_stream",
    "select_streams",
]

#: the sync run that last wrote a membership row; rows of older runs are swept away
RUN_COLUMN = "_kbridge_run"

Record = Mapping[str, Any]
"""One JSON:API resource object as decoded (a plain mapping: no object is built per record)."""

Extract = Callable[[Record, "str | None"], tuple[Any, ...]]

#: events can appear days after their ``datetime`` (Klaviyo is eventually consistent)
EVENTS_LOOKBACK = timedelta(days=7)
#: records whose ``updated`` became visible after later ones were read
UPDATED_LOOKBACK = timedelta(days=1)
#: report days whose figures can still change (late events); each re-read day of a values
#: report is one more request of the 225 a day, so the values stream keeps it short
REPORT_LOOKBACK = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Replication cursor: ``attribute`` of each record, filtered as ``filter_field``.

    ``inclusive`` means the API offers ``greater-or-equal``; otherwise the engine
    asks ``greater-than(bookmark − 1 s)`` (Klaviyo timestamps have whole seconds),
    so records sharing the bookmark's second are never skipped. ``sort`` names the
    ascending sort that lets the bookmark advance after every page.
    """

    attribute: str
    filter_field: str
    inclusive: bool
    sort: str | None


@dataclass(frozen=True, slots=True)
class Partition:
    """A slice of one stream with its own bookmark, e.g. campaigns per channel."""

    name: str
    filter: str | None = None


@dataclass(frozen=True, slots=True)
class Parent:
    """Where a membership stream finds its parents' ids (an id-only listing)."""

    operation_id: str
    params: Mapping[str, str]
    #: take the ids of this ``included`` type instead of the listed resources' own ids
    included_type: str | None = None


@dataclass(frozen=True, slots=True)
class Child:
    """Rows for another table: each record's ``relationship``, resolved through ``included``
    (the extractor gets the owning record's id as its context)."""

    relationship: str
    table: Table
    extract: Extract
    #: the column holding the owner's id (a reconcile removes children of deleted owners)
    parent_column: str


@dataclass(frozen=True, slots=True)
class Report:
    """A daily performance stream from the reporting API.

    ``kind="values"`` asks one completed UTC day per request (values reports have no
    interval, so a day's figures cost a request); ``kind="series"`` asks
    ``days_per_request`` days at ``interval=daily``, the longest timeframe the endpoint
    allows. A run plans the whole range (from the start date, else
    ``default_backfill_days`` back) within the day's cap of 225 requests; what does not
    fit follows on a later run from the bookmark.
    """

    kind: str
    object_type: str
    group_by: tuple[str, ...]
    days_per_request: int = 1
    default_backfill_days: int = 30


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    operation_id: str
    table: Table
    extract: Extract
    cursor: Cursor | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    partitions: tuple[Partition, ...] = (Partition(""),)
    parent: Parent | None = None
    children: tuple[Child, ...] = ()
    #: events: split the history into windows of this many days, fetched concurrently
    slice_days: int | None = None
    #: reporting-API streams (POST queries by day) instead of a paginated listing
    report: Report | None = None
    #: facts (events, report days): a start date bounds them; dimensions sync whole
    facts: bool = False
    #: attribute asked for in a reconcile's id-only scan (sparse fieldset); None: no reconcile
    id_field: str | None = None
    description: str = ""
    #: how far behind its bookmark an incremental run starts reading again (cursor streams)
    lookback: timedelta = UPDATED_LOOKBACK
    #: rows merged into one commit (None: the engine's default, 5,000)
    flush_rows: int | None = None
    #: where each column sits in a record, for warehouses that read page bodies into rows
    #: themselves; must give the rows ``extract`` gives (a test holds them together)
    from_json: Mapping[str, FromJson] | None = None

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.table, *(c.table for c in self.children))

    @property
    def resource_type(self) -> str:
        return self.table.name.rstrip("s") if not self.parent else "profile"


# -- helpers ------------------------------------------------------------------------


def _j(value: Any) -> str | None:
    """Nested value → JSON text (``None`` stays NULL)."""
    return None if value is None else dumps_str(value)


def as_record(r: Resource) -> Record:
    """A :class:`~kbridge.api.Resource` in the plain shape extractors read."""
    return {
        "type": r.type,
        "id": r.id,
        "attributes": r.attributes,
        "relationships": r.relationships,
    }


def _attrs(r: Record) -> Mapping[str, Any]:
    """The record's attributes; null (or an odd shape) is empty, so one record cannot fail
    a page."""
    a = r.get("attributes")
    return a if isinstance(a, dict) else {}


def _id(r: Record) -> str | None:
    value = r.get("id")
    return None if value is None else str(value)


def _raw(r: Record) -> str:
    return dumps_str(_attrs(r))


def _rel_id(r: Record, name: str) -> str | None:
    """The id a to-one relationship points at (plain dict reads: this runs per event)."""
    rels = r.get("relationships")
    rel = rels.get(name) if isinstance(rels, dict) else None
    data = rel.get("data") if isinstance(rel, dict) else None
    if isinstance(data, dict):
        value = data.get("id")
        return None if value is None else str(value)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        first = data[0].get("id")
        return None if first is None else str(first)
    return None


def _consent(attrs: Mapping[str, Any], channel: str) -> str | None:
    sub = attrs.get("subscriptions") or {}
    marketing = (sub.get(channel) or {}).get("marketing") or {}
    value = marketing.get("consent")
    return None if value is None else str(value)


# -- tables and extractors ------------------------------------------------------------------

ACCOUNTS = table(
    "accounts",
    [
        "id",
        ("test_account", "boolean"),
        "organization_name",
        "industry",
        "timezone",
        "preferred_currency",
        "locale",
        ("contact_information", "json"),
        ("raw", "json"),
    ],
)


def _account(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    contact = a.get("contact_information") or {}
    return (
        _id(r),
        a.get("test_account"),
        contact.get("organization_name"),
        a.get("industry"),
        a.get("timezone"),
        a.get("preferred_currency"),
        a.get("locale"),
        _j(contact),
        _raw(r),
    )


PROFILES = table(
    "profiles",
    [
        "id",
        "email",
        "phone_number",
        "external_id",
        "first_name",
        "last_name",
        "organization",
        "locale",
        "title",
        "image",
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("last_event_date", "timestamp"),
        "email_consent",
        "sms_consent",
        ("location", "json"),
        ("properties", "json"),
        ("subscriptions", "json"),
        ("predictive_analytics", "json"),
        ("other_attributes", "json"),
    ],
    # every attribute has a column of its own: a copy of them all doubled the table
    retired=["raw"],
)


def _consent_path(channel: str) -> FromJson:
    return FromJson(("attributes", "subscriptions", channel, "marketing", "consent"))


def _held(paths: Mapping[str, FromJson]) -> frozenset[str]:
    """The attributes that columns of their own hold."""
    return frozenset(p.path[1] for p in paths.values() if p.path[:1] == ("attributes",))


#: ``_profile`` as paths, for the DuckDB page reader: each column is the attribute of its
#: name, but for these
_PROFILE_COLUMNS = {
    **{
        c.name: FromJson(("attributes", c.name)) for c in PROFILES.columns if c.name != "account_id"
    },
    "id": FromJson(("id",)),
    "email_consent": _consent_path("email"),
    "sms_consent": _consent_path("sms"),
}
del _PROFILE_COLUMNS["other_attributes"]
#: the profile attributes with columns of their own; any other lands in ``other_attributes``
PROFILE_ATTRIBUTES = _held(_PROFILE_COLUMNS)
PROFILE_PATHS = {
    **_PROFILE_COLUMNS,
    "other_attributes": FromJson(("attributes",), default="{}", without=PROFILE_ATTRIBUTES),
}


def _others(a: Mapping[str, Any], held: frozenset[str]) -> str:
    """The attributes no column holds, as JSON (``{}``: none; Klaviyo may add some)."""
    return dumps_str({k: v for k, v in a.items() if k not in held})


def _profile(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        a.get("email"),
        a.get("phone_number"),
        a.get("external_id"),
        a.get("first_name"),
        a.get("last_name"),
        a.get("organization"),
        a.get("locale"),
        a.get("title"),
        a.get("image"),
        a.get("created"),
        a.get("updated"),
        a.get("last_event_date"),
        _consent(a, "email"),
        _consent(a, "sms"),
        _j(a.get("location")),
        _j(a.get("properties")),
        _j(a.get("subscriptions")),
        _j(a.get("predictive_analytics")),
        _others(a, PROFILE_ATTRIBUTES),
    )


LISTS = table(
    "lists",
    [
        "id",
        "name",
        "opt_in_process",
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("raw", "json"),
    ],
)


def _list(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        a.get("name"),
        a.get("opt_in_process"),
        a.get("created"),
        a.get("updated"),
        _raw(r),
    )


SEGMENTS = table(
    "segments",
    [
        "id",
        "name",
        ("definition", "json"),
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("is_active", "boolean"),
        ("is_processing", "boolean"),
        ("is_starred", "boolean"),
        ("raw", "json"),
    ],
)


def _segment(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        a.get("name"),
        _j(a.get("definition")),
        a.get("created"),
        a.get("updated"),
        a.get("is_active"),
        a.get("is_processing"),
        a.get("is_starred"),
        _raw(r),
    )


def _membership_table(name: str, parent_column: str) -> Table:
    return table(
        name,
        [parent_column, "profile_id", ("joined_group_at", "timestamp"), RUN_COLUMN],
        key=(parent_column, "profile_id"),
    )


LIST_MEMBERSHIPS = _membership_table("list_memberships", "list_id")
SEGMENT_MEMBERSHIPS = _membership_table("segment_memberships", "segment_id")


def _membership(r: Record, parent_id: str | None) -> tuple[Any, ...]:
    return (parent_id, _id(r), _attrs(r).get("joined_group_at"))


METRICS = table(
    "metrics",
    [
        "id",
        "name",
        ("created", "timestamp"),
        ("updated", "timestamp"),
        "integration_name",
        "integration_category",
        ("integration", "json"),
        ("raw", "json"),
    ],
)


def _metric(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    integ = a.get("integration") or {}
    return (
        _id(r),
        a.get("name"),
        a.get("created"),
        a.get("updated"),
        integ.get("name"),
        integ.get("category"),
        _j(a.get("integration")),
        _raw(r),
    )


EVENTS = table(
    "events",
    [
        "id",
        "metric_id",
        "profile_id",
        ("datetime", "timestamp"),
        ("timestamp", "bigint"),
        "uuid",
        ("event_properties", "json"),
        ("other_attributes", "json"),
    ],
    # every attribute has a column of its own: a copy of them all doubled the table
    retired=["raw"],
)


_EVENT_COLUMNS = {
    "id": FromJson(("id",)),
    "metric_id": FromJson(("relationships", "metric", "data", "id")),
    "profile_id": FromJson(("relationships", "profile", "data", "id")),
    "datetime": FromJson(("attributes", "datetime")),
    "timestamp": FromJson(("attributes", "timestamp")),
    "uuid": FromJson(("attributes", "uuid")),
    "event_properties": FromJson(("attributes", "event_properties")),
}
#: the event attributes with columns of their own; any other lands in ``other_attributes``
EVENT_ATTRIBUTES = _held(_EVENT_COLUMNS)
#: ``_event`` as paths, for the DuckDB page reader
EVENT_PATHS = {
    **_EVENT_COLUMNS,
    "other_attributes": FromJson(("attributes",), default="{}", without=EVENT_ATTRIBUTES),
}


def _event(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    ts = a.get("timestamp")
    return (
        _id(r),
        _rel_id(r, "metric"),
        _rel_id(r, "profile"),
        a.get("datetime"),
        None if ts is None else int(ts),
        a.get("uuid"),
        _j(a.get("event_properties")),
        _others(a, EVENT_ATTRIBUTES),
    )


CAMPAIGNS = table(
    "campaigns",
    [
        "id",
        "channel",
        "name",
        "status",
        ("archived", "boolean"),
        ("audiences", "json"),
        ("send_options", "json"),
        ("tracking_options", "json"),
        ("send_strategy", "json"),
        ("created_at", "timestamp"),
        ("scheduled_at", "timestamp"),
        ("updated_at", "timestamp"),
        ("send_time", "timestamp"),
        ("raw", "json"),
    ],
)


def _campaign(r: Record, channel: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        channel,
        a.get("name"),
        a.get("status"),
        a.get("archived"),
        _j(a.get("audiences")),
        _j(a.get("send_options")),
        _j(a.get("tracking_options")),
        _j(a.get("send_strategy")),
        a.get("created_at"),
        a.get("scheduled_at"),
        a.get("updated_at"),
        a.get("send_time"),
        _raw(r),
    )


CAMPAIGN_MESSAGES = table(
    "campaign_messages",
    [
        "id",
        "campaign_id",
        "label",
        "channel",
        ("definition", "json"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
        ("raw", "json"),
    ],
)


def _campaign_message(r: Record, campaign_id: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    definition = a.get("definition") or a.get("content")
    channel = a.get("channel") or (definition or {}).get("channel")
    return (
        _id(r),
        _rel_id(r, "campaign") or campaign_id,
        a.get("label"),
        channel,
        _j(definition),
        a.get("created_at"),
        a.get("updated_at"),
        _raw(r),
    )


FLOWS = table(
    "flows",
    [
        "id",
        "name",
        "status",
        ("archived", "boolean"),
        "trigger_type",
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("raw", "json"),
    ],
)


def _flow(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        a.get("name"),
        a.get("status"),
        a.get("archived"),
        a.get("trigger_type"),
        a.get("created"),
        a.get("updated"),
        _raw(r),
    )


FLOW_ACTIONS = table(
    "flow_actions",
    [
        "id",
        "flow_id",
        "action_type",
        "status",
        ("settings", "json"),
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("raw", "json"),
    ],
)


def _flow_action(r: Record, flow_id: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        _rel_id(r, "flow") or flow_id,
        a.get("action_type"),
        a.get("status"),
        _j(a.get("settings")),
        a.get("created"),
        a.get("updated"),
        _raw(r),
    )


FLOW_MESSAGES = table(
    "flow_messages",
    [
        "id",
        "flow_action_id",
        "name",
        "channel",
        ("definition", "json"),
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("raw", "json"),
    ],
)


def _flow_message(r: Record, action_id: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    definition = a.get("definition") or a.get("content")
    channel = a.get("channel") or (definition or {}).get("channel")
    return (
        _id(r),
        _rel_id(r, "flow-action") or action_id,
        a.get("name"),
        channel,
        _j(definition),
        a.get("created"),
        a.get("updated"),
        _raw(r),
    )


TEMPLATES = table(
    "templates",
    [
        "id",
        "name",
        "editor_type",
        "html",
        "text",
        ("created", "timestamp"),
        ("updated", "timestamp"),
        ("raw", "json"),
    ],
)


def _template(r: Record, _: str | None) -> tuple[Any, ...]:
    a = _attrs(r)
    return (
        _id(r),
        a.get("name"),
        a.get("editor_type"),
        a.get("html"),
        a.get("text"),
        a.get("created"),
        a.get("updated"),
        _raw(r),
    )


TAGS = table("tags", ["id", "name", "tag_group_id", ("raw", "json")])


def _tag(r: Record, _: str | None) -> tuple[Any, ...]:
    return (_id(r), _attrs(r).get("name"), _rel_id(r, "tag-group"), _raw(r))


#: statistics asked of the reporting API; counts are typed columns, all kept in ``statistics``
REPORT_STATISTICS: tuple[str, ...] = (
    "recipients",
    "delivered",
    "opens",
    "opens_unique",
    "clicks",
    "clicks_unique",
    "conversions",
    "conversion_value",
    "unsubscribes",
    "bounced",
)
_STAT_COLUMNS: list[str | tuple[str, ColumnType]] = [
    (name, "double" if name == "conversion_value" else "bigint") for name in REPORT_STATISTICS
]

CAMPAIGN_VALUES_DAILY = table(
    "campaign_values_daily",
    [
        ("day", "timestamp"),
        "campaign_id",
        "campaign_message_id",
        "send_channel",
        *_STAT_COLUMNS,
        ("statistics", "json"),
    ],
    key=("day", "campaign_id", "campaign_message_id", "send_channel"),
)
FLOW_SERIES_DAILY = table(
    "flow_series_daily",
    [
        ("day", "timestamp"),
        "flow_id",
        "flow_message_id",
        "send_channel",
        *_STAT_COLUMNS,
        ("statistics", "json"),
    ],
    key=("day", "flow_id", "flow_message_id", "send_channel"),
)


def _no_resource(r: Record, _: str | None) -> tuple[Any, ...]:
    raise TypeError("report streams build rows from report results, not resources")


_UPDATED_GT = Cursor("updated", "updated", inclusive=False, sort="updated")

STREAMS: tuple[Stream, ...] = (
    Stream(
        "accounts",
        "get_accounts",
        ACCOUNTS,
        _account,
        description="the account the key belongs to (one row)",
    ),
    Stream(
        "profiles",
        "get_profiles",
        PROFILES,
        _profile,
        cursor=_UPDATED_GT,
        params={"additional-fields[profile]": "subscriptions"},
        id_field="created",
        from_json=PROFILE_PATHS,
        # wide rows (≈ 3 KB of JSON each): DuckDB spends ~30 µs a row on 1,000-row
        # inserts, ~40 µs on 5,000-row ones, and far more memory
        flush_rows=1000,
        description="profiles with subscriptions/consent, incremental by updated",
    ),
    Stream("lists", "get_lists", LISTS, _list, cursor=_UPDATED_GT, id_field="name"),
    Stream(
        "list_memberships",
        "get_profiles_for_list",
        LIST_MEMBERSHIPS,
        _membership,
        params={"fields[profile]": "joined_group_at"},
        parent=Parent("get_lists", {"fields[list]": "name"}),
        description="full refresh per list; rows of earlier runs swept at the end",
    ),
    Stream("segments", "get_segments", SEGMENTS, _segment, cursor=_UPDATED_GT, id_field="name"),
    Stream(
        "segment_memberships",
        "get_profiles_for_segment",
        SEGMENT_MEMBERSHIPS,
        _membership,
        params={"fields[profile]": "joined_group_at"},
        parent=Parent("get_segments", {"fields[segment]": "name"}),
    ),
    Stream(
        "metrics",
        "get_metrics",
        METRICS,
        _metric,
        id_field="name",
        description="no server-side cursor: every run reads all (few) metrics",
    ),
    Stream(
        "events",
        "get_events",
        EVENTS,
        _event,
        cursor=Cursor("datetime", "datetime", inclusive=True, sort="datetime"),
        slice_days=30,
        facts=True,
        lookback=EVENTS_LOOKBACK,
        from_json=EVENT_PATHS,
        description="incremental by datetime, history split into 30-day slices",
    ),
    Stream(
        "campaigns",
        "get_campaigns",
        CAMPAIGNS,
        _campaign,
        cursor=Cursor("updated_at", "updated_at", inclusive=True, sort="updated_at"),
        params={"include": "campaign-messages"},
        partitions=(
            Partition("email", "equals(messages.channel,'email')"),
            Partition("sms", "equals(messages.channel,'sms')"),
        ),
        children=(Child("campaign-messages", CAMPAIGN_MESSAGES, _campaign_message, "campaign_id"),),
        id_field="name",
    ),
    Stream(
        "flows",
        "get_flows",
        FLOWS,
        _flow,
        cursor=Cursor("updated", "updated", inclusive=True, sort="updated"),
        params={"include": "flow-actions"},
        children=(Child("flow-actions", FLOW_ACTIONS, _flow_action, "flow_id"),),
        id_field="name",
    ),
    Stream(
        "flow_messages",
        "get_flow_action_messages",
        FLOW_MESSAGES,
        _flow_message,
        parent=Parent(
            "get_flows", {"fields[flow]": "name", "include": "flow-actions"}, "flow-action"
        ),
        description="walks every flow action's messages (full refresh)",
    ),
    Stream(
        "templates",
        "get_templates",
        TEMPLATES,
        _template,
        cursor=Cursor("updated", "updated", inclusive=True, sort="updated"),
        id_field="name",
    ),
    Stream("tags", "get_tags", TAGS, _tag, id_field="name"),
    Stream(
        "campaign_values_daily",
        "query_campaign_values",
        CAMPAIGN_VALUES_DAILY,
        _no_resource,
        report=Report(
            "values",
            "campaign-values-report",
            ("campaign_id", "campaign_message_id", "send_channel"),
        ),
        facts=True,
        lookback=REPORT_LOOKBACK,
        description="per campaign message and UTC day, from the reporting API",
    ),
    Stream(
        "flow_series_daily",
        "query_flow_series",
        FLOW_SERIES_DAILY,
        _no_resource,
        report=Report(
            "series",
            "flow-series-report",
            ("flow_id", "flow_message_id", "send_channel"),
            # "If daily is used, the timeframe cannot be longer than 60 days", read in the
            # account's timezone: 60 days across its autumn clock change are 60 days and an
            # hour, refused; 59 fit in every timezone (a year is 7 requests either way)
            days_per_request=59,
        ),
        facts=True,
        # a week costs nothing: the re-read days share the new day's 59-day request
        lookback=EVENTS_LOOKBACK,
        description="per flow message and UTC day (interval=daily), from the reporting API",
    ),
)

_BY_NAME: Mapping[str, Stream] = {s.name: s for s in STREAMS}


def get_stream(name: str) -> Stream:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownStreamError(
            f"unknown stream {name!r}; streams: {', '.join(_BY_NAME)}"
        ) from None


def select_streams(names: str | list[str] | tuple[str, ...] | None) -> tuple[Stream, ...]:
    """Streams by name (comma-separated string or list), in declaration order; None: all."""
    if names is None:
        return STREAMS
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
    wanted = [n for n in wanted if n]
    for n in wanted:
        get_stream(n)
    return tuple(s for s in STREAMS if s.name in wanted)
