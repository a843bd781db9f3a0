"""Client endpoints (``/client/…``): what a browser or mobile app sends with the public key.

Each becomes the same real change the private API would make, by handing a
reshaped call to the private operation's backend: a client event is an event
of the account (``create_event``), a bulk of them an event bulk job, a client
profile a profile upsert, a client subscription a one-profile subscribe job.
Errors keep pointing into the client's own body, since the shapes mostly match.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kbridge import catalog
from kbridge.emulator.backend.call import Outcome
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
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["ClientBackend"]

#: identifiers a browser may send that a private profile write does not take
_CLIENT_ONLY = ("anonymous_id", "_kx")
#: the id of the one allow list (any other id is a 404, as in Klaviyo)
IP_ALLOWLIST_ID = "integration-egress"
#: the emulator's egress ranges: documentation-only networks (RFC 5737), so no firewall
#: rule copied from the emulator opens anything real
EGRESS_PREFIXES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
EGRESS_CHANGED = "2026-01-01T00:00:00+00:00"
#: what a subscription's profile may carry besides consent (written to the profile)
_CONSENT_KEYS = ("email", "phone_number", "subscriptions")


class ClientBackend(TagBackend):
    operations = frozenset(
        {
            "create_client_event",
            "bulk_create_client_events",
            "create_client_profile",
            "create_client_subscription",
            "create_client_back_in_stock_subscription",
            "get_client_geofences",
            "create_client_push_token",
            "get_client_ip_allowlist",
        }
    )

    def __init__(self, ctx: Context, dispatch: Callable[[Call], Outcome]) -> None:
        super().__init__(ctx)
        self._dispatch = dispatch

    def _as(self, call: Call, op_id: str, body: Any) -> Outcome:
        return self._dispatch(replace(call, operation=catalog.get(op_id), body=body))

    def create_client_event(self, call: Call) -> Outcome:
        self._as(call, "create_event", call.body)
        return Outcome(status=202)

    def bulk_create_client_events(self, call: Call) -> Outcome:
        data = data_of(call.body, "event-bulk-create")
        attributes_of(data)
        # the private bulk job's body is a list of exactly these blocks
        job = {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": [data]}},
        }
        self._as(call, "bulk_create_events", {"data": job})
        return Outcome(status=202)

    def create_client_profile(self, call: Call) -> Outcome:
        data = data_of(call.body, "profile")
        attrs = {k: v for k, v in attributes_of(data).items() if k not in _CLIENT_ONLY}
        if not any(attrs.get(k) for k in ("email", "phone_number", "external_id")):
            raise InvalidError(
                "a client profile needs an email, phone_number or external_id",
                pointer="/data/attributes",
            )
        body = {"data": {"type": "profile", "attributes": attrs}}
        self._as(call, "create_or_update_profile", body)
        return Outcome(status=202)

    def create_client_subscription(self, call: Call) -> Outcome:
        data = data_of(call.body, "subscription")
        attrs = attributes_of(data)
        block = attrs.get("profile")
        pdata = block.get("data") if isinstance(block, dict) else None
        ptr = "/data/attributes/profile/data"
        if not isinstance(pdata, dict) or pdata.get("type") != "profile":
            raise InvalidError("profile.data must be a profile resource object", pointer=ptr)
        pattrs = attributes_of(pdata, f"{ptr}/attributes")
        list_ids = relationship_ids(data, "list", "list", many=False)
        if not list_ids:
            raise InvalidError("relationships.list is required", pointer="/data/relationships")
        subs = pattrs.get("subscriptions")
        if subs is None:
            # a sign-up form's default: marketing consent on each channel it collected
            subs = {}
            if pattrs.get("email"):
                subs["email"] = {"marketing": {"consent": "SUBSCRIBED"}}
            if pattrs.get("phone_number"):
                subs["sms"] = {"marketing": {"consent": "SUBSCRIBED"}}
        extra = {
            k: v
            for k, v in pattrs.items()
            if k not in _CONSENT_KEYS and k not in _CLIENT_ONLY and v is not None
        }
        if extra:
            ident = {k: pattrs[k] for k in ("email", "phone_number") if pattrs.get(k)}
            profile = {"type": "profile", "attributes": {**ident, **extra}}
            self._as(call, "create_or_update_profile", {"data": profile})
        row = {
            "type": "profile",
            "attributes": {
                **{k: pattrs[k] for k in ("email", "phone_number") if pattrs.get(k)},
                "subscriptions": subs,
            },
        }
        job: dict[str, Any] = {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {"profiles": {"data": [row]}},
            "relationships": {"list": {"data": {"type": "list", "id": list_ids[0]}}},
        }
        if attrs.get("custom_source") is not None:
            job["attributes"]["custom_source"] = attrs["custom_source"]
        self._as(call, "bulk_subscribe_profiles", {"data": job})
        return Outcome(status=202)

    def create_client_back_in_stock_subscription(self, call: Call) -> Outcome:
        self._as(call, "create_back_in_stock_subscription", call.body)
        return Outcome(status=202)

    def get_client_geofences(self, call: Call) -> Outcome:
        # the emulated account defines no geofences (they come from Klaviyo's app UI)
        page = page_of(call, [], lambda s: (s,), {})
        return Outcome(
            data=Page(items=[], next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)
        )

    def create_client_push_token(self, call: Call) -> Outcome:
        # the mobile SDKs send the private create's body, to be upserted the same way
        self._as(call, "create_push_token", call.body)
        return Outcome(status=202)

    def get_client_ip_allowlist(self, call: Call) -> Outcome:
        """Klaviyo's one global list of egress ranges, the same for every account."""
        ident = self.path_id(call)
        if ident != IP_ALLOWLIST_ID:
            raise not_found("ip-allowlist", ident)
        prefixes = list(EGRESS_PREFIXES)
        token = f"{zlib.crc32(','.join(prefixes).encode()):08x}"
        attrs = {"prefixes": prefixes, "sync_token": token, "created": EGRESS_CHANGED}
        return Outcome(data=Resource("ip-allowlist", ident, attrs))
