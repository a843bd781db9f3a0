"""The warehouse tables the streams fill, each declared once as fields.

Every column is one :class:`~kbridge.sync.columns.Field`: its name, type, where its
value sits in a record and whether it is part of the key. The DDL, the Python row
extractor and the in-database reader are derived from these (see
:mod:`kbridge.sync.columns`), so a column inserted anywhere lands in all three.

Rows are plain tuples: timestamps stay RFC 3339 strings, nested objects are
serialised to JSON text once, so no object is built per value.
"""

from __future__ import annotations

from typing import Any

from kbridge.core.jsoncodec import dumps_str
from kbridge.sync.columns import (
    CONTEXT,
    ID,
    OTHERS,
    RAW,
    RUN,
    Field,
    Record,
    TableSpec,
    attr,
    custom,
    rel,
    spec,
)

__all__ = [
    "ACCOUNTS",
    "CAMPAIGNS",
    "CAMPAIGN_MESSAGES",
    "CAMPAIGN_VALUES_DAILY",
    "CATALOG_CATEGORIES",
    "CATALOG_ITEMS",
    "CATALOG_ITEM_CATEGORIES",
    "CATALOG_VARIANTS",
    "COUPONS",
    "COUPON_CODES",
    "CUSTOM_OBJECT_RECORDS",
    "EVENTS",
    "FLOWS",
    "FLOW_ACTIONS",
    "FLOW_MESSAGES",
    "FLOW_SERIES_DAILY",
    "FORMS",
    "IMAGES",
    "LISTS",
    "LIST_MEMBERSHIPS",
    "METRICS",
    "METRIC_AGGREGATES_DAILY",
    "PROFILES",
    "REPORT_STATISTICS",
    "RUN_COLUMN",
    "SEGMENTS",
    "SEGMENT_MEMBERSHIPS",
    "SUPPRESSIONS",
    "TAGS",
    "TAG_GROUPS",
    "TEMPLATES",
]

#: the sync run that last wrote a membership row; rows of older runs are swept away
RUN_COLUMN = "_kbridge_run"

_ID = Field("id", source=ID, key=True)
_RAW = Field("raw", "json", RAW)


def _created(name: str = "created") -> Field:
    return Field(name, "timestamp", attr(name))


def _updated(name: str = "updated") -> Field:
    return Field(name, "timestamp", attr(name))


def _a(name: str) -> Field:
    """A text column holding the attribute of its name."""
    return Field(name, source=attr(name))


def _aj(name: str) -> Field:
    """A JSON column holding the attribute of its name."""
    return Field(name, "json", attr(name))


def _ab(name: str) -> Field:
    """A boolean column holding the attribute of its name."""
    return Field(name, "boolean", attr(name))


ACCOUNTS = spec(
    "accounts",
    [
        _ID,
        _ab("test_account"),
        Field("organization_name", source=attr("contact_information", "organization_name")),
        _a("industry"),
        _a("timezone"),
        _a("preferred_currency"),
        _a("locale"),
        Field("contact_information", "json", attr("contact_information", default="{}")),
        _RAW,
    ],
)

PROFILES = spec(
    "profiles",
    [
        _ID,
        _a("email"),
        _a("phone_number"),
        _a("external_id"),
        _a("first_name"),
        _a("last_name"),
        _a("organization"),
        _a("locale"),
        _a("title"),
        _a("image"),
        _created(),
        _updated(),
        Field("last_event_date", "timestamp", attr("last_event_date")),
        *(
            Field(
                f"{channel}_consent",
                source=attr("subscriptions", channel, "marketing", "consent", stringify=True),
            )
            for channel in ("email", "sms")
        ),
        _aj("location"),
        _aj("properties"),
        _aj("subscriptions"),
        _aj("predictive_analytics"),
        Field("other_attributes", "json", OTHERS),
    ],
    # every attribute has a column of its own: a copy of them all doubled the table
    retired=["raw"],
)

LISTS = spec("lists", [_ID, _a("name"), _a("opt_in_process"), _created(), _updated(), _RAW])

SEGMENTS = spec(
    "segments",
    [
        _ID,
        _a("name"),
        _aj("definition"),
        _created(),
        _updated(),
        _ab("is_active"),
        _ab("is_processing"),
        _ab("is_starred"),
        _RAW,
    ],
)


def _membership(name: str, parent_column: str) -> TableSpec:
    return spec(
        name,
        [
            Field(parent_column, source=CONTEXT, key=True),
            Field("profile_id", source=ID, key=True),
            Field("joined_group_at", "timestamp", attr("joined_group_at")),
            Field(RUN_COLUMN, source=RUN),
        ],
    )


LIST_MEMBERSHIPS = _membership("list_memberships", "list_id")
SEGMENT_MEMBERSHIPS = _membership("segment_memberships", "segment_id")

METRICS = spec(
    "metrics",
    [
        _ID,
        _a("name"),
        _created(),
        _updated(),
        Field("integration_name", source=attr("integration", "name")),
        Field("integration_category", source=attr("integration", "category")),
        _aj("integration"),
        _RAW,
    ],
)

EVENTS = spec(
    "events",
    [
        _ID,
        Field("metric_id", source=rel("metric")),
        Field("profile_id", source=rel("profile")),
        Field("datetime", "timestamp", attr("datetime")),
        Field("timestamp", "bigint", attr("timestamp")),
        _a("uuid"),
        _aj("event_properties"),
        Field("other_attributes", "json", OTHERS),
    ],
    # every attribute has a column of its own: a copy of them all doubled the table
    retired=["raw"],
)

CAMPAIGNS = spec(
    "campaigns",
    [
        _ID,
        Field("channel", source=CONTEXT),
        _a("name"),
        _a("status"),
        _ab("archived"),
        _aj("audiences"),
        _aj("send_options"),
        _aj("tracking_options"),
        _aj("send_strategy"),
        _created("created_at"),
        Field("scheduled_at", "timestamp", attr("scheduled_at")),
        _updated("updated_at"),
        Field("send_time", "timestamp", attr("send_time")),
        _RAW,
    ],
)


def _definition_value(r: Record) -> Any:
    """A message's definition: ``definition``, or ``content`` in older revisions."""
    a = r.get("attributes")
    if not isinstance(a, dict):
        return None
    return a.get("definition") or a.get("content")


def _definition(r: Record, _: str | None) -> str | None:
    value = _definition_value(r)
    return None if value is None else dumps_str(value)


def _channel(r: Record, _: str | None) -> Any:
    a = r.get("attributes")
    channel = a.get("channel") if isinstance(a, dict) else None
    if channel:
        return channel
    definition = _definition_value(r)
    return definition.get("channel") if isinstance(definition, dict) else None


def _message(name: str, parent_column: str, relationship: str, label: str, stamp: str) -> TableSpec:
    return spec(
        name,
        [
            _ID,
            Field(parent_column, source=rel(relationship, or_context=True)),
            _a(label),
            Field("channel", source=custom(_channel)),
            Field("definition", "json", custom(_definition)),
            _created(f"created{stamp}"),
            _updated(f"updated{stamp}"),
            _RAW,
        ],
    )


CAMPAIGN_MESSAGES = _message("campaign_messages", "campaign_id", "campaign", "label", "_at")

FLOWS = spec(
    "flows",
    [
        _ID,
        _a("name"),
        _a("status"),
        _ab("archived"),
        _a("trigger_type"),
        _created(),
        _updated(),
        _RAW,
    ],
)

FLOW_ACTIONS = spec(
    "flow_actions",
    [
        _ID,
        Field("flow_id", source=rel("flow", or_context=True)),
        _a("action_type"),
        _a("status"),
        _aj("settings"),
        _created(),
        _updated(),
        _RAW,
    ],
)

FLOW_MESSAGES = _message("flow_messages", "flow_action_id", "flow-action", "name", "")

TEMPLATES = spec(
    "templates",
    [
        _ID,
        _a("name"),
        _a("editor_type"),
        _a("html"),
        _a("text"),
        _created(),
        _updated(),
        _RAW,
    ],
)

TAGS = spec("tags", [_ID, _a("name"), Field("tag_group_id", source=rel("tag-group")), _RAW])


TAG_GROUPS = spec("tag_groups", [_ID, _a("name"), _ab("exclusive"), _ab("default"), _RAW])

IMAGES = spec(
    "images",
    [
        _ID,
        _a("name"),
        _a("image_url"),
        _a("format"),
        Field("size", "bigint", attr("size")),
        _ab("hidden"),
        _updated("updated_at"),
        _RAW,
    ],
)


def _email_marketing(r: Record) -> dict[str, Any]:
    a = r.get("attributes")
    subs = a.get("subscriptions") if isinstance(a, dict) else None
    email = subs.get("email") if isinstance(subs, dict) else None
    marketing = email.get("marketing") if isinstance(email, dict) else None
    return marketing if isinstance(marketing, dict) else {}


def _suppressions(r: Record) -> list[dict[str, Any]]:
    entries = _email_marketing(r).get("suppression")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _latest_suppression(r: Record) -> dict[str, Any]:
    # ISO-8601 UTC stamps of one format sort as text; the latest is what an export shows
    entries = _suppressions(r)
    return max(entries, key=lambda e: str(e.get("timestamp") or "")) if entries else {}


def _suppression_json(member: str) -> Any:
    def read(r: Record, _: str | None) -> str:
        value = _email_marketing(r).get(member)
        return dumps_str(value if isinstance(value, list) else [])

    return custom(read)


#: profiles Klaviyo will not email (suppressed, or unsubscribed from a list): one row per
#: profile with the latest reason and when, every entry kept as JSON, and the SMS consent
SUPPRESSIONS = spec(
    "suppressions",
    [
        _ID,
        _a("email"),
        _a("phone_number"),
        Field("suppressed", "boolean", custom(lambda r, _: bool(_suppressions(r)))),
        Field("reason", source=custom(lambda r, _: _latest_suppression(r).get("reason"))),
        Field(
            "suppressed_at",
            "timestamp",
            custom(lambda r, _: _latest_suppression(r).get("timestamp")),
        ),
        Field("suppression", "json", _suppression_json("suppression")),
        Field("list_suppressions", "json", _suppression_json("list_suppressions")),
        Field("sms_consent", source=attr("subscriptions", "sms", "marketing", "consent")),
        Field(
            "sms_consent_timestamp",
            "timestamp",
            attr("subscriptions", "sms", "marketing", "consent_timestamp"),
        ),
    ],
)


def _ad(name: str) -> Field:
    """A double column holding the attribute of its name."""
    return Field(name, "double", attr(name))


_CATALOG_MEDIA = [
    _ad("price"),
    _a("url"),
    _a("image_full_url"),
    _a("image_thumbnail_url"),
    _aj("images"),
    _aj("custom_metadata"),
    _ab("published"),
    _created(),
    _updated(),
]

CATALOG_ITEMS = spec(
    "catalog_items",
    [_ID, _a("external_id"), _a("title"), _a("description"), *_CATALOG_MEDIA, _RAW],
)

CATALOG_VARIANTS = spec(
    "catalog_variants",
    [
        _ID,
        Field("item_id", source=rel("item")),
        _a("external_id"),
        _a("sku"),
        _a("title"),
        _a("description"),
        Field("inventory_policy", "bigint", attr("inventory_policy")),
        _ad("inventory_quantity"),
        *_CATALOG_MEDIA,
        _RAW,
    ],
)

CATALOG_CATEGORIES = spec(
    "catalog_categories", [_ID, _a("external_id"), _a("name"), _updated(), _RAW]
)

#: which items each category holds (read per category, swept like a membership)
CATALOG_ITEM_CATEGORIES = spec(
    "catalog_item_categories",
    [
        Field("category_id", source=CONTEXT, key=True),
        Field("item_id", source=ID, key=True),
        Field(RUN_COLUMN, source=RUN),
    ],
)

COUPONS = spec(
    "coupons",
    [_ID, _a("external_id"), _a("description"), _aj("monitor_configuration"), _RAW],
)

#: a coupon's codes are read per coupon (Klaviyo lists codes only by coupon or profile), so
#: the table sweeps like a membership: rows a run did not write are codes that are gone
COUPON_CODES = spec(
    "coupon_codes",
    [
        Field("coupon_id", source=CONTEXT, key=True),
        _ID,
        _a("unique_code"),
        Field("expires_at", "timestamp", attr("expires_at")),
        _a("status"),
        Field("profile_id", source=rel("profile")),
        Field(RUN_COLUMN, source=RUN),
    ],
)

#: custom-object records are read per object type (Klaviyo lists them only by type) and
#: have no timestamps, so the table sweeps like a membership: rows a run did not write
#: are records that are gone
CUSTOM_OBJECT_RECORDS = spec(
    "custom_object_records",
    [
        Field("object_type_id", source=CONTEXT, key=True),
        _ID,
        _aj("record_properties"),
        Field(RUN_COLUMN, source=RUN),
    ],
)

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


def _report(name: str, object_column: str, message_column: str) -> TableSpec:
    """A report table: its rows come from report results (the engine's ``_report_rows``),
    not from resources, so its fields have no source."""
    return spec(
        name,
        [
            Field("day", "timestamp", key=True),
            Field(object_column, key=True),
            Field(message_column, key=True),
            Field("send_channel", key=True),
            *(
                Field(stat, "double" if stat == "conversion_value" else "bigint")
                for stat in REPORT_STATISTICS
            ),
            Field("statistics", "json"),
        ],
    )


CAMPAIGN_VALUES_DAILY = _report("campaign_values_daily", "campaign_id", "campaign_message_id")
FLOW_SERIES_DAILY = _report("flow_series_daily", "flow_id", "flow_message_id")

#: per metric and UTC day, from query_metric_aggregates; keyed by the metric's id, so a
#: metric Klaviyo renames ("SMS" → "Text Message") keeps its rows (its name column follows)
METRIC_AGGREGATES_DAILY = spec(
    "metric_aggregates_daily",
    [
        Field("day", "timestamp", key=True),
        Field("metric_id", key=True),
        Field("metric_name"),
        Field("count", "bigint"),
        Field("sum_value", "double"),
        Field("unique_profiles", "bigint"),
    ],
)


FORMS = spec(
    "forms",
    [
        _ID,
        _a("name"),
        _a("status"),
        _ab("ab_test"),
        _created("created_at"),
        _updated("updated_at"),
        _RAW,
    ],
)
