"""Profile merge: ``POST /api/profile-merge`` folds one source profile into a destination.

As in Klaviyo, the source's events, list memberships and push tokens move to the destination, the
destination keeps every value it has and takes the source's where it has none
(identifiers included, once the source no longer holds them), and the source is
deleted. Klaviyo queues the merge; the emulator applies it before answering, so a
client that reads after the 201 sees it done, as it would a moment later in Klaviyo.
"""

from __future__ import annotations

from bisect import insort
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import TagBackend, data_of
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.privacy import delete_profile
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context
    from kbridge.emulator.backend.models import ProfileRecord
    from kbridge.emulator.backend.push_tokens import PushTokensBackend

__all__ = ["ProfileMergeBackend"]

#: the destination's values win; these are taken from the source only where it has none
_FILLED = (
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "title",
    "image",
    "locale",
    "location",
)
_SOURCES = "/data/relationships/profiles/data"


class ProfileMergeBackend(TagBackend):
    operations = frozenset({"merge_profiles"})

    def __init__(self, ctx: Context, push_tokens: PushTokensBackend) -> None:
        super().__init__(ctx)
        self.push_tokens = push_tokens

    def merge_profiles(self, call: Call) -> Outcome:
        data = data_of(call.body, "profile-merge")
        store = self.store
        dest = store.profile(str(data.get("id") or ""))
        if dest is None:
            raise InvalidError(f"profile {data.get('id')!r} does not exist", pointer="/data/id")
        rels = data.get("relationships")
        holder = rels.get("profiles") if isinstance(rels, dict) else None
        rows = holder.get("data") if isinstance(holder, dict) else None
        if not isinstance(rows, list) or len(rows) != 1:
            raise InvalidError("exactly one source profile is merged at a time", pointer=_SOURCES)
        row = rows[0]
        if not isinstance(row, dict) or row.get("type") != "profile":
            raise InvalidError("the source must be a profile", pointer=f"{_SOURCES}/0/type")
        source = store.profile(str(row.get("id") or ""))
        if source is None:
            raise InvalidError(
                f"profile {row.get('id')!r} does not exist", pointer=f"{_SOURCES}/0/id"
            )
        if source.id == dest.id:
            raise InvalidError("a profile cannot be merged into itself", pointer=f"{_SOURCES}/0/id")
        self._merge(source, dest)
        return Outcome(data=Resource("profile", dest.id, {}), status=201)

    def _merge(self, source: ProfileRecord, dest: ProfileRecord) -> None:
        store, now = self.store, self.ctx.now()
        kept = {name: getattr(source, name) for name in _FILLED}
        properties = dict(source.properties or {})
        ev = store.events
        moved = store.events_by_profile.pop(source.seq, None)
        if moved is not None:
            mine = store.events_by_profile.setdefault(dest.seq, type(moved)("l"))
            for i in moved:
                ev.profile[i] = dest.seq
                insort(mine, i, key=store.event_key)
                store.event_json.discard(i)
                extra: Any = ev.extra.get(i)
                unique_id = extra[1] if extra is not None else None
                if unique_id is not None:
                    key = (ev.metric[i], source.seq, unique_id)
                    store.unique_ids.pop(key, None)
                    store.unique_ids.setdefault((ev.metric[i], dest.seq, unique_id), i)
        for lst in store.lists.values():
            joined = lst.members.get(source.seq)
            if joined is not None:
                lst.members.setdefault(dest.seq, joined)
        for token in self.push_tokens.tokens.values():
            if token.profile_id == source.id:
                token.profile_id = dest.id
        last = source.last_event_date
        delete_profile(self.ctx, source)  # frees its identifiers for the destination

        def fill() -> None:
            for name, value in kept.items():
                if value is not None and getattr(dest, name) is None:
                    setattr(dest, name, value)
            dest.properties = {**properties, **(dest.properties or {})}
            if last is not None and (dest.last_event_date is None or last > dest.last_event_date):
                dest.last_event_date = last

        store.change_profile(dest, now, fill)
        store.touch()
