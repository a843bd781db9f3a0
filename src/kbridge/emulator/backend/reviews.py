"""Product reviews (read and moderated) and replies in SMS conversations.

Reviews are seeded from the account's catalogue and first profiles; the API
cannot create them (shoppers write them), only change their status. A
conversation is an SMS thread with a profile that has a phone number (read
through the profile's conversation endpoints); its id is the profile's, and a
message posted to it is kept for ``sent_messages``.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.catalog_records import CatalogRecord, CatalogSeed
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    page_of,
    page_outcome,
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
#: what a storefront shows (client endpoints)
PUBLIC_STATUSES = ("featured", "published")
REVIEW_TYPES = ("question", "rating", "review", "store")
REVIEW_STATISTICS = (
    "average_rating",
    "average_store_rating",
    "total_questions",
    "total_ratings",
    "total_reviews",
    "total_store_reviews",
)
#: a review values report's timeframes, in days back from now (None: all time)
REVIEW_TIMEFRAMES: dict[str, int | None] = {
    "all_time": None,
    "last_30_days": 30,
    "last_90_days": 90,
    "last_365_days": 365,
}
_PTR = "/data/attributes"
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
    #: the catalogue item reviewed (None for a review of the store itself)
    item_id: str | None
    product: dict[str, Any] | None
    rating: int | None
    review_type: str
    title: str | None
    content: str | None
    verified: bool
    created: float
    updated: float
    status: dict[str, Any] = field(default_factory=lambda: {"value": "published"})


class ReviewsBackend(TagBackend):
    operations = frozenset(
        {
            "get_reviews",
            "get_review",
            "update_review",
            "get_client_reviews",
            "create_client_review",
            "get_client_review_values_reports",
        }
    )

    def __init__(self, ctx: Context, shop: CatalogSeed, seeded_at: float | None = None) -> None:
        super().__init__(ctx)
        self.reviews: dict[str, ReviewRecord] = {}
        #: the catalogue's items now (EmulatorBackend points it at the catalogue backend),
        #: where a shopper's review finds its product by external id
        self.catalog_items: Callable[[], Iterable[CatalogRecord]] = lambda: shop.items
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
        rels: dict[str, Any] = {"events": []}
        if r.item_id is not None:
            rels["item"] = ("catalog-item", r.item_id)
        return Resource("review", r.id, attrs, relationships=rels)

    def _review(self, rid: str) -> ReviewRecord:
        return existing(self.reviews, "review", rid)

    def get_reviews(self, call: Call) -> Outcome:
        return self._review_page(call, list(self.reviews.values()), self.review_resource)

    def _review_page(
        self,
        call: Call,
        reviews: list[ReviewRecord],
        resource: Callable[[ReviewRecord], Resource],
    ) -> Outcome:
        by_seq = {r.seq: r for r in reviews}
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
            "updated": lambda s: by_seq[s].updated,
            # the emulator keeps no quotes, replies, incentives, edits or media
            "smart_quote": lambda s: None,
            "public_reply": lambda s: None,
            "incentivized": lambda s: False,
            "edited": lambda s: False,
            "media": lambda s: None,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: resource(by_seq[s]))

    def get_review(self, call: Call) -> Outcome:
        return Outcome(data=self.review_resource(self._review(self.path_id(call))))

    def update_review(self, call: Call) -> Outcome:
        r = self._review(self.path_id(call))
        attrs = attributes_of(data_of(call.body, "review"))
        if "status" in attrs:
            r.status = _status(attrs["status"])
            r.updated = self.ctx.now()
        return Outcome(data=self.review_resource(r))

    # -- the storefront's side (client endpoints) -------------------------------------

    def _public(self) -> list[ReviewRecord]:
        """What a storefront may show: moderated-in reviews only."""
        return [r for r in self.reviews.values() if r.status["value"] in PUBLIC_STATUSES]

    @classmethod
    def client_review_resource(cls, r: ReviewRecord) -> Resource:
        """A review as a shopper sees it: no author email, no relationships."""
        full = cls.review_resource(r)
        attrs = {k: v for k, v in full.attributes.items() if k != "email"}
        return Resource("review", r.id, attrs)

    def get_client_reviews(self, call: Call) -> Outcome:
        return self._review_page(call, self._public(), self.client_review_resource)

    def create_client_review(self, call: Call) -> Outcome:
        """A shopper's review: pending until moderated (``update_review``) into view."""
        attrs = attributes_of(data_of(call.body, "review"))
        kind = attrs.get("review_type")
        if kind not in REVIEW_TYPES:
            raise InvalidError(
                f"review_type must be one of {', '.join(REVIEW_TYPES)}",
                pointer=f"{_PTR}/review_type",
            )
        text: dict[str, str] = {}
        for name in ("email", "author", "content"):
            value = attrs.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidError(f"{name} is required", pointer=f"{_PTR}/{name}")
            text[name] = value
        rating = attrs.get("rating")
        if kind == "question" and rating is not None:
            raise InvalidError("a question has no rating", pointer=f"{_PTR}/rating")
        if kind != "question" and (
            isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5
        ):
            raise InvalidError("rating must be an integer from 1 to 5", pointer=f"{_PTR}/rating")
        item = self._reviewed_item(kind, attrs.get("product"))
        title = attrs.get("title")
        now = self.ctx.now()
        seq = self.store.next_seq()
        r = ReviewRecord(
            seq=seq,
            id=base62_id(self.store.seed, 0x12F, seq, length=11),
            email=text["email"],
            author=text["author"],
            item_id=item.id if item is not None else None,
            product=_product(item) if item is not None else None,
            rating=rating,
            review_type=kind,
            title=title if isinstance(title, str) else None,
            content=text["content"],
            verified=False,
            created=now,
            updated=now,
            status={"value": "pending"},
        )
        self.reviews[r.id] = r
        return Outcome(status=202)

    def _reviewed_item(self, kind: str, product: Any) -> CatalogRecord | None:
        ptr = f"{_PTR}/product"
        if kind == "store":
            return None
        if not isinstance(product, dict) or not isinstance(product.get("external_id"), str):
            raise InvalidError("product.external_id is required", pointer=ptr)
        for item in self.catalog_items():
            if item.attrs.get("external_id") == product["external_id"]:
                return item
        raise InvalidError(
            f"no catalog item has external_id {product['external_id']!r}",
            pointer=f"{ptr}/external_id",
        )

    def get_client_review_values_reports(self, call: Call) -> Outcome:
        """Ratings and counts of the public reviews, for the whole store or per product."""
        params = call.query.params
        group_by = params.get("group_by")
        if group_by not in ("company_id", "product_id"):
            raise InvalidError("group_by must be company_id or product_id", parameter="group_by")
        stats = [s.strip() for s in params.get("statistics", "").split(",") if s.strip()]
        unknown = [s for s in stats if s not in REVIEW_STATISTICS]
        if not stats or unknown:
            raise InvalidError(
                f"statistics must name some of {', '.join(REVIEW_STATISTICS)}"
                + (f" (not {', '.join(unknown)})" if unknown else ""),
                parameter="statistics",
            )
        days = REVIEW_TIMEFRAMES.get(params.get("timeframe", ""), -1)
        if days == -1:
            raise InvalidError(
                f"timeframe must be one of {', '.join(REVIEW_TIMEFRAMES)}", parameter="timeframe"
            )
        since = None if days is None else self.ctx.now() - days * _DAY
        wanted = _external_ids(call)
        groups: dict[str, list[ReviewRecord]] = {}
        for r in self._public():
            if since is not None and r.created < since:
                continue
            external = (r.product or {}).get("external_id")
            if wanted is not None and external not in wanted:
                continue
            if group_by == "company_id":
                groups.setdefault(self.store.account_id, []).append(r)
            elif r.item_id is not None:
                groups.setdefault(str(external or r.item_id), []).append(r)
        results = [
            {"groupings": {group_by: key}, "statistics": _review_statistics(groups[key], stats)}
            for key in sorted(groups)
        ]
        # the product filter is applied above, while grouping: page the rows only
        page = page_of(call, list(range(len(results))), lambda i: (i,), {}, conditions=())
        ident = f"{zlib.crc32(repr((group_by, stats, days, wanted)).encode()):08x}"
        resource = Resource(
            "review-values-report", ident, {"results": [results[i] for i in page.items]}
        )
        return Outcome(
            data=Page(items=[resource], next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)
        )


def _product(item: CatalogRecord) -> dict[str, Any]:
    return {
        "url": str(item.attrs.get("url") or "https://shop.example.com"),
        "name": str(item.attrs.get("title") or item.id),
        "image_url": item.attrs.get("image_full_url"),
        "external_id": item.attrs.get("external_id"),
    }


def _external_ids(call: Call) -> frozenset[str] | None:
    """The ``product_external_ids`` a report is narrowed to (None: every product)."""
    wanted: frozenset[str] | None = None
    for cond in call.query.conditions:
        values = cond.value if isinstance(cond.value, (list, tuple)) else [cond.value]
        these = frozenset(str(v) for v in values)
        wanted = these if wanted is None else wanted & these
    return wanted


def _review_statistics(reviews: list[ReviewRecord], names: list[str]) -> dict[str, Any]:
    """Product ratings come from reviews and star ratings; the store's are apart."""
    rated = [r.rating for r in reviews if r.review_type in ("review", "rating") and r.rating]
    store = [r.rating for r in reviews if r.review_type == "store" and r.rating]

    def mean(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    values = {
        "average_rating": mean(rated),
        "total_reviews": sum(r.review_type == "review" for r in reviews),
        "total_questions": sum(r.review_type == "question" for r in reviews),
        "total_ratings": len(rated),
        "total_store_reviews": len(store),
        "average_store_rating": mean(store),
    }
    return {name: values[name] for name in names}


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
