"""Webhooks and the topics they subscribe to (delivery comes later, #22).

A webhook keeps its signing secret, but no answer ever shows it, and its
``endpoint_url`` is answered without the query string: Klaviyo truncates the
address "for security", since a query string often carries a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    relationship_ids,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso, ulid
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MAX_WEBHOOKS", "WEBHOOK_TOPICS", "WebhookRecord", "WebhooksBackend"]

#: the topics Klaviyo offers to webhooks (SMS and email engagement)
WEBHOOK_TOPICS = (
    "event:klaviyo.bounced_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.clicked_sms",
    "event:klaviyo.dropped_email",
    "event:klaviyo.failed_to_deliver_sms",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.opened_email",
    "event:klaviyo.received_email",
    "event:klaviyo.received_sms",
    "event:klaviyo.sent_sms",
    "event:klaviyo.subscribed_to_email_marketing",
    "event:klaviyo.subscribed_to_sms_marketing",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.unsubscribed_from_sms_marketing",
)
#: webhooks per account: Klaviyo caps them so one account cannot fan out without bound
MAX_WEBHOOKS = 10
_TOPIC = "webhook-topic"
_DAY = 86400.0


@dataclass(slots=True)
class WebhookRecord:
    id: str
    name: str
    description: str | None
    endpoint_url: str
    secret_key: str
    enabled: bool
    topics: list[str]
    created: float
    updated: float

    def __repr__(self) -> str:
        # the signing secret stays out of reprs and logs
        return f"WebhookRecord(id={self.id!r}, name={self.name!r})"


class WebhooksBackend(TagBackend):
    operations = frozenset(
        {
            "get_webhooks",
            "create_webhook",
            "get_webhook",
            "update_webhook",
            "delete_webhook",
            "get_webhook_topics",
            "get_webhook_topic",
        }
    )

    def __init__(self, ctx: Context, seeded_at: float | None = None) -> None:
        super().__init__(ctx)
        # the account's generation time, so a reset brings back the identical webhook
        now = ctx.now() if seeded_at is None else seeded_at
        seeded = WebhookRecord(
            # not from the store's counter: ids other backends hand out stay as they were
            ulid(now - 30 * _DAY, self.store.seed, 0, 0x3EB),
            "Warehouse SMS feed",
            "Sends SMS engagement to the data team",
            "https://hooks.example.com/klaviyo",
            "seeded-secret",
            True,
            ["event:klaviyo.sent_sms", "event:klaviyo.clicked_sms"],
            now - 30 * _DAY,
            now - 30 * _DAY,
        )
        self.webhooks: dict[str, WebhookRecord] = {seeded.id: seeded}

    # -- topics --------------------------------------------------------------------

    @staticmethod
    def topic_resource(topic: str) -> Resource:
        return Resource(_TOPIC, topic, {})

    def get_webhook_topics(self, call: Call) -> Outcome:
        return Outcome(data=[self.topic_resource(t) for t in WEBHOOK_TOPICS])

    def get_webhook_topic(self, call: Call) -> Outcome:
        topic = self.path_id(call)
        if topic not in WEBHOOK_TOPICS:
            raise not_found(_TOPIC, topic)
        return Outcome(data=self.topic_resource(topic))

    # -- webhooks ------------------------------------------------------------------

    def webhook_resource(self, w: WebhookRecord, *, linked: bool) -> Resource:
        parts = urlsplit(w.endpoint_url)
        attrs = {
            "name": w.name,
            "description": w.description,
            "endpoint_url": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "enabled": w.enabled,
            "created_at": iso(w.created),
            "updated_at": iso(w.updated),
        }
        rels: dict[str, Any] = {"webhook-topics": [(_TOPIC, t) for t in w.topics]}
        return Resource(
            "webhook", w.id, attrs, relationships=rels,
            links_only=() if linked else ("webhook-topics",),
        )  # fmt: skip

    def _webhook(self, wid: str) -> WebhookRecord:
        return existing(self.webhooks, "webhook", wid)

    def _included(self, call: Call, hooks: list[WebhookRecord]) -> list[Resource]:
        if "webhook-topics" not in call.query.include:
            return []
        seen = dict.fromkeys(t for w in hooks for t in w.topics)
        return [self.topic_resource(t) for t in seen]

    def get_webhooks(self, call: Call) -> Outcome:
        hooks = sorted(self.webhooks.values(), key=lambda w: (w.created, w.id))
        linked = "webhook-topics" in call.query.include
        return Outcome(
            data=[self.webhook_resource(w, linked=linked) for w in hooks],
            included=self._included(call, hooks),
        )

    def get_webhook(self, call: Call) -> Outcome:
        w = self._webhook(self.path_id(call))
        linked = "webhook-topics" in call.query.include
        return Outcome(
            data=self.webhook_resource(w, linked=linked), included=self._included(call, [w])
        )

    def create_webhook(self, call: Call) -> Outcome:
        data = data_of(call.body, "webhook")
        attrs = attributes_of(data)
        name = _text(attrs.get("name"), "name", required=True)
        url = _endpoint(attrs.get("endpoint_url"))
        secret = _text(attrs.get("secret_key"), "secret_key", required=True)
        description = _text(attrs.get("description"), "description", required=False)
        topics = _topics(data, required=True)
        if len(self.webhooks) >= MAX_WEBHOOKS:
            raise InvalidError(
                f"An account can have at most {MAX_WEBHOOKS} webhooks.", pointer="/data"
            )
        now = self.ctx.now()
        w = WebhookRecord(
            self.store.next_ulid(now), name or "", description, url, secret or "", True,
            topics, now, now,
        )  # fmt: skip
        self.webhooks[w.id] = w
        return Outcome(data=self.webhook_resource(w, linked=True))

    def update_webhook(self, call: Call) -> Outcome:
        w = self._webhook(self.path_id(call))
        data = data_of(call.body, "webhook")
        attrs = attributes_of(data)
        if attrs.get("name") is not None:
            w.name = _text(attrs["name"], "name", required=True) or w.name
        if "description" in attrs:
            w.description = _text(attrs["description"], "description", required=False)
        if attrs.get("endpoint_url") is not None:
            w.endpoint_url = _endpoint(attrs["endpoint_url"])
        if attrs.get("secret_key") is not None:
            w.secret_key = _text(attrs["secret_key"], "secret_key", required=True) or ""
        if attrs.get("enabled") is not None:
            if not isinstance(attrs["enabled"], bool):
                raise InvalidError("enabled must be a boolean", pointer="/data/attributes/enabled")
            w.enabled = attrs["enabled"]
        rels = data.get("relationships")
        if isinstance(rels, dict) and "webhook-topics" in rels:
            w.topics = _topics(data, required=True)
        w.updated = self.ctx.now()
        return Outcome(data=self.webhook_resource(w, linked=True))

    def delete_webhook(self, call: Call) -> Outcome:
        w = self._webhook(self.path_id(call))
        del self.webhooks[w.id]
        return Outcome()


def _text(value: Any, name: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidError(f"{name} must be a non-empty string", pointer=f"/data/attributes/{name}")
    return value


def _endpoint(value: Any) -> str:
    ptr = "/data/attributes/endpoint_url"
    if not isinstance(value, str):
        raise InvalidError("endpoint_url is required", pointer=ptr)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise InvalidError("endpoint_url must be an https URL", pointer=ptr)
    return value


def _topics(data: dict[str, Any], *, required: bool) -> list[str]:
    ptr = "/data/relationships/webhook-topics"
    ids = relationship_ids(data, "webhook-topics", _TOPIC, many=True)
    if required and not ids:
        raise InvalidError("A webhook needs at least one topic.", pointer=ptr)
    for k, topic in enumerate(ids):
        if topic not in WEBHOOK_TOPICS:
            raise InvalidError(f"Unknown webhook topic {topic!r}", pointer=f"{ptr}/data/{k}/id")
    return list(dict.fromkeys(ids))
