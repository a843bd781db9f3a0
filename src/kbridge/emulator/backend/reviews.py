"""Product reviews (read and moderated) and replies in SMS conversations.

Reviews are seeded from the account's catalogue and first profiles; the API
cannot create them (shoppers write them), only change their status. A
conversation is an SMS thread with a profile that has a phone number (read
through the profile's conversation endpoints); its id is the profile's, and a
message posted to it is kept for ``sent_messages``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.catalog_records import CatalogSeed
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    not_found,
    page_of,
    relationship_ids,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import base62_id, iso
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["REJECT_REASONS", "ConversationsBackend", "ReviewRecord", "ReviewsBackend"]

REVIEW_STATUSES = ("featured", "pending", "published", "rejected", "unpublished")
REJECT_REASONS = ("fake", "misleading", "other", "private_information", "profanity", "unrelated")
_DAY = 86400.0
_TITLES = ("Love it", "Does the job", "Not for me", "Great value", "Would buy again")
_BODIES = (
    "Exactly as described and arrived quickly.",
    "Fits well, the colour is a little darker than the photo.",
    "Stopped working after a week.",
    "Good quality for the price.",
    "My second one; still happy.",
)


@dataclass(slots=True)
class ReviewRecord:
    seq: int
    id: str
    email: str | None
    author: str | None
    item_id: str
    product: dict[str, Any]
    rating: int | None
    review_type: str
    title: str | None
    content: str | None
    verified: bool
    created: float
    updated: float
    status: dict[str, Any] = field(default_factory=lambda: {"value": "published"})


class ReviewsBackend(TagBackend):
    operations = frozenset({"get_reviews", "get_review", "update_review"})

    def __init__(self, ctx: Context, shop: CatalogSeed, seeded_at: float | None = None) -> None:
        super().__init__(ctx)
        self.reviews: dict[str, ReviewRecord] = {}
        rng = random.Random(f"reviews:{self.store.seed}")
        now = ctx.now() if seeded_at is None else seeded_at
        items = shop.items
        profiles = [p for p in self.store.profiles[:40] if p.email]
        for k, p in enumerate(profiles[:15] if items else []):
            item = items[k % len(items)]
            kind = "question" if k % 7 == 6 else "review"
            rating = None if kind == "question" else rng.randint(1, 5)
            created = now - rng.uniform(1, 90) * _DAY
            product = {
                "url": str(item.attrs.get("url") or "https://shop.example.com"),
                "name": str(item.attrs.get("title") or item.id),
                "image_url": item.attrs.get("image_full_url"),
                "external_id": item.attrs.get("external_id"),
            }
            r = ReviewRecord(
                seq=(1 << 41) + k,  # above the store's counter: never collides
                id=base62_id(self.store.seed, 0x12E, k, length=11),
                email=p.email,
                author=f"{(p.first_name or 'A')} {(p.last_name or 'B')[:1]}.",
                item_id=item.id,
                product=product,
                rating=rating,
                review_type=kind,
                title=rng.choice(_TITLES) if kind == "review" else None,
                content=rng.choice(_BODIES) if kind == "review" else "Does it come in blue?",
                verified=k % 3 != 2,
                created=created,
                updated=created,
                status={"value": "pending"} if k % 5 == 4 else {"value": "published"},
            )
            self.reviews[r.id] = r

    @staticmethod
    def review_resource(r: ReviewRecord) -> Resource:
        attrs: dict[str, Any] = {
            "email": r.email,
            "status": r.status,
            "verified": r.verified,
            "review_type": r.review_type,
            "created": iso(r.created),
            "updated": iso(r.updated),
            "images": [],
            "product": r.product,
            "rating": r.rating,
            "author": r.author,
            "content": r.content,
            "title": r.title,
            "smart_quote": None,
            "public_reply": None,
        }
        rels: dict[str, Any] = {"item": ("catalog-item", r.item_id), "events": []}
        return Resource("review", r.id, attrs, relationships=rels)

    def _review(self, rid: str) -> ReviewRecord:
        r = self.reviews.get(rid)
        if r is None:
            raise not_found("review", rid)
        return r

    def get_reviews(self, call: Call) -> Outcome:
        by_seq = {r.seq: r for r in self.reviews.values()}
        sort = call.query.sort
        field_ = sort.field if sort is not None else "created"

        def key(s: int) -> tuple[Any, ...]:
            r = by_seq[s]
            if field_ == "rating":
                return (r.rating if r.rating is not None else 0, s)
            return (r.updated if field_ == "updated" else r.created, s)

        getters: dict[str, Callable[[int], Any]] = {
            "created": lambda s: by_seq[s].created,
            "rating": lambda s: by_seq[s].rating,
            "id": lambda s: by_seq[s].id,
            "item.id": lambda s: by_seq[s].item_id,
            "content": lambda s: by_seq[s].content or "",
            "status": lambda s: by_seq[s].status["value"],
            "review_type": lambda s: by_seq[s].review_type,
            "verified": lambda s: by_seq[s].verified,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return Outcome(
            data=Page(
                items=[self.review_resource(by_seq[s]) for s in page.items],
                next_cursor=page.next_cursor,
                prev_cursor=page.prev_cursor,
            )
        )

    def get_review(self, call: Call) -> Outcome:
        return Outcome(data=self.review_resource(self._review(self.path_id(call))))

    def update_review(self, call: Call) -> Outcome:
        r = self._review(self.path_id(call))
        attrs = attributes_of(data_of(call.body, "review"))
        if "status" in attrs:
            r.status = _status(attrs["status"])
            r.updated = self.ctx.now()
        return Outcome(data=self.review_resource(r))


def _status(value: Any) -> dict[str, Any]:
    ptr = "/data/attributes/status"
    if not isinstance(value, dict) or value.get("value") not in REVIEW_STATUSES:
        raise InvalidError(
            f"status.value must be one of {', '.join(REVIEW_STATUSES)}", pointer=f"{ptr}/value"
        )
    if value["value"] != "rejected":
        return {"value": value["value"]}
    reason = value.get("rejection_reason")
    if not isinstance(reason, dict) or reason.get("reason") not in REJECT_REASONS:
        raise InvalidError(
            f"a rejected review needs rejection_reason.reason, one of {', '.join(REJECT_REASONS)}",
            pointer=f"{ptr}/rejection_reason",
        )
    kept: dict[str, Any] = {"reason": reason["reason"]}
    if reason["reason"] == "other":
        kept["status_explanation"] = reason.get("status_explanation")
    return {"value": "rejected", "rejection_reason": kept}


@dataclass(frozen=True, slots=True)
class SentMessage:
    conversation_id: str
    phone_number: str
    body: str
    at: float


class ConversationsBackend(TagBackend):
    operations = frozenset(
        {
            "create_conversation_message",
            "get_conversation_for_profile",
            "get_conversation_id_for_profile",
            "get_conversations_for_profile",
            "get_conversation_ids_for_profile",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sent_messages: list[SentMessage] = []

    def create_conversation_message(self, call: Call) -> Outcome:
        data = data_of(call.body, "conversation-message")
        attrs = attributes_of(data)
        text = attrs.get("body")
        if not isinstance(text, str) or not text.strip():
            raise InvalidError("body must be a non-empty string", pointer="/data/attributes/body")
        if len(text) > 1600:
            raise InvalidError(
                "body is longer than 1600 characters (10 SMS segments)",
                pointer="/data/attributes/body",
            )
        ids = relationship_ids(data, "conversation", "conversation", many=False)
        if not ids:
            raise InvalidError(
                "relationships.conversation is required",
                pointer="/data/relationships/conversation",
            )
        profile = self.store.profile(ids[0])
        if profile is None or not profile.phone_number:
            raise not_found("conversation", ids[0])
        self.sent_messages.append(SentMessage(ids[0], profile.phone_number, text, self.ctx.now()))
        return Outcome()

    # -- a profile's conversations ---------------------------------------------------

    def _conversations_of(self, call: Call) -> list[Resource]:
        """The profile's one SMS thread (none without a phone number); 404 for no profile."""
        pid = self.path_id(call)
        profile = self.store.profile(pid)
        if profile is None:
            raise not_found("profile", pid)
        if not profile.phone_number:
            return []
        rels: dict[str, Any] = {"profile": ("profile", profile.id)}
        return [Resource("conversation", profile.id, {"channel": "sms"}, relationships=rels)]

    def get_conversation_for_profile(self, call: Call) -> Outcome:
        found = self._conversations_of(call)
        return Outcome(data=found[0]) if found else Outcome(null_data=True)

    def get_conversation_id_for_profile(self, call: Call) -> Outcome:
        found = self._conversations_of(call)
        if not found:
            return Outcome(null_data=True)
        return Outcome(data=found[0], identifiers_only=True)

    def get_conversations_for_profile(self, call: Call) -> Outcome:
        return Outcome(data=self._conversations_of(call))

    def get_conversation_ids_for_profile(self, call: Call) -> Outcome:
        return Outcome(data=self._conversations_of(call), identifiers_only=True)
