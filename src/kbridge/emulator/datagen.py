"""A synthetic e-commerce Klaviyo account, deterministic from a seed.

``generate(seed, profiles, events, now)`` returns a :class:`Dataset`; the same
arguments always give the same data, byte for byte. The emulator loads one at
start and on reset, and ``truth`` exposes the hidden model so analytics
(churn models, lifecycle stages) can be scored against what really drove the
data.

The behavioural model
---------------------
Each profile is created at a uniform time in the two years before ``now``
(profiles are numbered in creation order) and draws hidden traits:

* ``engagement_rate`` ~ Beta(2, 3): the chance a received email is opened
  (a click follows an open with probability 0.3).
* ``purchase_rate``: the chance a site session ends in an order; 0 for the
  35 % who never buy, otherwise ~ Beta(2, 2.5) (mean ≈ 0.44).
* ``churn_propensity`` ~ Beta(2, 4). With that probability the profile
  *churns* (only if older than 60 days) at a hidden ``churn_time`` uniform
  between 15 % and 90 % of its life so far. After churning it has no
  sessions, opens, clicks or orders; emails keep arriving (Received Email)
  while it stays subscribed, as in real accounts.

Event volume: every profile gets a share of the requested total in proportion
to ``(0.2 + engagement_rate + 2 * purchase_rate) * active_days``; its events
come in units until the share is used: an email send (Received → Opened →
Clicked; 0.4 % bounce instead; rare spam reports), an SMS (Received → Clicked
with probability 0.1), or a site session (Active on Site, 1-2 Viewed Product,
Added to Cart 35 %, Started Checkout 60 % of those, then Placed Order with
probability ``purchase_rate`` plus one Ordered Product per item). So the total
is close to, not exactly, the requested number. Placed Order carries
``value`` (sum of 1-4 catalogue items), ``value_currency``, ``OrderId``,
``Items``, ``ItemNames``, ``Categories`` and ``$value``; its ``unique_id`` is
the order id. Unsubscribed profiles get one Unsubscribed event at their
consent time; subscribed ones a Subscribed to List event.

Lifecycle stage (first rule that applies): ``churned`` (churned before
``now``); ``new`` (created in the last 30 days); ``prospect`` (never ordered);
``at_risk`` (churn propensity ≥ 0.5); ``loyal`` (≥ 3 orders); ``active``.

Consent: email SUBSCRIBED ≈ 60 %, UNSUBSCRIBED ≈ 20 %, NEVER_SUBSCRIBED the
rest (churned profiles unsubscribe more often); ≈ 4 % carry a suppression
(hard bounce, spam complaint, unsubscribe, user-suppressed, invalid email).
40 % have a phone (E.164); half of those are SMS-subscribed.

``predictive_analytics`` is derived from the model with noise: historic
figures are exact (from the generated orders), ``churn_probability`` is the
hidden propensity (raised for churned profiles) plus N(0, 0.08) noise, and
``predicted_number_of_orders`` follows ``purchase_rate`` with noise.
"""

from __future__ import annotations

import random
from array import array
from datetime import datetime
from typing import Any

from kbridge.core.clock import utc
from kbridge.emulator.backend.catalog_records import (
    CatalogRecord,
    CatalogSeed,
    CouponCodeRecord,
    CouponRecord,
    catalog_id,
)
from kbridge.emulator.backend.ids import base62_id, iso, ulid, unit_float
from kbridge.emulator.backend.models import (
    EventColumns,
    ListRecord,
    MetricRecord,
    ProfileRecord,
    SegmentRecord,
)
from kbridge.emulator.backend.vocabulary import (
    CATEGORIES,
    HISTORIC_CAMPAIGNS,
    INTEGRATIONS,
    M_ACTIVE,
    M_ADDED,
    M_BOUNCED,
    M_CHECKOUT,
    M_CLICKED,
    M_CLICKED_SMS,
    M_OPENED,
    M_ORDER,
    M_ORDERED_PRODUCT,
    M_RECEIVED,
    M_RECEIVED_SMS,
    M_SPAM,
    M_SUBSCRIBED,
    M_UNSUBSCRIBED,
    M_VIEWED,
    METRICS,
    PRODUCTS,
    pack_order,
)
from kbridge.emulator.dataset import Dataset, DatasetFileError, HiddenTraits, dump, load

# Dataset, its file format and its errors live in ``dataset``; re-exported for callers
# that know the generator's module only.
__all__ = [
    "Dataset",
    "DatasetFileError",
    "dump",
    "generate",
    "generate_catalog",
    "load",
]

DAY = 86400.0
HISTORY_DAYS = 730


_FIRST_TEXT = """
    Ava Ben Chloe Daniel Emma Felix Grace Hugo Isla Jack Kai Lena Mia Noah Olivia Paul Quinn
    Rosa Sam Tara Umar Vera Will Xena Yusuf Zoe Liam Sofia Mateo Aisha Leo Nora Omar Priya
    Ravi Hana Jonas Elif Marco Ines
"""
_FIRST = tuple(_FIRST_TEXT.split())
_LAST_TEXT = """
    Smith Johnson Brown Garcia Miller Davis Martin Lee Walker Hall Young King Wright Lopez
    Hill Scott Green Adams Baker Nelson Carter Mitchell Perez Roberts Turner Phillips Campbell
    Parker Evans Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed
"""
_LAST = tuple(_LAST_TEXT.split())
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")

#: (city, region, country, timezone, latitude, longitude, phone prefix, locale)
_PLACES: tuple[tuple[str, str, str, str, float, float, str, str], ...] = (
    ("Boston", "MA", "US", "America/New_York", 42.36, -71.06, "+1617", "en-US"),
    ("New York", "NY", "US", "America/New_York", 40.71, -74.01, "+1212", "en-US"),
    ("Chicago", "IL", "US", "America/Chicago", 41.88, -87.63, "+1312", "en-US"),
    ("Austin", "TX", "US", "America/Chicago", 30.27, -97.74, "+1512", "en-US"),
    ("Denver", "CO", "US", "America/Denver", 39.74, -104.99, "+1303", "en-US"),
    ("Seattle", "WA", "US", "America/Los_Angeles", 47.61, -122.33, "+1206", "en-US"),
    ("San Diego", "CA", "US", "America/Los_Angeles", 32.72, -117.16, "+1619", "en-US"),
    ("Toronto", "ON", "CA", "America/Toronto", 43.65, -79.38, "+1416", "en-CA"),
    ("Vancouver", "BC", "CA", "America/Vancouver", 49.28, -123.12, "+1604", "en-CA"),
    ("London", "England", "GB", "Europe/London", 51.51, -0.13, "+447700", "en-GB"),
    ("Manchester", "England", "GB", "Europe/London", 53.48, -2.24, "+447701", "en-GB"),
    ("Berlin", "Berlin", "DE", "Europe/Berlin", 52.52, 13.40, "+49151", "de-DE"),
    ("Paris", "Ile-de-France", "FR", "Europe/Paris", 48.86, 2.35, "+33612", "fr-FR"),
    ("Sydney", "NSW", "AU", "Australia/Sydney", -33.87, 151.21, "+61412", "en-AU"),
)
_LOYALTY = ("bronze", "silver", "gold", "platinum")
_SOURCES = ("Organic Search", "Facebook Ads", "Instagram", "Referral", "Google Ads", "Shopify POS")
_SUPPRESSIONS = ("HARD_BOUNCE", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED", "INVALID_EMAIL")


class _Builder:
    """Generates one dataset; a class only to share state among small steps."""

    def __init__(self, seed: int, n_profiles: int, n_events: int, now: float) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_profiles = n_profiles
        self.n_events = n_events
        self.now = now
        self.cols = EventColumns()
        self.profiles: list[ProfileRecord] = []
        self.hidden: list[HiddenTraits] = []

    def build(self) -> Dataset:
        account_id = base62_id(self.seed, 1)
        metrics = self._metrics()
        self._profiles()
        self._events()
        self._finish_profiles()
        lists = self._lists()
        segments = self._segments(metrics, lists)
        return Dataset(
            seed=self.seed,
            now=self.now,
            account_id=account_id,
            account=_account(account_id),
            profiles=self.profiles,
            lists=lists,
            segments=segments,
            metrics=metrics,
            events=self.cols,
            params={
                "seed": self.seed,
                "profiles": self.n_profiles,
                "events_requested": self.n_events,
                "now": iso(self.now),
                "history_days": HISTORY_DAYS,
                "email_subscribed_share": 0.6,
                "buyer_share": 0.65,
                "churn_min_age_days": 60,
            },
            hidden=self.hidden,
        )

    def _metrics(self) -> list[MetricRecord]:
        created = self.now - HISTORY_DAYS * DAY - 30 * DAY
        return [
            MetricRecord(
                index=i,
                id=base62_id(self.seed, 100 + i),
                name=name,
                created=created + i * 3600,
                updated=created + i * 3600,
                integration=dict(INTEGRATIONS[key]),
            )
            for i, (name, key) in enumerate(METRICS)
        ]

    def _profiles(self) -> None:
        rng = self.rng
        span = HISTORY_DAYS * DAY
        created_times = sorted(
            float(int(self.now - span * rng.random())) for _ in range(self.n_profiles)
        )
        for seq, created in enumerate(created_times):
            self.profiles.append(self._profile(seq, created))

    def _profile(self, seq: int, created: float) -> ProfileRecord:
        rng = self.rng
        p = ProfileRecord(seq, ulid(created, self.seed, seq), created)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        place = rng.choice(_PLACES)
        p.first_name, p.last_name = first, last
        p.email = f"{first.lower()}.{last.lower()}{seq}@{rng.choice(_DOMAINS)}"
        p.locale = place[7]
        if rng.random() < 0.4:
            p.phone_number = f"{place[6]}{seq % 10_000_000:07d}"
        if rng.random() < 0.7:
            p.external_id = f"shop-{100000 + seq}"
        p.location = {
            "address1": f"{1 + rng.randrange(998)} {rng.choice(_LAST)} Street",
            "address2": None,
            "city": place[0],
            "country": place[2],
            "latitude": place[4],
            "longitude": place[5],
            "region": place[1],
            "zip": f"{rng.randrange(10000, 99999)}",
            "timezone": place[3],
            "ip": None,
        }
        p.properties = {
            "loyalty_tier": _LOYALTY[min(3, int(rng.expovariate(1.2)))],
            "favorite_category": rng.choice(CATEGORIES),
            "acquisition_source": rng.choice(_SOURCES),
            "loyalty_points": rng.randrange(0, 5000, 10),
        }
        buyer = rng.random() < 0.65
        churn = rng.betavariate(2, 4)
        age = self.now - created
        churn_time: float | None = None
        if age > 60 * DAY and rng.random() < churn:
            churn_time = float(int(created + age * rng.uniform(0.15, 0.9)))
        self.hidden.append(
            HiddenTraits(
                engagement_rate=rng.betavariate(2, 3),
                purchase_rate=rng.betavariate(2, 2.5) if buyer else 0.0,
                churn_propensity=churn,
                churn_time=churn_time,
            )
        )
        self._consent(p, churn_time is not None)
        return p

    def _consent(self, p: ProfileRecord, churned: bool) -> None:
        rng = self.rng
        r = rng.random()
        t = float(int(p.created + rng.uniform(0, 3 * DAY)))
        t = min(t, self.now)
        if r < (0.5 if churned else 0.63):
            p.email_consent, p.email_method = "SUBSCRIBED", "FORM"
            p.email_method_detail = "Footer signup"
            p.email_double_optin = rng.random() < 0.3
        elif r < 0.82:
            p.email_consent, p.email_method = "UNSUBSCRIBED", "EMAIL_UNSUBSCRIBE"
            t = float(int(p.created + (self.now - p.created) * rng.uniform(0.2, 1.0)))
        else:
            p.email_consent = "NEVER_SUBSCRIBED"
        if p.email_consent != "NEVER_SUBSCRIBED":
            p.email_consent_ts = p.email_last_updated = t
        if rng.random() < 0.04:
            reason = rng.choice(_SUPPRESSIONS)
            ts = float(int(p.created + (self.now - p.created) * rng.random()))
            p.email_suppression = [(reason, ts)]
            if reason == "UNSUBSCRIBE":
                p.email_consent, p.email_consent_ts = "UNSUBSCRIBED", ts
                p.email_method = "EMAIL_UNSUBSCRIBE"
            p.email_last_updated = ts
        if p.phone_number is not None and rng.random() < 0.5:
            p.sms_consent, p.sms_method = "SUBSCRIBED", "TEXT"
            p.sms_consent_ts = p.sms_last_updated = t
            p.sms_tx_consent = "SUBSCRIBED"

    def _events(self) -> None:
        weights = []
        for p, h in zip(self.profiles, self.hidden, strict=True):
            end = h.churn_time if h.churn_time is not None else self.now
            days = max(1.0, (end - p.created) / DAY)
            weights.append((0.2 + h.engagement_rate + 2 * h.purchase_rate) * days)
        total = sum(weights) or 1.0
        target = 0.0
        for i, (p, h) in enumerate(zip(self.profiles, self.hidden, strict=True)):
            target += self.n_events * weights[i] / total
            # Each profile's quota absorbs the overshoot of those before it (units are
            # indivisible), so the grand total lands close to the requested number.
            quota = max(0, round(target - len(self.cols)))
            self._profile_events(i, p, h, quota)
        self._sort_events()

    def _profile_events(self, i: int, p: ProfileRecord, h: HiddenTraits, quota: int) -> None:
        rng, cols = self.rng, self.cols
        start = len(cols)
        active_end = h.churn_time if h.churn_time is not None else self.now
        emailable = p.email_consent != "NEVER_SUBSCRIBED"
        # Emails stop at unsubscribing; churned profiles that never unsubscribe keep receiving.
        email_end = p.email_consent_ts if p.email_consent == "UNSUBSCRIBED" else self.now
        email_end = email_end if email_end is not None else self.now
        sms = p.sms_consent == "SUBSCRIBED"
        if p.email_consent == "SUBSCRIBED" and p.email_consent_ts is not None and quota > 0:
            cols.append(p.email_consent_ts, i, M_SUBSCRIBED, 0.0)
        if p.email_consent == "UNSUBSCRIBED" and p.email_consent_ts is not None and quota > 1:
            cols.append(
                p.email_consent_ts, i, M_UNSUBSCRIBED, 0.0, rng.randrange(HISTORIC_CAMPAIGNS)
            )
        while len(cols) - start < quota:
            r = rng.random()
            if emailable and r < 0.5 and email_end > p.created:
                self._email(i, p.created, email_end, active_end, h)
            elif sms and r < 0.58:
                t = float(int(p.created + (self.now - p.created) * rng.random()))
                cols.append(t, i, M_RECEIVED_SMS, 0.0, rng.randrange(HISTORIC_CAMPAIGNS))
                if t < active_end and rng.random() < 0.1:
                    self._add(t + 120, i, M_CLICKED_SMS, 0.0, rng.randrange(HISTORIC_CAMPAIGNS))
            else:
                self._session(i, p.created, active_end, h)

    def _email(self, i: int, start: float, end: float, active_end: float, h: HiddenTraits) -> None:
        rng, cols = self.rng, self.cols
        t = float(int(start + (end - start) * rng.random()))
        campaign = rng.randrange(HISTORIC_CAMPAIGNS)
        r = rng.random()
        if r < 0.004:
            cols.append(t, i, M_BOUNCED, 0.0, campaign)
            return
        cols.append(t, i, M_RECEIVED, 0.0, campaign)
        if t < active_end and rng.random() < h.engagement_rate:
            t_open = t + rng.randrange(60, 6 * 3600)
            self._add(t_open, i, M_OPENED, 0.0, campaign)
            if rng.random() < 0.3:
                self._add(t_open + rng.randrange(5, 600), i, M_CLICKED, 0.0, campaign)
        elif r > 0.9995:
            self._add(t + 600, i, M_SPAM, 0.0, campaign)

    def _add(self, t: float, i: int, metric: int, value: float, aux: int = 0) -> bool:
        """Append an event that follows another, unless it would come after ``now``.

        It has not happened yet: a client reading up to the clock must see every
        generated event. The caller's draws are made either way, so the rest of
        the account is the same as before this rule.
        """
        if t > self.now:
            return False
        self.cols.append(t, i, metric, value, aux)
        return True

    def _session(self, i: int, start: float, end: float, h: HiddenTraits) -> None:
        rng, cols = self.rng, self.cols
        t = float(int(start + (end - start) * rng.random()))
        cols.append(t, i, M_ACTIVE, 0.0, rng.randrange(12))
        viewed = rng.randrange(len(PRODUCTS))
        for _ in range(1 + rng.randrange(2)):
            t += rng.randrange(10, 300)
            viewed = rng.randrange(len(PRODUCTS))
            self._add(t, i, M_VIEWED, 0.0, viewed)
        if rng.random() >= 0.35:
            return
        t += rng.randrange(10, 300)
        self._add(t, i, M_ADDED, PRODUCTS[viewed][2], viewed)
        if rng.random() >= 0.6:
            return
        items = [viewed] + [rng.randrange(len(PRODUCTS)) for _ in range(rng.randrange(4))]
        value = round(sum(PRODUCTS[k][2] for k in items), 2)
        t += rng.randrange(30, 600)
        self._add(t, i, M_CHECKOUT, value, pack_order(items))
        if rng.random() >= h.purchase_rate:
            return
        t += rng.randrange(30, 900)
        # an order (and its products) placed after now has not been placed: not counted
        if not self._add(t, i, M_ORDER, value, pack_order(items)):
            return
        h.orders += 1
        h.revenue += value
        for k, item in enumerate(items):
            self._add(t + k + 1, i, M_ORDERED_PRODUCT, PRODUCTS[item][2], item)

    def _sort_events(self) -> None:
        """Renumber events in time order, so the generated block is already datetime-sorted."""
        c = self.cols
        order = sorted(range(len(c.ts)), key=c.ts.__getitem__)
        self.cols = EventColumns(
            ts=array("d", [c.ts[k] for k in order]),
            profile=array("l", [c.profile[k] for k in order]),
            metric=array("l", [c.metric[k] for k in order]),
            value=array("d", [c.value[k] for k in order]),
            aux=array("q", [c.aux[k] for k in order]),
            generated=len(order),
        )

    def _finish_profiles(self) -> None:
        """Last event dates, lifecycle stages and noisy predictions, from the generated events."""
        cols = self.cols
        last_order: dict[int, float] = {}
        first_order: dict[int, float] = {}
        for k in range(len(cols)):
            pi = cols.profile[k]
            self.profiles[pi].last_event_date = cols.ts[k]
            if cols.metric[k] == M_ORDER:
                first_order.setdefault(pi, cols.ts[k])
                last_order[pi] = cols.ts[k]
        for pi, (p, h) in enumerate(zip(self.profiles, self.hidden, strict=True)):
            h.stage = self._stage(p, h)
            p.predictive = self._predictive(pi, h, first_order.get(pi), last_order.get(pi))

    def _stage(self, p: ProfileRecord, h: HiddenTraits) -> str:
        if h.churn_time is not None and h.churn_time <= self.now:
            return "churned"
        if self.now - p.created < 30 * DAY:
            return "new"
        if h.orders == 0:
            return "prospect"
        if h.churn_propensity >= 0.5:
            return "at_risk"
        return "loyal" if h.orders >= 3 else "active"

    def _predictive(
        self, pi: int, h: HiddenTraits, first: float | None, last: float | None
    ) -> tuple[Any, ...]:
        noise = self.rng.gauss
        churned = h.churn_time is not None
        churn_p = min(
            1.0, max(0.0, h.churn_propensity * (1.4 if churned else 1.0) + noise(0, 0.08))
        )
        aov = h.revenue / h.orders if h.orders else None
        yearly = 0.0 if churned else max(0.0, h.purchase_rate * 8 * (1 + noise(0, 0.2)))
        predicted_orders = round(yearly, 2)
        predicted_clv = round(predicted_orders * aov, 2) if aov is not None else 0.0
        between = (
            round((last - first) / DAY / (h.orders - 1), 1)
            if first is not None and last is not None and h.orders > 1
            else None
        )
        next_order = None
        if last is not None and between is not None and not churned:
            next_order = iso(max(self.now + DAY, last + between * DAY))
        affinity = ["email", "sms", "push"] if h.engagement_rate > 0.3 else ["sms", "email", "push"]
        return (
            round(h.revenue, 2),
            predicted_clv,
            round(h.revenue + predicted_clv, 2),
            h.orders,
            predicted_orders,
            between,
            round(aov, 2) if aov is not None else None,
            round(churn_p, 3),
            next_order,
            affinity,
        )

    def _lists(self) -> list[ListRecord]:
        start = self.now - HISTORY_DAYS * DAY - 7 * DAY
        specs = (
            ("Newsletter", "double_opt_in"),
            ("VIP", "single_opt_in"),
            ("Product updates", "single_opt_in"),
            ("SMS subscribers", "single_opt_in"),
        )
        lists = [
            ListRecord(
                k, base62_id(self.seed, 1000 + k), name, start + k * DAY, start + k * DAY, opt
            )
            for k, (name, opt) in enumerate(specs)
        ]
        newsletter, vip, updates, sms = lists
        for p, h in zip(self.profiles, self.hidden, strict=True):
            joined = p.email_consent_ts or p.created
            u = unit_float(self.seed, p.seq, 55)
            if p.email_consent == "SUBSCRIBED" and u < 0.9:
                newsletter.members[p.seq] = joined
            if p.email_consent == "SUBSCRIBED" and u < 0.25:
                updates.members[p.seq] = joined + 3600
            if h.orders >= 3:
                vip.members[p.seq] = max(p.created, min(self.now, p.created + 90 * DAY))
            if p.sms_consent == "SUBSCRIBED" and p.sms_consent_ts is not None:
                sms.members[p.seq] = p.sms_consent_ts
        return lists

    def _segments(
        self, metrics: list[MetricRecord], lists: list[ListRecord]
    ) -> list[SegmentRecord]:
        mid = {m.name: m.id for m in metrics}
        last30 = {"type": "date", "operator": "in-the-last", "unit": "day", "quantity": 30}
        alltime = {"type": "date", "operator": "alltime"}

        def metric(name: str, op: str, value: int, timeframe: dict[str, Any]) -> dict[str, Any]:
            return {
                "type": "profile-metric",
                "metric_id": mid[name],
                "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": op, "value": value},
                "timeframe_filter": dict(timeframe),
            }

        def groups(*conditions: list[dict[str, Any]]) -> dict[str, Any]:
            return {"condition_groups": [{"conditions": c} for c in conditions]}

        email_consent = {
            "type": "profile-marketing-consent",
            "consent": {
                "channel": "email",
                "can_receive_marketing": True,
                "consent_status": {"subscription": "any"},
            },
        }
        top_tiers = {
            "type": "profile-property",
            "property": "properties['loyalty_tier']",
            "filter": {"type": "string", "operator": "in", "value": ["gold", "platinum"]},
        }
        newsletter = {
            "type": "profile-group-membership",
            "is_member": True,
            "group_ids": [lists[0].id],
        }
        definitions: list[tuple[str, dict[str, Any]]] = [
            (
                "Engaged (last 30 days)",
                groups(
                    [
                        metric("Opened Email", "greater-than-or-equal", 1, last30),
                        metric("Clicked Email", "greater-than-or-equal", 1, last30),
                        metric("Active on Site", "greater-than-or-equal", 1, last30),
                    ]
                ),
            ),
            (
                "VIP customers",
                groups([metric("Placed Order", "greater-than-or-equal", 3, alltime)]),
            ),
            ("Email subscribers", groups([email_consent])),
            ("Gold and platinum tier", groups([top_tiers])),
            (
                "Newsletter, never purchased",
                groups([newsletter], [metric("Placed Order", "equals", 0, alltime)]),
            ),
        ]
        start = self.now - 365 * DAY
        return [
            SegmentRecord(
                seq=k,
                id=base62_id(self.seed, 2000 + k),
                name=name,
                definition=definition,
                created=start + k * DAY,
                updated=start + k * DAY,
                is_starred=k == 0,
            )
            for k, (name, definition) in enumerate(definitions)
        ]


def _account(account_id: str) -> dict[str, Any]:
    return {
        "test_account": False,
        "contact_information": {
            "default_sender_name": "Northwind Outfitters",
            "default_sender_email": "hello@northwind.example.com",
            "website_url": "https://shop.example.com",
            "organization_name": "Northwind Outfitters",
            "street_address": {
                "address1": "125 Summer Street",
                "address2": "5th Floor",
                "city": "Boston",
                "region": "MA",
                "country": "US",
                "zip": "02110",
            },
        },
        "industry": "Apparel & Accessories",
        "timezone": "America/New_York",
        "preferred_currency": "USD",
        "public_api_key": account_id,
        "locale": "en-US",
    }


def generate(seed: int, profiles: int, events: int, now: datetime) -> Dataset:
    """Generate an account; the same arguments always give identical data.

    ``now`` must be timezone-aware; it is truncated to whole seconds.
    """
    if profiles < 0 or events < 0:
        raise ValueError("profiles and events must be >= 0")
    now_ts = float(int(utc(now).timestamp()))
    return _Builder(seed, profiles, events if profiles else 0, now_ts).build()


#: coupons a generated account offers: (external id, description, codes)
_COUPONS = (
    ("WELCOME10", "10% off a first order", 40),
    ("VIP20", "20% off for loyal customers", 12),
)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_catalog(
    seed: int,
    now: float,
    profile_ids: list[str],
    *,
    extra_items: int = 0,
    extra_categories: int = 0,
    extra_coupons: int = 0,
    codes_per_extra_coupon: int = 0,
) -> CatalogSeed:
    """The account's catalogue and coupons, deterministic from ``seed`` and ``now``.

    One item (with one variant) per product of the shared vocabulary, its
    ``external_id`` the ``ProductID`` that Ordered Product and Viewed Product
    events carry (``1000 + index``), so events join to the catalogue; one
    category per vocabulary category. Coupon codes go to the first profiles,
    a few of them used. The ``extra_*`` records follow (no event names them):
    items spread round-robin over the extra categories (else the vocabulary's),
    coupons with unassigned codes.
    """
    if min(extra_items, extra_categories, extra_coupons, codes_per_extra_coupon) < 0:
        raise ValueError("extra catalogue and coupon counts must be >= 0")
    rng = random.Random(f"catalog:{seed}")
    out = CatalogSeed()
    seq = 1 << 40  # far above the store's counter, so created records never collide
    opened = now - HISTORY_DAYS * DAY
    by_category: dict[str, CatalogRecord] = {}
    for k, name in enumerate(CATEGORIES):
        seq += 1
        cid = catalog_id(name.lower())
        at = opened + k * 60.0
        by_category[name] = CatalogRecord(seq, cid, {"external_id": name.lower(), "name": name},
                                          at, at)  # fmt: skip
        out.categories.append(by_category[name])
    for k, (title, category, price) in enumerate(PRODUCTS):
        seq += 1
        external = str(1000 + k)
        created = opened + DAY + k * 3600.0
        updated = created + rng.uniform(0, HISTORY_DAYS - 2) * DAY
        slug = title.lower().replace(" ", "-")
        item = CatalogRecord(
            seq,
            catalog_id(external),
            {
                "external_id": external,
                "title": title,
                "description": f"{title} from the {category} range.",
                "price": price,
                "url": f"https://shop.example.com/products/{slug}",
                "image_full_url": f"https://shop.example.com/images/{slug}.jpg",
                "published": k % 10 != 9,
            },
            created,
            updated,
            {by_category[category].id},
        )
        by_category[category].links.add(item.id)
        out.items.append(item)
        seq += 1
        sku = f"SKU-{external}"
        out.variants.append(
            CatalogRecord(
                seq,
                catalog_id(sku),
                {
                    "external_id": sku,
                    "title": f"{title} - Standard",
                    "description": f"{title}, standard size.",
                    "sku": sku,
                    "inventory_policy": 0,
                    "inventory_quantity": float(rng.randrange(0, 250)),
                    "price": price,
                    "url": f"https://shop.example.com/products/{slug}?variant=standard",
                    "published": True,
                },
                created,
                updated,
                {item.id},
            )
        )
    holders = iter(profile_ids)
    for k, (external, description, count) in enumerate(_COUPONS):
        seq += 1
        created = now - (90 - 30 * k) * DAY
        out.coupons.append(CouponRecord(seq, external, description, None, created))
        for _ in range(count):
            seq += 1
            code = "".join(rng.choice(_CODE_ALPHABET) for _ in range(10))
            holder = next(holders, None) if rng.random() < 0.5 else None
            status = "UNASSIGNED"
            if holder is not None:
                status = "USED" if rng.random() < 0.3 else "ASSIGNED_TO_PROFILE"
            out.codes.append(
                CouponCodeRecord(
                    seq,
                    f"{external}-{code}",
                    external,
                    code,
                    created + 365 * DAY,
                    status,
                    created,
                    holder,
                )
            )
    _add_extras(out, rng, seq, now, extra_items, extra_categories, extra_coupons,
                codes_per_extra_coupon)  # fmt: skip
    return out


def _add_extras(
    out: CatalogSeed, rng: random.Random, seq: int, now: float, items: int, categories: int,
    coupons: int, codes_per_coupon: int,
) -> None:  # fmt: skip
    opened = now - HISTORY_DAYS * DAY
    homes = list(out.categories)
    if categories:
        homes = []
        for k in range(categories):
            seq += 1
            external = f"extra-category-{k}"
            at = opened + k
            attrs = {"external_id": external, "name": f"Category {k}"}
            cat = CatalogRecord(seq, catalog_id(external), attrs, at, at)
            out.categories.append(cat)
            homes.append(cat)
    for k in range(items):
        seq += 1
        external = f"X{k}"
        created = opened + DAY + k
        updated = created + rng.uniform(0, HISTORY_DAYS - 2) * DAY
        price = round(rng.uniform(5, 200), 2)
        home = homes[k % len(homes)]
        item = CatalogRecord(
            seq,
            catalog_id(external),
            {
                "external_id": external,
                "title": f"Product {k}",
                "description": f"Product {k}, generated.",
                "price": price,
                "url": f"https://shop.example.com/products/x{k}",
                "image_full_url": f"https://shop.example.com/images/x{k}.jpg",
                "published": True,
            },
            created,
            updated,
            {home.id},
        )
        home.links.add(item.id)
        out.items.append(item)
        seq += 1
        sku = f"SKU-{external}"
        out.variants.append(
            CatalogRecord(
                seq,
                catalog_id(sku),
                {
                    "external_id": sku,
                    "title": f"Product {k} - Standard",
                    "description": f"Product {k}, standard size.",
                    "sku": sku,
                    "inventory_policy": 0,
                    "inventory_quantity": float(rng.randrange(0, 250)),
                    "price": price,
                    "url": f"https://shop.example.com/products/x{k}?variant=standard",
                    "published": True,
                },
                created,
                updated,
                {item.id},
            )
        )
    for k in range(coupons):
        seq += 1
        external = f"EXTRA{k}"
        created = now - 60 * DAY + k
        out.coupons.append(CouponRecord(seq, external, f"Generated coupon {k}", None, created))
        for n in range(codes_per_coupon):
            seq += 1
            # numbered, not drawn: unique however many there are
            code = f"X{k}N{n}"
            expires = created + 365 * DAY
            out.codes.append(
                CouponCodeRecord(
                    seq, f"{external}-{code}", external, code, expires, "UNASSIGNED", created
                )
            )
