"""Profiles: read, create (409 on a duplicate identifier), update, upsert (profile-import).

Write semantics follow Klaviyo: an attribute set to ``null`` is cleared, an
omitted one is kept; ``properties`` and ``location`` merge key by key;
``meta.patch_properties`` appends to / removes from list properties and
unsets keys. Identifiers (email, phone_number, external_id) are unique
across profiles; ``updated`` moves on every change (sync relies on it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    check_email,
    check_phone,
    data_of,
    is_email,
    is_phone,
    not_found,
    page_of,
)
from kbridge.emulator.backend.errors import ConflictError, InvalidError
from kbridge.emulator.backend.filtering import range_bounds
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import PREDICTIVE_FIELDS, ProfileRecord
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.store import Store
from kbridge.emulator.query import Page, Query

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = [
    "ProfilesBackend",
    "apply_attributes",
    "profile_payload_ok",
    "profile_resource",
    "subscriptions_of",
    "validate_profile_payload",
]

MAX_PROFILE_BYTES = 100 * 1024
IDENTIFIERS = ("email", "phone_number", "external_id")
_STRING_ATTRS = ("first_name", "last_name", "organization", "locale", "title", "image")
_LOCATION_KEYS = (
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
)
_LINKS_ONLY = ("lists", "segments", "push-tokens")


def subscriptions_of(p: ProfileRecord) -> dict[str, Any]:
    """The ``subscriptions`` attribute, built from the profile's flat consent fields."""
    suppressed = bool(p.email_suppression)
    sms_ok = p.sms_consent == "SUBSCRIBED"
    return {
        "email": {
            "marketing": {
                "can_receive_email_marketing": p.email_consent == "SUBSCRIBED" and not suppressed,
                "consent": p.email_consent,
                "consent_timestamp": iso(p.email_consent_ts),
                "last_updated": iso(p.email_last_updated),
                "method": p.email_method,
                "method_detail": p.email_method_detail,
                "custom_method_detail": None,
                "double_optin": p.email_double_optin,
                "suppression": [{"reason": r, "timestamp": iso(t)} for r, t in p.email_suppression],
                "list_suppressions": [
                    {"list_id": lid, "reason": r, "timestamp": iso(t)}
                    for lid, r, t in p.email_list_suppressions
                ],
            }
        },
        "sms": {
            "marketing": {
                "can_receive_sms_marketing": sms_ok,
                "consent": p.sms_consent,
                "consent_timestamp": iso(p.sms_consent_ts),
                "method": p.sms_method,
                "method_detail": None,
                "last_updated": iso(p.sms_last_updated),
            },
            "transactional": {
                "can_receive_sms_transactional": p.sms_tx_consent == "SUBSCRIBED",
                "consent": p.sms_tx_consent,
                "consent_timestamp": iso(p.sms_consent_ts),
                "method": p.sms_method,
                "method_detail": None,
                "last_updated": iso(p.sms_last_updated),
            },
        },
        "mobile_push": {
            "marketing": {
                "can_receive_push_marketing": False,
                "consent": "NEVER_SUBSCRIBED",
                "consent_timestamp": None,
            }
        },
    }


def profile_attributes(p: ProfileRecord, query: Query | None) -> dict[str, Any]:
    loc = p.location or {}
    attrs: dict[str, Any] = {
        "email": p.email,
        "phone_number": p.phone_number,
        "external_id": p.external_id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "organization": p.organization,
        "locale": p.locale,
        "title": p.title,
        "image": p.image,
        "created": iso(p.created),
        "updated": iso(p.updated),
        "last_event_date": iso(p.last_event_date),
        "location": {k: loc.get(k) for k in _LOCATION_KEYS},
        "properties": dict(p.properties),
    }
    if query is not None and query.wants("profile", "subscriptions"):
        attrs["subscriptions"] = subscriptions_of(p)
    if query is not None and query.wants("profile", "predictive_analytics"):
        values = p.predictive or (None,) * len(PREDICTIVE_FIELDS)
        attrs["predictive_analytics"] = dict(zip(PREDICTIVE_FIELDS, values, strict=True))
    return attrs


def profile_resource(
    p: ProfileRecord, query: Query | None, extra: dict[str, Any] | None = None
) -> Resource:
    attrs = profile_attributes(p, query)
    if extra:
        attrs.update(extra)
    return Resource("profile", p.id, attrs, links_only=_LINKS_ONLY)


def profile_getters(store: Store) -> dict[str, Callable[[int], Any]]:
    """How ``filter`` reads a profile (by seq) for each filterable field."""
    P = store.profiles

    def lower_email(s: int) -> Any:
        e = P[s].email
        return e.lower() if e else None

    return {
        "id": lambda s: P[s].id,
        "email": lower_email,
        "phone_number": lambda s: P[s].phone_number,
        "external_id": lambda s: P[s].external_id,
        "_kx": lambda s: None,
        "push_token": lambda s: None,
        "created": lambda s: P[s].created,
        "updated": lambda s: P[s].updated,
        "subscriptions.email.marketing.suppression.reason": lambda s: [
            r for r, _ in P[s].email_suppression
        ],
        "subscriptions.email.marketing.suppression.timestamp": lambda s: [
            t for _, t in P[s].email_suppression
        ],
        "subscriptions.email.marketing.list_suppressions.reason": lambda s: [
            r for _, r, _ in P[s].email_list_suppressions
        ],
        "subscriptions.email.marketing.list_suppressions.timestamp": lambda s: [
            t for _, _, t in P[s].email_list_suppressions
        ],
        "subscriptions.email.marketing.list_suppressions.list_id": lambda s: [
            lid for lid, _, _ in P[s].email_list_suppressions
        ],
    }


#: a created/updated window holding at most this share of profiles is sorted, not scanned
_SPARSE_WINDOW = 0.2


def _sparse_time_window(store: Store, query: Query) -> list[int] | None:
    """Profiles in a narrow ``created``/``updated`` range, when sorting by something else.

    Incremental sync asks for "updated since X" (few profiles) in id order;
    scanning 200k profiles by id to find them would cost a whole scan per page.
    """
    best: list[int] | None = None
    for name, index in (("updated", store.order_updated), ("created", store.order_created)):
        low, low_inc, high, high_inc = range_bounds(query.conditions, name)
        if low is None and high is None:
            continue
        items, key = index.items, index.key
        a = 0
        if low is not None:
            a = (
                bisect_left(items, (low,), key=key)
                if low_inc
                else bisect_right(items, (low, float("inf")), key=key)
            )
        b = len(items)
        if high is not None:
            b = (
                bisect_right(items, (high, float("inf")), key=key)
                if high_inc
                else bisect_left(items, (high,), key=key)
            )
        window = list(items[a : max(a, b)])
        if best is None or len(window) < len(best):
            best = window
    if best is None or len(best) > _SPARSE_WINDOW * max(1, len(store.profiles)):
        return None
    return best


def identifier_candidates(store: Store, query: Query) -> set[int] | None:
    """Profiles pinned down by an identifier equals/any condition, or ``None`` if none is."""
    index = {
        "id": store.by_id,
        "email": store.by_email,
        "phone_number": store.by_phone,
        "external_id": store.by_external,
        "profile_id": store.by_id,
    }
    found: set[int] | None = None
    for c in query.conditions:
        if c.negated or c.field not in index or c.operator not in ("equals", "any"):
            continue
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        seqs = set()
        for v in values:
            key = str(v).lower() if c.field == "email" else str(v)
            s = index[c.field].get(key)
            if s is not None:
                seqs.add(s)
        found = seqs if found is None else found & seqs
    return found


class ProfilesBackend(TagBackend):
    operations = frozenset(
        {
            "get_profiles",
            "get_profile",
            "create_profile",
            "update_profile",
            "create_or_update_profile",
            "get_lists_for_profile",
            "get_list_ids_for_profile",
            "get_segments_for_profile",
            "get_segment_ids_for_profile",
        }
    )

    # -- reads -----------------------------------------------------------------

    def get_profiles(self, call: Call) -> Outcome:
        store, q = self.store, call.query
        sort = q.sort.field if q.sort is not None else "id"
        P = store.profiles
        key: Callable[[int], tuple[Any, ...]]
        ordered: Sequence[int]
        lo, hi = 0, None
        if sort == "id":
            ordered, key = store.order_id.items, store.order_id.key
        elif sort == "created" or sort == "updated":
            index = store.order_created if sort == "created" else store.order_updated
            ordered, key = index.items, index.key
            low, low_inc, high, high_inc = range_bounds(q.conditions, sort)
            if low is not None:
                bisect = bisect_left if low_inc else bisect_right
                lo = bisect(ordered, (low,) if low_inc else (low, float("inf")), key=key)
            if high is not None:
                hi = (
                    bisect_right(ordered, (high, float("inf")), key=key)
                    if high_inc
                    else (bisect_left(ordered, (high,), key=key))
                )
        elif sort == "email":
            ordered, key = store.email_order(), store.email_key
        else:
            # suppression timestamps: rare, so sorted on demand; unsuppressed profiles
            # come last whichever the direction (the cursor scope includes the sort)
            field = "list_suppressions" if "list_suppressions" in sort else "suppression"
            missing = float("-inf") if q.sort is not None and q.sort.descending else float("inf")

            def key(s: int) -> tuple[Any, ...]:
                sup = getattr(P[s], f"email_{field}")
                return (min((x[-1] for x in sup), default=missing), s)

            ordered = sorted((p.seq for p in store.live_profiles()), key=key)
        pinned: Collection[int] | None = identifier_candidates(store, q)
        if pinned is None and sort not in ("created", "updated"):
            pinned = _sparse_time_window(store, q)
        if pinned is not None:
            ordered, lo, hi = sorted(pinned, key=key), 0, None
        page = page_of(
            call,
            ordered,
            key,
            profile_getters(store),
            alive=lambda s: not P[s].deleted,
            lo=lo,
            hi=hi,
        )
        return Outcome(data=self._resources(page, q))

    def _resources(self, page: Page[int], q: Query) -> Page[Resource]:
        P = self.store.profiles
        return Page(
            items=[profile_resource(P[s], q) for s in page.items],
            next_cursor=page.next_cursor,
            prev_cursor=page.prev_cursor,
        )

    def _get(self, call: Call) -> ProfileRecord:
        pid = self.path_id(call)
        p = self.store.profile(pid)
        if p is None:
            raise not_found("profile", pid)
        return p

    def get_profile(self, call: Call) -> Outcome:
        p = self._get(call)
        res = profile_resource(p, call.query)
        included: list[Resource] = []
        from kbridge.emulator.backend.lists import list_resource

        if "lists" in call.query.include:
            lists = self._lists_of(p)
            res.relationships["lists"] = [("list", lst.id) for lst in lists]
            included += [list_resource(lst, None) for lst in lists]
        if "segments" in call.query.include:
            segs = self._segments_of(p)
            res.relationships["segments"] = [("segment", s) for s in segs]
            assert self.ctx.segments is not None
            included += [self.ctx.segments.resource_by_id(s, None) for s in segs]
        res.links_only = tuple(n for n in _LINKS_ONLY if n not in res.relationships)
        return Outcome(data=res, included=included)

    def _lists_of(self, p: ProfileRecord) -> list[Any]:
        return [lst for lst in self.store.lists.values() if p.seq in lst.members]

    def _segments_of(self, p: ProfileRecord) -> list[str]:
        assert self.ctx.segments is not None
        return [sid for sid in self.store.segments if p.seq in self.ctx.segments.members(sid)]

    def get_lists_for_profile(self, call: Call) -> Outcome:
        from kbridge.emulator.backend.lists import list_resource

        return Outcome(data=[list_resource(lst, None) for lst in self._lists_of(self._get(call))])

    def get_list_ids_for_profile(self, call: Call) -> Outcome:
        lists = self._lists_of(self._get(call))
        return Outcome(data=[Resource("list", lst.id, {}) for lst in lists], identifiers_only=True)

    def get_segments_for_profile(self, call: Call) -> Outcome:
        assert self.ctx.segments is not None
        segs = self._segments_of(self._get(call))
        return Outcome(data=[self.ctx.segments.resource_by_id(s, None) for s in segs])

    def get_segment_ids_for_profile(self, call: Call) -> Outcome:
        segs = self._segments_of(self._get(call))
        return Outcome(data=[Resource("segment", s, {}) for s in segs], identifiers_only=True)

    # -- writes ------------------------------------------------------------------

    def create_profile(self, call: Call) -> Outcome:
        data = data_of(call.body, "profile")
        attrs = attributes_of(data)
        self._validate(data, attrs, require_identifier=True)
        self._check_duplicates(attrs, None)
        p = self.store.new_profile(self.ctx.now())
        self.store.change_profile(p, self.ctx.now(), lambda: apply_attributes(p, attrs, data))
        return Outcome(data=profile_resource(p, call.query), status=201)

    def update_profile(self, call: Call) -> Outcome:
        p = self._get(call)
        data = data_of(call.body, "profile")
        if data.get("id") != p.id:
            raise InvalidError(
                f"data.id must match the profile id in the path ({p.id})", pointer="/data/id"
            )
        attrs = attributes_of(data) if "attributes" in data else {}
        self._validate(data, attrs, require_identifier=False)
        self._check_duplicates(attrs, p)
        self.store.change_profile(p, self.ctx.now(), lambda: apply_attributes(p, attrs, data))
        return Outcome(data=profile_resource(p, call.query))

    def create_or_update_profile(self, call: Call) -> Outcome:
        data = data_of(call.body, "profile")
        attrs = attributes_of(data)
        existing = self._match(data, attrs)
        self._validate(data, attrs, require_identifier=existing is None)
        self._check_duplicates(attrs, existing)
        now = self.ctx.now()
        if existing is None:
            p = self.store.new_profile(now)
            self.store.change_profile(p, now, lambda: apply_attributes(p, attrs, data))
            return Outcome(data=profile_resource(p, call.query), status=201)
        target = existing
        self.store.change_profile(target, now, lambda: apply_attributes(target, attrs, data))
        return Outcome(data=profile_resource(target, call.query), status=200)

    def _match(self, data: dict[str, Any], attrs: dict[str, Any]) -> ProfileRecord | None:
        """profile-import's upsert key: id, then email, phone_number, external_id."""
        if data.get("id"):
            p = self.store.profile(str(data["id"]))
            if p is None:
                raise not_found("profile", str(data["id"]))
            return p
        for field in IDENTIFIERS:
            value = attrs.get(field)
            if isinstance(value, str):
                found = self.store.find_identifier(field, value)
                if found is not None:
                    return found
        return None

    def _validate(
        self, data: dict[str, Any], attrs: dict[str, Any], *, require_identifier: bool
    ) -> None:
        validate_profile_payload(data, attrs, require_identifier=require_identifier)

    def _check_duplicates(self, attrs: dict[str, Any], own: ProfileRecord | None) -> None:
        for field in IDENTIFIERS:
            value = attrs.get(field)
            if not isinstance(value, str):
                continue
            other = self.store.find_identifier(field, value)
            if other is not None and other is not own:
                raise ConflictError(
                    "A profile already exists with one of these identifiers.",
                    code="duplicate_profile",
                    pointer="/data/attributes",
                    meta={"duplicate_profile_id": other.id},
                )


#: the type validate_profile_payload wants of each attribute it knows (None always passes)
_ATTR_TYPES: dict[str, type] = {
    **dict.fromkeys((*IDENTIFIERS, *_STRING_ATTRS), str),
    "location": dict,
    "properties": dict,
}
#: attributes apply_attributes copies as they are
_PLAIN_ATTRS = frozenset((*IDENTIFIERS, *_STRING_ATTRS))


def profile_payload_ok(
    data: dict[str, Any], attrs: dict[str, Any], *, require_identifier: bool
) -> bool:
    """Whether :func:`validate_profile_payload` would pass, in one look at each attribute.

    A bulk import judges 10,000 rows a job, nearly all good: this answers for them
    without building a pointer or looking up each known attribute by name. It may
    say no where the full checks pass (a ``str`` subclass); they then decide.
    """
    for name, value in attrs.items():
        wanted = _ATTR_TYPES.get(name)
        if wanted is not None and value is not None and type(value) is not wanted:
            return False
    email, phone = attrs.get("email"), attrs.get("phone_number")
    if email is not None and not is_email(email):
        return False
    if phone is not None and not is_phone(phone):
        return False
    if require_identifier and not (email or phone or attrs.get("external_id") or data.get("id")):
        return False
    meta = data.get("meta")
    if meta is not None and type(meta) is not dict:
        return False
    return len(orjson.dumps(data)) <= MAX_PROFILE_BYTES


def validate_profile_payload(
    data: dict[str, Any], attrs: dict[str, Any], *, require_identifier: bool, base: str = "/data"
) -> None:
    """Size, identifier and type checks shared by create, update, import and bulk import."""
    if profile_payload_ok(data, attrs, require_identifier=require_identifier):
        return
    # something is wrong: the checks in their order name the first problem
    if len(orjson.dumps(data)) > MAX_PROFILE_BYTES:
        raise InvalidError("A profile payload must not exceed 100 KB.", pointer=base)
    ptr = f"{base}/attributes"
    if attrs.get("email") is not None:
        check_email(attrs["email"], f"{ptr}/email")
    if attrs.get("phone_number") is not None:
        check_phone(attrs["phone_number"], f"{ptr}/phone_number")
    if attrs.get("external_id") is not None and not isinstance(attrs["external_id"], str):
        raise InvalidError("external_id must be a string", pointer=f"{ptr}/external_id")
    for name in _STRING_ATTRS:
        if attrs.get(name) is not None and not isinstance(attrs[name], str):
            raise InvalidError(f"{name} must be a string or null", pointer=f"{ptr}/{name}")
    for name in ("location", "properties"):
        if attrs.get(name) is not None and not isinstance(attrs[name], dict):
            raise InvalidError(f"{name} must be an object or null", pointer=f"{ptr}/{name}")
    if require_identifier and not any(attrs.get(f) for f in IDENTIFIERS) and not data.get("id"):
        raise InvalidError(
            "A profile needs at least one identifier: email, phone_number or external_id.",
            pointer=ptr,
        )
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidError("meta must be an object", pointer=f"{base}/meta")


def apply_attributes(p: ProfileRecord, attrs: dict[str, Any], data: dict[str, Any]) -> None:
    """Write ``attrs`` onto ``p``: null clears, omission keeps, objects merge by key."""
    # one pass over what was sent (a few keys), not a lookup of every known attribute
    for name, value in attrs.items():
        if name in _PLAIN_ATTRS:
            setattr(p, name, value)
        elif name == "location":
            if value is None:
                p.location = None
            else:
                merged = dict(p.location or {})
                merged.update({k: v for k, v in value.items() if k in _LOCATION_KEYS})
                p.location = merged
        elif name == "properties":
            p.properties = {} if value is None else {**p.properties, **value}
    meta = data.get("meta")
    if meta:
        patch = meta.get("patch_properties") if isinstance(meta, dict) else None
        if isinstance(patch, dict):
            _patch_properties(p, patch)


def _patch_properties(p: ProfileRecord, patch: dict[str, Any]) -> None:
    props = dict(p.properties)
    for k, v in (patch.get("append") or {}).items():
        current = props.get(k)
        items = (
            list(current) if isinstance(current, list) else ([] if current is None else [current])
        )
        items.extend(v if isinstance(v, list) else [v])
        props[k] = items
    for k, v in (patch.get("unappend") or {}).items():
        current = props.get(k)
        if isinstance(current, list):
            drop = v if isinstance(v, list) else [v]
            props[k] = [x for x in current if x not in drop]
    unset = patch.get("unset")
    for k in [unset] if isinstance(unset, str) else (unset or []):
        props.pop(k, None)
    p.properties = props
