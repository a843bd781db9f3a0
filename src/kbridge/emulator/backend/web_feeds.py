"""Web feeds (external JSON/XML that templates pull in) and the account's UTM tracking settings.

The emulator never fetches a feed's URL: a feed's ``status`` stays ``ok``.
There is one tracking setting per account, its id the account's; it can be
read and patched but not created or deleted (as in Klaviyo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    page_of,
    page_outcome,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import base62_id, iso
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["TrackingSettingsBackend", "WebFeedRecord", "WebFeedsBackend"]

_DAY = 86400.0
_METHODS = ("get", "post")
_CONTENT_TYPES = ("json", "xml")
_SEEDS = (
    ("Product recommendations", "https://shop.example.com/feeds/recommended.json", "get", "json"),
    ("Store events", "https://shop.example.com/feeds/events.xml", "get", "xml"),
)


@dataclass(slots=True)
class WebFeedRecord:
    seq: int
    id: str
    name: str
    url: str
    request_method: str
    content_type: str
    created: float
    updated: float
    status: str = "ok"


class WebFeedsBackend(TagBackend):
    operations = frozenset(
        {"get_web_feeds", "create_web_feed", "get_web_feed", "update_web_feed", "delete_web_feed"}
    )

    def __init__(self, ctx: Context, now: float) -> None:
        super().__init__(ctx)
        self.feeds: dict[str, WebFeedRecord] = {}
        for k, (name, url, method, ctype) in enumerate(_SEEDS):
            self._add(name, url, method, ctype, now - (60 - 10 * k) * _DAY)

    def _add(self, name: str, url: str, method: str, ctype: str, at: float) -> WebFeedRecord:
        seq = self.store.next_seq()
        feed = WebFeedRecord(seq, base62_id(0xFEED, seq), name, url, method, ctype, at, at)
        self.feeds[feed.id] = feed
        return feed

    @staticmethod
    def resource(f: WebFeedRecord) -> Resource:
        attrs = {
            "name": f.name,
            "url": f.url,
            "request_method": f.request_method,
            "content_type": f.content_type,
            "created": iso(f.created),
            "updated": iso(f.updated),
            "status": f.status,
        }
        return Resource("web-feed", f.id, attrs)

    def _feed(self, fid: str) -> WebFeedRecord:
        return existing(self.feeds, "web-feed", fid)

    def get_web_feeds(self, call: Call) -> Outcome:
        by_seq = {f.seq: f for f in self.feeds.values()}
        sort = call.query.sort
        field = sort.field if sort is not None else "created"
        attr: Callable[[int], Any] = {
            "name": lambda s: by_seq[s].name,
            "updated": lambda s: by_seq[s].updated,
        }.get(field, lambda s: by_seq[s].created)

        def key(s: int) -> tuple[Any, ...]:
            return (attr(s), s)

        getters: dict[str, Callable[[int], Any]] = {
            "name": lambda s: by_seq[s].name,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self.resource(by_seq[s]))

    def get_web_feed(self, call: Call) -> Outcome:
        return Outcome(data=self.resource(self._feed(self.path_id(call))))

    def create_web_feed(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "web-feed"))
        for required in ("name", "url", "request_method", "content_type"):
            if attrs.get(required) is None:
                raise InvalidError(
                    f"{required} is required", pointer=f"/data/attributes/{required}"
                )
        name, url, method, ctype = _checked(attrs)
        if any(f.name == name for f in self.feeds.values()):
            # Klaviyo templates refer to a feed by name, so names are unique
            raise InvalidError(
                f"A web feed named {name!r} already exists.", pointer="/data/attributes/name"
            )
        feed = self._add(str(name), str(url), str(method), str(ctype), self.ctx.now())
        return Outcome(data=self.resource(feed))

    def update_web_feed(self, call: Call) -> Outcome:
        feed = self._feed(self.path_id(call))
        data = data_of(call.body, "web-feed")
        if data.get("id") != feed.id:
            raise InvalidError("data.id must match the id in the path", pointer="/data/id")
        name, url, method, ctype = _checked(attributes_of(data))
        if name is not None and any(f.name == name and f is not feed for f in self.feeds.values()):
            raise InvalidError(
                f"A web feed named {name!r} already exists.", pointer="/data/attributes/name"
            )
        feed.name = name if name is not None else feed.name
        feed.url = url if url is not None else feed.url
        feed.request_method = method if method is not None else feed.request_method
        feed.content_type = ctype if ctype is not None else feed.content_type
        feed.updated = max(feed.updated, self.ctx.now())
        return Outcome(data=self.resource(feed))

    def delete_web_feed(self, call: Call) -> Outcome:
        del self.feeds[self._feed(self.path_id(call)).id]
        return Outcome()


def _checked(attrs: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    name, url = attrs.get("name"), attrs.get("url")
    method, ctype = attrs.get("request_method"), attrs.get("content_type")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidError("name must be a non-empty string", pointer="/data/attributes/name")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise InvalidError("url must be an http(s) URL", pointer="/data/attributes/url")
    if method is not None and method not in _METHODS:
        raise InvalidError(
            "request_method must be 'get' or 'post'", pointer="/data/attributes/request_method"
        )
    if ctype is not None and ctype not in _CONTENT_TYPES:
        raise InvalidError(
            "content_type must be 'json' or 'xml'", pointer="/data/attributes/content_type"
        )
    return name, url, method, ctype


# -- tracking settings -------------------------------------------------------------

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_id", "utm_term")
_FLOW_DYNAMIC = frozenset(
    {"email_subject", "flow_id", "flow_name", "link_alt_text", "message_name",
     "message_name_id", "message_type", "profile_external_id", "profile_id"}
)  # fmt: skip
_CAMPAIGN_DYNAMIC = frozenset(
    {"campaign_id", "campaign_name", "campaign_name_id", "campaign_name_send_day",
     "email_subject", "group_id", "group_name", "group_name_id", "link_alt_text",
     "message_type", "profile_external_id", "profile_id"}
)  # fmt: skip


def _default_settings() -> dict[str, Any]:
    """Klaviyo's defaults for a new account."""
    return {
        "auto_add_parameters": True,
        "utm_source": {
            "campaign": {"type": "dynamic", "value": "campaign_name"},
            "flow": {"type": "dynamic", "value": "flow_name"},
        },
        "utm_medium": {
            "campaign": {"type": "static", "value": "email"},
            "flow": {"type": "static", "value": "email"},
        },
        "utm_campaign": {
            "campaign": {"type": "dynamic", "value": "campaign_name_id"},
            "flow": {"type": "dynamic", "value": "message_name_id"},
        },
        "utm_id": {},
        "utm_term": {},
        "custom_parameters": [],
    }


def _check_param(value: Any, pointer: str, *, custom: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidError("a tracking parameter must be an object", pointer=pointer)
    out: dict[str, Any] = {}
    if custom:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise InvalidError("name is required", pointer=f"{pointer}/name")
        out["name"] = value["name"]
    for channel, dynamic in (("flow", _FLOW_DYNAMIC), ("campaign", _CAMPAIGN_DYNAMIC)):
        spec = value.get(channel)
        if spec is None:
            continue
        ptr = f"{pointer}/{channel}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        val = spec.get("value") if isinstance(spec, dict) else None
        if kind == "static" and isinstance(val, str):
            out[channel] = {"type": "static", "value": val}
        elif kind == "dynamic" and val in dynamic:
            out[channel] = {"type": "dynamic", "value": val}
        else:
            raise InvalidError(
                f"{channel} must be a static string or one of {', '.join(sorted(dynamic))}",
                pointer=f"{ptr}/value" if kind in ("static", "dynamic") else f"{ptr}/type",
            )
    return out


class TrackingSettingsBackend(TagBackend):
    operations = frozenset(
        {"get_tracking_settings", "get_tracking_setting", "update_tracking_setting"}
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settings = _default_settings()

    def resource(self) -> Resource:
        attrs = dict(self.settings)
        return Resource("tracking-setting", self.store.account_id, attrs)

    def _check_id(self, call: Call) -> None:
        tid = self.path_id(call)
        if tid != self.store.account_id:
            raise not_found("tracking-setting", tid)

    def get_tracking_settings(self, call: Call) -> Outcome:
        page = page_of(call, [0], lambda s: (s,), {})
        items = [self.resource() for _ in page.items]
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)
        )

    def get_tracking_setting(self, call: Call) -> Outcome:
        self._check_id(call)
        return Outcome(data=self.resource())

    def update_tracking_setting(self, call: Call) -> Outcome:
        self._check_id(call)
        data = data_of(call.body, "tracking-setting")
        if data.get("id") != self.store.account_id:
            raise InvalidError("data.id must match the id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        changed: dict[str, Any] = {}
        auto = attrs.get("auto_add_parameters")
        if auto is not None:
            if not isinstance(auto, bool):
                raise InvalidError(
                    "auto_add_parameters must be a boolean",
                    pointer="/data/attributes/auto_add_parameters",
                )
            changed["auto_add_parameters"] = auto
        for name in _UTM:
            if attrs.get(name) is not None:
                changed[name] = _check_param(attrs[name], f"/data/attributes/{name}")
        custom = attrs.get("custom_parameters")
        if custom is not None:
            ptr = "/data/attributes/custom_parameters"
            if not isinstance(custom, list):
                raise InvalidError("custom_parameters must be a list", pointer=ptr)
            changed["custom_parameters"] = [
                _check_param(p, f"{ptr}/{k}", custom=True) for k, p in enumerate(custom)
            ]
        self.settings.update(changed)
        return Outcome(data=self.resource())
