"""Every action kbridge offers: one line per action, naming the service method it calls.

The parameters come from the method (:func:`~kbridge.api._action_derive.declare`);
what is written here is only what the method cannot say: the CLI's words
(a flag spelled ``--profile-id`` for ``profile_ids``, a file read for a text),
the choices a plain ``str`` takes, and the typed functions that build one
argument (a campaign's message, a report's timeframe) from several options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from kbridge.api._action import Action
from kbridge.api._action_derive import declare, derive
from kbridge.api.resources import (
    AccountsService,
    CampaignsService,
    CatalogsService,
    Contact,
    CouponsService,
    DataPrivacyService,
    EventsService,
    FlowsService,
    ImagesService,
    ListsService,
    MetricsService,
    NewEvent,
    ProfilesService,
    ReportingService,
    SegmentsService,
    SubscriptionsService,
    TagsService,
    TemplatesService,
    email_message,
    sms_message,
    timeframe,
)
from kbridge.api.resources.catalogs import CATALOG_ITEM_FIELDS
from kbridge.api.resources.coupons import COUPON_CODE_STATUSES
from kbridge.api.resources.flows import FLOW_STATUSES
from kbridge.api.resources.lists import OPT_IN_PROCESSES
from kbridge.api.resources.tags import TAGGABLE
from kbridge.api.resources.templates import EDITOR_TYPES
from kbridge.api.validation import CAMPAIGN_CHANNELS, ValidationError
from kbridge.core.jsoncodec import JSONDecodeError, loads

__all__ = ["declarations"]


#: CLI spellings of a derived param, by the method's parameter name
Override = Mapping[str, Mapping[str, Any]]


# -- expanders: one service argument built from several options ------------------
def _message(
    *,
    channel: Literal["email", "sms"] = "email",
    subject: str | None = None,
    from_email: str | None = None,
    from_label: str | None = None,
    preview_text: str | None = None,
    sms_body: str | None = None,
) -> dict[str, Any]:
    """The campaign's one message.

    Args:
        channel: email or sms
        subject: email subject
        from_email: sender address
        from_label: sender name
        sms_body: SMS text (channel sms)
    """
    if channel == "sms":
        return sms_message(body=sms_body or "")
    if not subject:
        raise ValidationError("subject", "is required for an email campaign")
    if not from_email:
        raise ValidationError("from_email", "is required for an email campaign")
    return email_message(
        subject=subject, from_email=from_email, from_label=from_label, preview_text=preview_text
    )


def _timeframe(
    *, timeframe: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """A report's period.

    Args:
        timeframe: e.g. last_30_days (or --start/--end)
    """
    return _frame(timeframe, start=start, end=end)


_frame = timeframe


def _contacts(*, profile: Sequence[str] | None = None, file: str | None = None) -> list[Contact]:
    """Who to (un)subscribe.

    Args:
        profile: an email or +E.164 phone number (repeatable)
        file: a file with one email or phone number per line
    """
    items = list(profile or [])
    if file is not None:
        items += [ln.strip() for ln in file.splitlines() if ln.strip()]
    return [Contact.parse(i) for i in items]


def _event(
    *,
    metric: str,
    email: str | None = None,
    phone_number: str | None = None,
    external_id: str | None = None,
    profile_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
    time: datetime | None = None,
    value: float | None = None,
    value_currency: str | None = None,
    unique_id: str | None = None,
) -> NewEvent:
    """One event, of the profile with these identifiers.

    Args:
        metric: metric name, e.g. 'Placed Order'
        properties: the event's properties
        value_currency: ISO 4217, e.g. USD
    """
    ids = {"email": email, "phone_number": phone_number, "external_id": external_id}
    profile = {k: v for k, v in ids.items() if v is not None}
    if profile_id:
        profile["id"] = profile_id
    return NewEvent(
        metric=metric or "",
        profile=profile,
        properties=properties or {},
        time=time,
        value=value,
        value_currency=value_currency,
        unique_id=unique_id,
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


def _events_file(*, file: str) -> list[NewEvent]:
    """Events from JSON lines.

    Args:
        file: JSON lines: {metric, profile: {email…}, properties, time, value}
    """
    events = []
    for n, line in enumerate(file.splitlines()):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except JSONDecodeError:
            raise ValidationError(f"file line {n + 1}", "is not valid JSON") from None
        events.append(_event_from(obj, f"file line {n + 1}"))
    return events


_NUMBERS = {"price": float}
_FLAGS = {"published": lambda v: v.strip().lower() in ("1", "true", "yes", "y")}


def _catalog_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A CSV row (all text) or JSON object as ``bulk_create_catalog_items`` takes it."""
    row: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or value == "":
            continue
        if name == "category_ids" and isinstance(value, str):
            row[name] = [c.strip() for c in value.split("|") if c.strip()]
        elif name == "images" and isinstance(value, str):
            row[name] = [i.strip() for i in value.split("|") if i.strip()]
        elif isinstance(value, str) and name in _NUMBERS:
            try:
                row[name] = _NUMBERS[name](value)
            except ValueError:
                raise ValidationError(f"{where}.{name}", f"{value!r} is not a number") from None
        elif isinstance(value, str) and name in _FLAGS:
            row[name] = _FLAGS[name](value)
        else:
            row[name] = value
    return row


def _catalog_file(*, file: str) -> list[dict[str, Any]]:
    """Catalogue items from a file.

    Args:
        file: CSV with a header row (external_id,title,description,url,price,…;
            category_ids and images separated by |), a JSON array or JSON lines
    """
    text = file.lstrip()
    if text.startswith("["):
        try:
            rows = loads(text)
        except JSONDecodeError:
            raise ValidationError("file", "is not valid JSON") from None
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise ValidationError("file", "a JSON file must be an array of objects")
        return [_catalog_row(r, f"file item {n + 1}") for n, r in enumerate(rows)]
    if text.startswith("{"):
        out = []
        for n, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                obj = loads(line)
            except JSONDecodeError:
                raise ValidationError(f"file line {n + 1}", "is not valid JSON") from None
            if not isinstance(obj, Mapping):
                raise ValidationError(f"file line {n + 1}", "must be a JSON object")
            out.append(_catalog_row(obj, f"file line {n + 1}"))
        return out
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    known = {*CATALOG_ITEM_FIELDS, "category_ids"}
    unknown = sorted(set(reader.fieldnames or ()) - known)
    if unknown:
        raise ValidationError("file", f"unknown column(s): {', '.join(unknown)}")
    return [_catalog_row(r, f"file row {n + 2}") for n, r in enumerate(reader)]


def _codes(*, code: Sequence[str] | None = None, file: str | None = None) -> list[str]:
    """The codes to upload.

    Args:
        code: a unique code (repeatable)
        file: a file with one code per line
    """
    items = list(code or [])
    if file is not None:
        items += [ln.strip() for ln in file.splitlines() if ln.strip()]
    return items  # none at all: the service says what to give


# -- actions that choose their method from the values ------------------------------
@dataclass(frozen=True, slots=True)
class _ImageUpload(Action):
    """A ``--file`` goes to the multipart upload, a URL or data URI to the URL import."""

    def _method_for(self, values: Mapping[str, Any]) -> str:
        return "upload_image_from_file" if values.get("file") is not None else self.method


def _image_upload() -> Action:
    from_url, from_file = ImagesService.upload_image_from_url, ImagesService.upload_image_from_file
    by_url = derive(from_url, override={"url": {"required": False}})
    by_file = derive(from_file, override={"path": {"name": "file", "required": False}})

    def build(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if (values.get("url") is None) == (values.get("file") is None):
            raise ValidationError("url", "give exactly one of --url (https or data: URI) or --file")
        return (by_file if values.get("file") is not None else by_url)[1](values)

    params = {p.name: p for p in (*by_url[0], *by_file[0])}
    ops = ("upload_image_from_url", "upload_image_from_file")
    action = declare(
        "images upload",
        from_url,
        "Upload an image from a URL, data URI or file",
        operations=ops,
        build=build,
        cls=_ImageUpload,
    )
    return replace(action, params=tuple(params.values()))


@dataclass(frozen=True, slots=True)
class _Membership(Action):
    """With emails, the ``…_by_email`` variant looks the profiles up first."""

    def _method_for(self, values: Mapping[str, Any]) -> str:
        return f"{self.method}_by_email" if values.get("emails") else self.method

    def bulk_size(self, values: Mapping[str, Any]) -> int | None:
        return len(set(values.get("profile_ids") or ())) + len(set(values.get("emails") or ()))


def _membership(values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    ids, emails = list(values.get("profile_ids") or ()), list(values.get("emails") or ())
    if not ids and not emails:
        raise ValidationError("profile_ids", "give --profile-id ID or --email ADDRESS (repeatable)")
    kwargs: dict[str, Any] = {"profile_ids": ids}
    if emails:
        kwargs["emails"] = emails
    return (values["id"],), kwargs


_MEMBERS: Override = {
    "profile_ids": {"flag": "--profile-id"},
    "emails": {"flag": "--email", "required": False},
}


def _members(cli_name: str, by_email: Any, summary: str) -> Action:
    plain = by_email.__name__.removesuffix("_by_email")
    action = declare(
        cli_name,
        by_email,
        summary,
        operations=(plain, "get_profiles"),
        override=_MEMBERS,
        build=_membership,
        cls=_Membership,
    )
    return replace(action, method=plain)


# -- the table -----------------------------------------------------------------------
_CHOICE_OPT_IN: Override = {"opt_in_process": {"choices": OPT_IN_PROCESSES}}
_FILES: Override = {
    "html": {"type": "text_file", "flag": "--html-file"},
    "text": {"type": "text_file", "flag": "--text-file"},
    "editor_type": {"choices": EDITOR_TYPES},
}
_AUDIENCE: Override = {
    "included": {"flag": "--include-audience"},
    "excluded": {"flag": "--exclude-audience"},
}
_TAGGING: Override = {"kind": {"choices": tuple(TAGGABLE)}, "ids": {"flag": "--resource-id"}}
_SUBSCRIBE: Override = {"file": {"type": "text_file"}, "channels": {"flag": "--channel"}}


def declarations() -> list[Action]:
    """Every action, in the order the CLI lists them."""
    A, P, L, S = AccountsService, ProfilesService, ListsService, SegmentsService
    C, T, Im, F = CampaignsService, TemplatesService, ImagesService, FlowsService
    E, G, R = EventsService, TagsService, ReportingService
    Sub, M = SubscriptionsService, MetricsService
    Cat, Cou = CatalogsService, CouponsService
    _cats: Override = {"category_ids": {"flag": "--category"}}
    tag_ops = tuple(add for _, add, _ in TAGGABLE.values())
    untag_ops = tuple(remove for _, _, remove in TAGGABLE.values())
    return [
        declare("accounts list", A.get_accounts, "The account of this key"),
        declare("accounts get", A.get_account, "One account"),
        declare("profiles list", P.iter_profiles, "List profiles"),
        declare("profiles get", P.get_profile, "One profile"),
        declare("profiles create", P.create_profile, "Create a profile"),
        declare(
            "profiles upsert",
            P.create_or_update_profile,
            "Create a profile, or update the one with this email / phone / external id",
        ),
        declare("profiles update", P.update_profile, "Update a profile's given attributes"),
        declare("lists list", L.iter_lists, "List lists"),
        declare("lists get", L.get_list, "One list"),
        declare("lists create", L.create_list, "Create a list", override=_CHOICE_OPT_IN),
        declare("lists update", L.update_list, "Rename a list", override=_CHOICE_OPT_IN),
        declare("lists delete", L.delete_list, "Delete a list"),
        declare("lists profiles", L.iter_profiles_for_list, "Profiles on a list"),
        _members(
            "lists add-profiles",
            L.add_profiles_to_list_by_email,
            "Add profiles to a list, by id or by email",
        ),
        _members(
            "lists remove-profiles",
            L.remove_profiles_from_list_by_email,
            "Remove profiles from a list, by id or by email",
        ),
        declare("segments list", S.iter_segments, "List segments"),
        declare("segments get", S.get_segment, "One segment"),
        declare("segments create", S.create_segment, "Create a segment"),
        declare("segments update", S.update_segment, "Update a segment"),
        declare("segments delete", S.delete_segment, "Delete a segment"),
        declare("segments profiles", S.iter_profiles_for_segment, "Profiles in a segment"),
        declare("metrics list", M.iter_metrics, "List metrics"),
        declare("metrics get", M.get_metric, "One metric"),
        declare("events list", E.iter_events, "List events"),
        declare("events get", E.get_event, "One event"),
        declare("events create", E.create_event, "Record one event", expand={"event": _event}),
        declare(
            "events bulk-create",
            E.bulk_create_events,
            "Record many events from a JSON-lines file",
            expand={"events": _events_file},
            override={"file": {"type": "text_file"}},
        ),
        declare(
            "campaigns list",
            C.iter_campaigns,
            "List campaigns of a channel",
            override={"channel": {"choices": CAMPAIGN_CHANNELS}},
        ),
        declare("campaigns get", C.get_campaign, "One campaign"),
        declare(
            "campaigns create",
            C.create_campaign,
            "Create a draft campaign",
            expand={"message": _message},
            override=_AUDIENCE,
        ),
        declare("campaigns update", C.update_campaign, "Update a campaign", override=_AUDIENCE),
        declare("campaigns delete", C.delete_campaign, "Delete a campaign"),
        declare("campaigns clone", C.create_campaign_clone, "Clone a campaign"),
        declare("campaigns messages", C.get_messages_for_campaign, "A campaign's messages"),
        declare(
            "campaigns assign-template",
            C.assign_template_to_campaign_message,
            "Give a campaign message a template",
        ),
        declare("campaigns send", C.send_campaign, "Send or schedule a campaign"),
        declare("campaigns send-job", C.get_campaign_send_job, "A send job's status"),
        declare(
            "campaigns cancel-send",
            C.cancel_campaign_send,
            "Cancel a send, or revert it to draft",
            override={"action": {"choices": ("cancel", "revert")}},
        ),
        declare("templates list", T.iter_templates, "List templates"),
        declare("templates get", T.get_template, "One template"),
        declare("templates create", T.create_template, "Create a CODE template", override=_FILES),
        declare("templates update", T.update_template, "Update a template", override=_FILES),
        declare("templates delete", T.delete_template, "Delete a template"),
        declare("templates render", T.render_template, "Render a template with a context"),
        declare("templates clone", T.clone_template, "Clone a template"),
        declare("images list", Im.iter_images, "List images"),
        declare("images get", Im.get_image, "One image"),
        declare("images update", Im.update_image, "Rename or hide an image"),
        _image_upload(),
        declare("flows list", F.iter_flows, "List flows"),
        declare("flows get", F.get_flow, "One flow"),
        declare("flows create", F.create_flow, "Create a flow from a definition"),
        declare(
            "flows update-status",
            F.update_flow,
            "Set a flow's status",
            override={"status": {"choices": FLOW_STATUSES}},
        ),
        declare("flows delete", F.delete_flow, "Delete a flow"),
        declare("tags list", G.iter_tags, "List tags"),
        declare("tags get", G.get_tag, "One tag"),
        declare("tags create", G.create_tag, "Create a tag"),
        declare("tags update", G.update_tag, "Rename a tag"),
        declare("tags delete", G.delete_tag, "Delete a tag"),
        declare(
            "tags attach",
            G.tag_resources,
            "Tag campaigns, flows, lists or segments",
            operations=tag_ops,
            override=_TAGGING,
        ),
        declare(
            "tags detach",
            G.untag_resources,
            "Untag campaigns, flows, lists or segments",
            operations=untag_ops,
            override=_TAGGING,
        ),
        declare(
            "subscriptions subscribe",
            Sub.bulk_subscribe_profiles,
            "Subscribe profiles to marketing",
            expand={"profiles": _contacts},
            override=_SUBSCRIBE,
        ),
        declare(
            "subscriptions unsubscribe",
            Sub.bulk_unsubscribe_profiles,
            "Unsubscribe profiles from marketing",
            expand={"profiles": _contacts},
            override=_SUBSCRIBE,
        ),
        declare(
            "reporting campaign-values",
            R.query_campaign_values,
            "Campaign performance values",
            expand={"timeframe": _timeframe},
        ),
        declare(
            "reporting flow-values",
            R.query_flow_values,
            "Flow performance values",
            expand={"timeframe": _timeframe},
        ),
        declare("catalog-items list", Cat.iter_catalog_items, "List catalogue items"),
        declare("catalog-items get", Cat.get_catalog_item, "One catalogue item"),
        declare(
            "catalog-items create",
            Cat.create_catalog_item,
            "Create a catalogue item",
            override=_cats,
        ),
        declare(
            "catalog-items update",
            Cat.update_catalog_item,
            "Update a catalogue item",
            override=_cats,
        ),
        declare("catalog-items delete", Cat.delete_catalog_item, "Delete an item and its variants"),
        declare(
            "catalog-items import",
            Cat.bulk_create_catalog_items,
            "Create catalogue items in bulk from a CSV or JSON file",
            expand={"items": _catalog_file},
            override={"file": {"type": "text_file"}},
        ),
        declare("coupons list", Cou.iter_coupons, "List coupons"),
        declare("coupons get", Cou.get_coupon, "One coupon"),
        declare("coupons create", Cou.create_coupon, "Create a coupon"),
        declare("coupons delete", Cou.delete_coupon, "Delete a coupon and its codes"),
        declare("coupons codes", Cou.iter_coupon_codes_for_coupon, "A coupon's codes"),
        declare(
            "coupons add-codes",
            Cou.bulk_create_coupon_codes,
            "Upload unique codes for a coupon",
            expand={"codes": _codes},
            override={"file": {"type": "text_file"}},
        ),
        declare(
            "coupons update-code",
            Cou.update_coupon_code,
            "Mark a code used, or change its expiry",
            override={"status": {"choices": COUPON_CODE_STATUSES}},
        ),
        declare(
            "data-privacy request-deletion",
            DataPrivacyService.request_profile_deletion,
            "Delete a person's data (one identifier)",
        ),
    ]
