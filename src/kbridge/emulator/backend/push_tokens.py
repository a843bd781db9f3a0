"""Push tokens: a profile's mobile devices (create, list, get, delete, and the links
between tokens and profiles).

Creating is an upsert, as in Klaviyo: the same token again updates its record (and
may move it to another profile) instead of adding one; the profile is found by id or
identifier, or created. A token of a deleted profile is gone with it. The create
answers 202 with no body, so a client reads the token back through the listing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import TagBackend, attributes_of, data_of, not_found, page_of
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.events import resolve_profile
from kbridge.emulator.backend.ids import iso, mix64, ulid
from kbridge.emulator.backend.profiles import profile_resource
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context
    from kbridge.emulator.backend.models import ProfileRecord

__all__ = ["PushTokenRecord", "PushTokensBackend"]

TYPE = "push-token"
_PTR = "/data/attributes"
_PLATFORMS = ("android", "ios")
_VENDORS = ("apns", "fcm")
_ENABLEMENT = ("AUTHORIZED", "DENIED", "NOT_DETERMINED", "PROVISIONAL", "UNAUTHORIZED")
_BACKGROUND = ("AVAILABLE", "DENIED", "RESTRICTED")
#: profiles of a generated account that have a device
_SEEDED = 3


@dataclass(slots=True)
class PushTokenRecord:
    seq: int
    id: str
    token: str
    platform: str
    vendor: str
    enablement_status: str
    background: str
    metadata: dict[str, Any] | None
    created: float
    profile_id: str


def _choice(attrs: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = attrs.get(name)
    if value is None and default is not None:
        return default
    if value not in allowed:
        raise InvalidError(
            f"{name} must be one of {', '.join(allowed)}, not {value!r}", pointer=f"{_PTR}/{name}"
        )
    return str(value)


class PushTokensBackend(TagBackend):
    operations = frozenset(
        {
            "get_push_tokens",
            "create_push_token",
            "get_push_token",
            "delete_push_token",
            "get_profile_for_push_token",
            "get_profile_id_for_push_token",
            "get_push_tokens_for_profile",
            "get_push_token_ids_for_profile",
            "unregister_client_push_token",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.tokens: dict[str, PushTokenRecord] = {}
        # a generated account has a mobile app: its first few profiles carry a device
        for n, p in enumerate(ctx.store.profiles[:_SEEDED]):
            ios = n % 2 == 0
            self._add(
                f"{mix64(n, 7919):016x}{mix64(n, 104729):016x}",
                "ios" if ios else "android",
                "apns" if ios else "fcm",
                "AUTHORIZED",
                "AVAILABLE",
                None,
                p.id,
            )

    @staticmethod
    def resource(t: PushTokenRecord) -> Resource:
        attrs = {
            "created": iso(t.created),
            "token": t.token,
            "enablement_status": t.enablement_status,
            "platform": t.platform,
            "vendor": t.vendor,
            "background": t.background,
            "recorded_date": iso(t.created),
            "metadata": t.metadata,
        }
        return Resource(TYPE, t.id, attrs, relationships={"profile": ("profile", t.profile_id)})

    def _live(self) -> list[PushTokenRecord]:
        return [t for t in self.tokens.values() if self.store.profile(t.profile_id) is not None]

    def _get(self, call: Call) -> PushTokenRecord:
        tid = self.path_id(call)
        t = self.tokens.get(tid)
        if t is None or self.store.profile(t.profile_id) is None:
            raise not_found(TYPE, tid)
        return t

    def _profile(self, call: Call) -> ProfileRecord:
        pid = self.path_id(call)
        p = self.store.profile(pid)
        if p is None:
            raise not_found("profile", pid)
        return p

    def _page(
        self, call: Call, tokens: list[PushTokenRecord], *, ids_only: bool = False
    ) -> Outcome:
        by_seq = {t.seq: t for t in tokens}

        def key(s: int) -> tuple[Any, ...]:
            return (s,)

        getters: dict[str, Callable[[int], Any]] = {
            "id": lambda s: by_seq[s].id,
            "profile.id": lambda s: by_seq[s].profile_id,
            "enablement_status": lambda s: by_seq[s].enablement_status,
            "platform": lambda s: by_seq[s].platform,
        }
        page = page_of(call, sorted(by_seq), key, getters)
        items = [
            Resource(TYPE, by_seq[s].id, {}) if ids_only else self.resource(by_seq[s])
            for s in page.items
        ]
        included: list[Resource] = []
        if not ids_only and "profile" in call.query.include:
            for pid in dict.fromkeys(by_seq[s].profile_id for s in page.items):
                p = self.store.profile(pid)
                if p is not None:
                    included.append(profile_resource(p, None))
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
            included=included,
            identifiers_only=ids_only,
        )

    # -- reads -------------------------------------------------------------------------

    def get_push_tokens(self, call: Call) -> Outcome:
        return self._page(call, self._live())

    def get_push_token(self, call: Call) -> Outcome:
        t = self._get(call)
        included: list[Resource] = []
        p = self.store.profile(t.profile_id)
        if "profile" in call.query.include and p is not None:
            included = [profile_resource(p, None)]
        return Outcome(data=self.resource(t), included=included)

    def get_profile_for_push_token(self, call: Call) -> Outcome:
        t = self._get(call)
        p = self.store.profile(t.profile_id)
        assert p is not None  # _get answers only tokens of live profiles
        return Outcome(data=profile_resource(p, call.query))

    def get_profile_id_for_push_token(self, call: Call) -> Outcome:
        t = self._get(call)
        return Outcome(data=Resource("profile", t.profile_id, {}), identifiers_only=True)

    def get_push_tokens_for_profile(self, call: Call) -> Outcome:
        p = self._profile(call)
        return self._page(call, [t for t in self.tokens.values() if t.profile_id == p.id])

    def get_push_token_ids_for_profile(self, call: Call) -> Outcome:
        p = self._profile(call)
        mine = [t for t in self.tokens.values() if t.profile_id == p.id]
        return self._page(call, mine, ids_only=True)

    # -- writes ------------------------------------------------------------------------

    def create_push_token(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, TYPE))
        token = attrs.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidError("token must be a non-empty string", pointer=f"{_PTR}/token")
        platform = _choice(attrs, "platform", _PLATFORMS, None)
        vendor = _choice(attrs, "vendor", _VENDORS, None)
        enablement = _choice(attrs, "enablement_status", _ENABLEMENT, "AUTHORIZED")
        background = _choice(attrs, "background", _BACKGROUND, "AVAILABLE")
        metadata = attrs.get("device_metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidError(
                "device_metadata must be an object", pointer=f"{_PTR}/device_metadata"
            )
        holder = attrs.get("profile")
        if not isinstance(holder, dict) or "data" not in holder:
            raise InvalidError("profile.data is required", pointer=f"{_PTR}/profile")
        profile = resolve_profile(self.ctx, holder["data"], f"{_PTR}/profile/data")
        existing = next((t for t in self.tokens.values() if t.token == token), None)
        if existing is not None:
            existing.platform, existing.vendor = platform, vendor
            existing.enablement_status, existing.background = enablement, background
            existing.metadata, existing.profile_id = metadata, profile.id
            return Outcome(status=202)
        self._add(token, platform, vendor, enablement, background, metadata, profile.id)
        return Outcome(status=202)

    def _add(
        self,
        token: str,
        platform: str,
        vendor: str,
        enablement: str,
        background: str,
        metadata: dict[str, Any] | None,
        profile_id: str,
    ) -> None:
        now = self.ctx.now()
        seq = self.store.next_seq()
        record = PushTokenRecord(
            seq=seq,
            id=ulid(now, seq, len(self.tokens)),
            token=token,
            platform=platform,
            vendor=vendor,
            enablement_status=enablement,
            background=background,
            metadata=metadata,
            created=now,
            profile_id=profile_id,
        )
        self.tokens[record.id] = record

    def delete_push_token(self, call: Call) -> Outcome:
        t = self._get(call)
        del self.tokens[t.id]
        return Outcome(status=204)

    def unregister_client_push_token(self, call: Call) -> Outcome:
        """An app's sign-out: the profile's token (same platform and, if given, vendor) is
        dropped, so nothing is pushed to the device any more.

        A token the profile does not hold is already unregistered, and a client endpoint
        does not tell a browser about other people's devices: still 202.
        """
        attrs = attributes_of(data_of(call.body, "push-token-unregister"))
        token = attrs.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidError("token must be a non-empty string", pointer=f"{_PTR}/token")
        platform = _choice(attrs, "platform", _PLATFORMS, None)
        vendor = attrs.get("vendor")
        if vendor is not None:
            vendor = _choice(attrs, "vendor", _VENDORS, None)
        holder = attrs.get("profile")
        if not isinstance(holder, dict) or not isinstance(holder.get("data"), dict):
            raise InvalidError("profile.data is required", pointer=f"{_PTR}/profile")
        profile = resolve_profile(self.ctx, holder["data"], f"{_PTR}/profile/data")
        for t in list(self.tokens.values()):
            if (t.token, t.platform, t.profile_id) == (token, platform, profile.id) and (
                vendor is None or t.vendor == vendor
            ):
                del self.tokens[t.id]
        return Outcome(status=202)
