"""The streams, declared as data: what to call, which table, how a resource becomes a row.

A stream names its Klaviyo operation, its table (declared once, as fields, in
:mod:`kbridge.sync.tables`: the DDL, the Python row extractor and the
in-database reader all come from that), and its replication cursor (the attribute, the
filter field and whether the API sorts by it, which decides whether a
bookmark can advance page by page). Membership streams name a parent whose
ids they walk; the events stream is split into time slices. The engine
(:mod:`kbridge.sync.engine`) reads these facts and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from kbridge.api import Resource
from kbridge.sync.columns import Extract, Record, TableSpec
from kbridge.sync.errors import UnknownStreamError
from kbridge.sync.tables import (
    ACCOUNTS,
    CAMPAIGN_MESSAGES,
    CAMPAIGN_VALUES_DAILY,
    CAMPAIGNS,
    CATALOG_CATEGORIES,
    CATALOG_ITEM_CATEGORIES,
    CATALOG_ITEMS,
    CATALOG_VARIANTS,
    COUPON_CODES,
    COUPONS,
    CUSTOM_OBJECT_RECORDS,
    EVENTS,
    FLOW_ACTIONS,
    FLOW_MESSAGES,
    FLOW_SERIES_DAILY,
    FLOWS,
    FORMS,
    IMAGES,
    LIST_MEMBERSHIPS,
    LISTS,
    METRIC_AGGREGATES_DAILY,
    METRICS,
    PROFILES,
    REPORT_STATISTICS,
    RUN_COLUMN,
    SEGMENT_MEMBERSHIPS,
    SEGMENTS,
    SUPPRESSIONS,
    TAG_GROUPS,
    TAGS,
    TEMPLATES,
)
from kbridge.warehouse import FromJson, Table

__all__ = [
    "EVENTS_LOOKBACK",
    "REPORT_LOOKBACK",
    "REPORT_STATISTICS",
    "RUN_COLUMN",
    "STREAMS",
    "UPDATED_LOOKBACK",
    "Aggregates",
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
    spec: TableSpec
    #: the column holding the owner's id (a reconcile removes children of deleted owners)
    parent_column: str

    @property
    def table(self) -> Table:
        return self.spec.table

    @property
    def extract(self) -> Extract:
        return self.spec.extract


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
class Aggregates:
    """A per-metric daily stream from ``query_metric_aggregates``: every metric, one request
    per metric and ``days_per_request`` UTC days (interval=day), complete days only."""

    measurements: tuple[str, ...] = ("count", "sum_value", "unique")
    days_per_request: int = 365
    default_backfill_days: int = 30


@dataclass(frozen=True, slots=True)
class Stream:
    """One stream; ``table``, ``extract`` and ``from_json`` come from its ``spec``."""

    name: str
    operation_id: str
    spec: TableSpec
    cursor: Cursor | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    partitions: tuple[Partition, ...] = (Partition(""),)
    parent: Parent | None = None
    children: tuple[Child, ...] = ()
    #: events: split the history into windows of this many days, fetched concurrently
    slice_days: int | None = None
    #: reporting-API streams (POST queries by day) instead of a paginated listing
    report: Report | None = None
    #: metric-aggregate streams (POST queries per metric) instead of a paginated listing
    aggregates: Aggregates | None = None
    #: facts (events, report days): a start date bounds them; dimensions sync whole
    facts: bool = False
    #: attribute asked for in a reconcile's id-only scan (sparse fieldset); None: no reconcile
    id_field: str | None = None
    description: str = ""
    #: how far behind its bookmark an incremental run starts reading again (cursor streams)
    lookback: timedelta = UPDATED_LOOKBACK
    #: rows merged into one commit (None: the engine's default, 5,000)
    flush_rows: int | None = None
    #: let a warehouse that reads page bodies into rows itself do so (the wide, numerous
    #: records: a decoded events page is ~10,000 Python objects built only to be taken apart)
    in_database: bool = False
    #: parameters asked for when a run wants predictive analytics (profiles: the CLV and
    #: churn fields, which cost a slower rate tier)
    predictive_params: Mapping[str, str] = field(default_factory=dict)
    #: the JSON:API type of its records, where the table's name in the singular is not
    #: (a reconcile's sparse fieldset names it: ``fields[catalog-item]``)
    resource: str | None = None

    def __post_init__(self) -> None:
        if self.in_database and self.spec.from_json is None:
            raise ValueError(f"stream {self.name}: a column of its table has no JSON path")

    @property
    def table(self) -> Table:
        return self.spec.table

    @property
    def extract(self) -> Extract:
        return self.spec.extract

    @property
    def from_json(self) -> Mapping[str, FromJson] | None:
        """Where each column sits in a record, when the stream may be read in-database."""
        return self.spec.from_json if self.in_database else None

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.table, *(c.table for c in self.children))

    @property
    def resource_type(self) -> str:
        if self.resource is not None:
            return self.resource
        return self.table.name.rstrip("s") if not self.parent else "profile"


# -- helpers ------------------------------------------------------------------------


def as_record(r: Resource) -> Record:
    """A :class:`~kbridge.api.Resource` in the plain shape extractors read."""
    return {
        "type": r.type,
        "id": r.id,
        "attributes": r.attributes,
        "relationships": r.relationships,
    }


_UPDATED_GT = Cursor("updated", "updated", inclusive=False, sort="updated")

_SUPPRESSED_AT = "subscriptions.email.marketing.suppression.timestamp"
_LIST_SUPPRESSED_AT = "subscriptions.email.marketing.list_suppressions.timestamp"
#: every suppression is later than this (a filter needs a bound to select "has any")
_EPOCH = "1970-01-01T00:00:00Z"

STREAMS: tuple[Stream, ...] = (
    Stream(
        "accounts",
        "get_accounts",
        ACCOUNTS,
        description="the account the key belongs to (one row)",
    ),
    Stream(
        "profiles",
        "get_profiles",
        PROFILES,
        cursor=_UPDATED_GT,
        params={"additional-fields[profile]": "subscriptions"},
        predictive_params={"additional-fields[profile]": "subscriptions,predictive_analytics"},
        id_field="created",
        in_database=True,
        # wide rows (≈ 3 KB of JSON each): DuckDB spends ~30 µs a row on 1,000-row
        # inserts, ~40 µs on 5,000-row ones, and far more memory
        flush_rows=1000,
        description="profiles with subscriptions/consent, incremental by updated",
    ),
    Stream("lists", "get_lists", LISTS, cursor=_UPDATED_GT, id_field="name"),
    Stream(
        "list_memberships",
        "get_profiles_for_list",
        LIST_MEMBERSHIPS,
        params={"fields[profile]": "joined_group_at"},
        parent=Parent("get_lists", {"fields[list]": "name"}),
        description="full refresh per list; rows of earlier runs swept at the end",
    ),
    Stream("segments", "get_segments", SEGMENTS, cursor=_UPDATED_GT, id_field="name"),
    Stream(
        "segment_memberships",
        "get_profiles_for_segment",
        SEGMENT_MEMBERSHIPS,
        params={"fields[profile]": "joined_group_at"},
        parent=Parent("get_segments", {"fields[segment]": "name"}),
    ),
    Stream(
        "metrics",
        "get_metrics",
        METRICS,
        id_field="name",
        description="no server-side cursor: every run reads all (few) metrics",
    ),
    Stream(
        "events",
        "get_events",
        EVENTS,
        cursor=Cursor("datetime", "datetime", inclusive=True, sort="datetime"),
        slice_days=30,
        facts=True,
        lookback=EVENTS_LOOKBACK,
        in_database=True,
        description="incremental by datetime, history split into 30-day slices",
    ),
    Stream(
        "campaigns",
        "get_campaigns",
        CAMPAIGNS,
        cursor=Cursor("updated_at", "updated_at", inclusive=True, sort="updated_at"),
        params={"include": "campaign-messages"},
        partitions=(
            Partition("email", "equals(messages.channel,'email')"),
            Partition("sms", "equals(messages.channel,'sms')"),
        ),
        children=(Child("campaign-messages", CAMPAIGN_MESSAGES, "campaign_id"),),
        id_field="name",
    ),
    Stream(
        "flows",
        "get_flows",
        FLOWS,
        cursor=Cursor("updated", "updated", inclusive=True, sort="updated"),
        params={"include": "flow-actions"},
        children=(Child("flow-actions", FLOW_ACTIONS, "flow_id"),),
        id_field="name",
    ),
    Stream(
        "flow_messages",
        "get_flow_action_messages",
        FLOW_MESSAGES,
        parent=Parent(
            "get_flows", {"fields[flow]": "name", "include": "flow-actions"}, "flow-action"
        ),
        description="walks every flow action's messages (full refresh)",
    ),
    Stream(
        "templates",
        "get_templates",
        TEMPLATES,
        cursor=Cursor("updated", "updated", inclusive=True, sort="updated"),
        id_field="name",
    ),
    Stream("tags", "get_tags", TAGS, id_field="name"),
    Stream(
        "catalog_items",
        "get_catalog_items",
        CATALOG_ITEMS,
        id_field="external_id",
        resource="catalog-item",
        description="no updated filter in Klaviyo: full refresh; --reconcile removes deleted",
    ),
    Stream(
        "catalog_variants",
        "get_catalog_variants",
        CATALOG_VARIANTS,
        id_field="external_id",
        resource="catalog-variant",
        description="full refresh (no updated filter); item_id from each variant's item",
    ),
    Stream(
        "catalog_categories",
        "get_catalog_categories",
        CATALOG_CATEGORIES,
        id_field="external_id",
        resource="catalog-category",
        description="full refresh (no updated filter)",
    ),
    Stream(
        "catalog_item_categories",
        "get_items_for_catalog_category",
        CATALOG_ITEM_CATEGORIES,
        params={"fields[catalog-item]": "external_id"},
        parent=Parent("get_catalog_categories", {"fields[catalog-category]": "name"}),
        description="which items each category holds: full refresh per category, swept",
    ),
    Stream(
        "coupons",
        "get_coupons",
        COUPONS,
        id_field="external_id",
        resource="coupon",
        description="full refresh (no timestamps at all)",
    ),
    Stream(
        "coupon_codes",
        "get_coupon_codes_for_coupon",
        COUPON_CODES,
        parent=Parent("get_coupons", {"fields[coupon]": "external_id"}),
        description="full refresh per coupon (Klaviyo lists codes only by coupon or profile); "
        "codes of earlier runs swept",
    ),
    Stream(
        "suppressions",
        "get_profiles",
        SUPPRESSIONS,
        params={
            "additional-fields[profile]": "subscriptions",
            "fields[profile]": "email,phone_number,subscriptions",
        },
        # Klaviyo filters profiles on when they were suppressed, not on when a suppression
        # was lifted, so no bookmark can see an unsuppress: full refresh, --reconcile drops
        # profiles no longer suppressed; the two filters are the two kinds Klaviyo keeps
        partitions=(
            Partition("suppressed", f"greater-or-equal({_SUPPRESSED_AT},{_EPOCH})"),
            Partition("list_unsubscribed", f"greater-or-equal({_LIST_SUPPRESSED_AT},{_EPOCH})"),
        ),
        id_field="email",
        resource="profile",
        description="profiles Klaviyo will not email, with reason and timestamp (full refresh)",
    ),
    Stream("tag_groups", "get_tag_groups", TAG_GROUPS, id_field="name", resource="tag-group"),
    Stream(
        "images",
        "get_images",
        IMAGES,
        cursor=Cursor("updated_at", "updated_at", inclusive=True, sort="updated_at"),
        id_field="name",
        resource="image",
    ),
    Stream(
        "custom_object_records",
        "get_records_for_object_type",
        CUSTOM_OBJECT_RECORDS,
        parent=Parent("get_object_types", {"fields[object-type]": "title"}),
        description="full refresh per object type (records have no timestamps); "
        "records of earlier runs swept",
    ),
    Stream(
        "forms",
        "get_forms",
        FORMS,
        cursor=Cursor("updated_at", "updated_at", inclusive=True, sort="updated_at"),
        id_field="name",
        description="sign-up forms, incremental by updated_at; --reconcile removes deleted",
    ),
    Stream(
        "campaign_values_daily",
        "query_campaign_values",
        CAMPAIGN_VALUES_DAILY,
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
    Stream(
        "metric_aggregates_daily",
        "query_metric_aggregates",
        METRIC_AGGREGATES_DAILY,
        aggregates=Aggregates(),
        facts=True,
        # late events change a day's figures; re-reading a week costs nothing extra (the
        # re-read days share each metric's request for the new days)
        lookback=EVENTS_LOOKBACK,
        description="per metric and UTC day: count, sum of value, unique profiles",
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
