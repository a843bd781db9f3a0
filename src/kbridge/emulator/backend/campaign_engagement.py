"""Who opens, clicks and buys after a campaign email: the account's behavioural model.

Each delivery draws its follow-ups from the profile's hidden engagement and purchase
rates (the generator's, see ``datagen``; zero once the profile has churned), salted by
the message id, so a seed always gives the same opens, clicks and orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kbridge.emulator.backend.campaign_records import (
    CampaignRecord,
    MessageRecord,
    message_context,
)
from kbridge.emulator.backend.ids import mix64, unit_float
from kbridge.emulator.backend.models import ProfileRecord
from kbridge.emulator.backend.templates import render
from kbridge.emulator.backend.vocabulary import CATEGORIES, PRODUCTS

__all__ = ["Engagement", "FollowUp"]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """An event a delivery leads to, due at ``ts``."""

    ts: float
    metric: str
    value: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)
    unique_id: str | None = None


class Engagement:
    """The follow-ups of each delivered campaign email (deterministic per seed)."""

    def __init__(self, seed: int, hidden: Sequence[Any] = ()) -> None:
        self.seed = seed
        #: the generator's hidden traits per profile seq (``datagen``'s ``_Hidden``)
        self.hidden = hidden

    def rates(self, p: ProfileRecord, ts: float) -> tuple[float, float]:
        """(engagement, purchase) of ``p`` at ``ts``: the generator's hidden traits (0 once
        churned); profiles created later draw theirs deterministically from the seed."""
        if p.seq < len(self.hidden):
            h = self.hidden[p.seq]
            if h.churn_time is not None and h.churn_time <= ts:
                return 0.0, 0.0
            return float(h.engagement_rate), float(h.purchase_rate)
        return 0.1 + 0.5 * unit_float(self.seed, p.seq, 1), 0.4 * unit_float(self.seed, p.seq, 2)

    def follow_ups(
        self, c: CampaignRecord, m: MessageRecord, p: ProfileRecord, ts: float
    ) -> list[FollowUp]:
        """The opens, clicks and order that the email ``m`` delivered to ``p`` at ``ts``
        leads to, in the order they are drawn."""
        engagement, purchase = self.rates(p, ts)
        salt = mix64(self.seed, *m.id.encode())

        def draw(k: int) -> float:
            return unit_float(salt, p.seq, k)

        out: list[FollowUp] = []
        tracking = c.tracking_options or {}
        if draw(1) >= engagement:
            return out
        subject = render(m.content.get("subject"), message_context(p))
        base = {"$message": m.id, "Campaign Name": c.name, "Subject": subject}
        t_open = ts + 60 + int(draw(2) * 6 * 3600)
        if tracking.get("is_tracking_opens", True) is not False:
            out.append(FollowUp(t_open, "Opened Email", properties=dict(base)))
        clicked = draw(3) < 0.3 and tracking.get("is_tracking_clicks", True) is not False
        t_click = t_open + 5 + int(draw(4) * 600)
        if clicked:
            url = f"https://shop.example.com/collections/{mix64(salt) % len(CATEGORIES)}"
            out.append(FollowUp(t_click, "Clicked Email", properties={**base, "URL": url}))
        if draw(5) >= purchase * (1.0 if clicked else 0.25):
            return out
        items = [
            PRODUCTS[mix64(salt, p.seq, k) % len(PRODUCTS)] for k in range(1 + int(draw(6) * 3))
        ]
        value = round(sum(item[2] for item in items), 2)
        order_id = str(100000 + mix64(salt, p.seq, 99) % 900000)
        props = {
            "$value": value,
            "OrderId": order_id,
            "$event_id": order_id,
            "ItemNames": [item[0] for item in items],
            "Items": [
                {"ProductName": i[0], "Categories": [i[1]], "ItemPrice": i[2], "Quantity": 1}
                for i in items
            ],
            "Categories": sorted({item[1] for item in items}),
            "$attributed_message": m.id,
        }
        at = (t_click if clicked else t_open) + 600 + int(draw(7) * 2 * 86400)
        out.append(FollowUp(at, "Placed Order", value, props, order_id))
        return out
