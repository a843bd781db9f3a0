"""The in-memory account: records, identifier indexes and sorted orders.

Single-threaded by design (http/ calls the backend from one event-loop
thread). Every mutation goes through a method here so indexes stay right and
``version`` moves (segment membership caches key on it).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import filterfalse
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.cache import BoundedCache
from kbridge.emulator.backend.ids import MonotonicUlids, base62_id, event_id, event_index, ulid
from kbridge.emulator.backend.models import (
    EventColumns,
    JobRecord,
    ListRecord,
    MetricRecord,
    ProfileRecord,
    SegmentRecord,
)
from kbridge.emulator.backend.resource import Rendered

if TYPE_CHECKING:
    from kbridge.emulator.dataset import Dataset

__all__ = ["EVENT_CACHE_SIZE", "SortedIndex", "Store"]

#: served events whose serialisation is kept: ~100 full pages, ~1.1 KB each (~130 MiB
#: with bookkeeping), so a 200k-profile/2M-event account stays well within 2 GiB
EVENT_CACHE_SIZE = 100_000
#: new profile ids named at once (~0.1 µs each; unused ones are named again later)
_ID_BATCH = 256


class SortedIndex:
    """Record numbers kept sorted by ``key`` (which must be unique: end it with the seq)."""

    __slots__ = ("items", "key")

    def __init__(self, key: Callable[[int], tuple[Any, ...]], items: list[int]) -> None:
        self.key = key
        self.items = array("l", sorted(items, key=key))

    def insert(self, rec: int) -> None:
        items = self.items
        if not items or self.key(rec) > self.key(items[-1]):
            items.append(rec)  # new records mostly sort last (created, updated: now)
        else:
            insort(items, rec, key=self.key)

    def insert_many(self, recs: Iterable[int]) -> None:
        """Insert ``recs`` at once: sorted among themselves, then merged into the tail they
        reach (one key call each and one bisect, not one bisect and one move each)."""
        new = sorted(recs, key=self.key)
        if not new:
            return
        items, key = self.items, self.key
        if not items or key(new[0]) > key(items[-1]):
            items.extend(new)
            return
        at = bisect_left(items, key(new[0]), key=key)
        items[at:] = array("l", sorted([*items[at:], *new], key=key))

    def append_sorted(self, recs: list[int]) -> None:
        """Insert ``recs``, which are in this index's order already: appended when the
        first sorts after the last record (no sort, two key calls), else merged."""
        if not recs:
            return
        items, key = self.items, self.key
        if not items or key(recs[0]) > key(items[-1]):
            items.extend(recs)
        else:
            self.insert_many(recs)

    def discard_many(self, recs: set[int]) -> None:
        """Take ``recs`` out, whatever their keys now are (one pass)."""
        if recs:
            self.items = array("l", filterfalse(recs.__contains__, self.items))

    def remove(self, rec: int, old_key: tuple[Any, ...]) -> None:
        i = bisect_left(self.items, old_key, key=self.key)
        if i < len(self.items) and self.items[i] == rec:
            del self.items[i]
            return
        self.items.remove(rec)  # key drifted unexpectedly: slow path, still correct

    def __len__(self) -> int:
        return len(self.items)


class Store:
    """Everything the account holds, loaded from a :class:`Dataset`."""

    def __init__(self, data: Dataset) -> None:
        self.seed = data.seed
        self.account_id = data.account_id
        self.account = data.account
        self.version = 0
        self.profiles: list[ProfileRecord] = list(data.profiles)
        self.by_id: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.by_phone: dict[str, int] = {}
        self.by_external: dict[str, int] = {}
        for p in self.profiles:
            self._index_identifiers(p)
        seqs = [p.seq for p in self.profiles]
        self.order_id = SortedIndex(lambda s: (self.profiles[s].id,), seqs)
        self.order_created = SortedIndex(lambda s: (self.profiles[s].created, s), seqs)
        self.order_updated = SortedIndex(lambda s: (self.profiles[s].updated, s), seqs)
        self._email_order: tuple[int, array[int]] | None = None
        self._email_version = 0
        self.lists: dict[str, ListRecord] = {lst.id: lst for lst in data.lists}
        self.segments: dict[str, SegmentRecord] = {s.id: s for s in data.segments}
        self.metrics: list[MetricRecord] = list(data.metrics)
        self.metric_by_id = {m.id: m for m in self.metrics}
        self.metric_by_name = {m.name: m for m in self.metrics}
        self.events: EventColumns = data.events
        self._init_event_indexes()
        self.unique_ids: dict[tuple[int, int, str], int] = {}
        self.jobs: dict[str, JobRecord] = {}
        #: events removed by a data-privacy deletion: out of every index, and 404 by id
        self.deleted_events: set[int] = set()
        #: event index -> its serialisation, kept by http/ once served (events never
        #: change, they only go away)
        self.event_json: BoundedCache[int, Rendered] = BoundedCache(EVENT_CACHE_SIZE)
        self._counter = len(self.profiles) + len(self.lists) + len(self.segments)
        #: inside :meth:`bulk`: profiles new or changed since it began, not yet in the
        #: sorted orders (``None`` outside it)
        self._new: list[int] | None = None
        self._moved: dict[int, None] = {}
        #: every ``now`` the changes inside the bulk were made at (one, mostly)
        self._bulk_times: set[float] = set()
        self._profile_ids = MonotonicUlids(self.seed, 0xABC)
        self._ids: list[str] = []
        self._ids_now, self._ids_from = 0.0, 0

    # -- events ----------------------------------------------------------------

    def _init_event_indexes(self) -> None:
        ev = self.events
        n = len(ev)
        self.event_key: Callable[[int], tuple[float, int]] = lambda i: (ev.ts[i], i)
        if all(ev.ts[i] <= ev.ts[i + 1] for i in range(ev.generated - 1)) and n == ev.generated:
            self.event_order = array("l", range(n))
        else:
            self.event_order = array("l", sorted(range(n), key=self.event_key))
        by_metric: dict[int, array[int]] = {}
        by_profile: dict[int, array[int]] = {}
        for i in self.event_order:
            m, p = ev.metric[i], ev.profile[i]
            (by_metric.get(m) or by_metric.setdefault(m, array("l"))).append(i)
            (by_profile.get(p) or by_profile.setdefault(p, array("l"))).append(i)
        self.events_by_metric = by_metric
        self.events_by_profile = by_profile

    def add_event(
        self,
        ts: float,
        profile: int,
        metric: int,
        value: float,
        properties: dict[str, Any],
        unique_id: str | None,
    ) -> int | None:
        """Store an API event; ``None`` when ``unique_id`` repeats for this metric and profile."""
        if unique_id is not None:
            dedup = (metric, profile, unique_id)
            if dedup in self.unique_ids:
                return None
        i = self.events.append(ts, profile, metric, value)
        self.events.extra[i] = (properties, unique_id)
        if unique_id is not None:
            self.unique_ids[(metric, profile, unique_id)] = i
        insort(self.event_order, i, key=self.event_key)
        insort(self.events_by_metric.setdefault(metric, array("l")), i, key=self.event_key)
        insort(self.events_by_profile.setdefault(profile, array("l")), i, key=self.event_key)
        p = self.profiles[profile]
        if p.last_event_date is None or ts > p.last_event_date:
            p.last_event_date = ts
        self.version += 1
        return i

    def delete_event(self, i: int) -> None:
        """Mark event ``i`` deleted (404 by id) and forget its kept serialisation.

        The caller has already taken it out of the indexes.
        """
        self.deleted_events.add(i)
        self.event_json.discard(i)

    def event_id(self, i: int) -> str:
        return event_id(self.events.ts[i], i, self.seed)

    def event_by_id(self, eid: str) -> int | None:
        i = event_index(eid, self.seed)
        if i is None or i >= len(self.events) or i in self.deleted_events:
            return None
        if self.event_id(i) != eid:
            return None
        return i

    # -- profiles ----------------------------------------------------------------

    def _index_identifiers(self, p: ProfileRecord) -> None:
        self.by_id[p.id] = p.seq
        if p.email is not None:
            self.by_email[p.email.lower()] = p.seq
        if p.phone_number is not None:
            self.by_phone[p.phone_number] = p.seq
        if p.external_id is not None:
            self.by_external[p.external_id] = p.seq

    def _unindex_identifiers(self, p: ProfileRecord) -> None:
        if p.email is not None and self.by_email.get(p.email.lower()) == p.seq:
            del self.by_email[p.email.lower()]
        if p.phone_number is not None and self.by_phone.get(p.phone_number) == p.seq:
            del self.by_phone[p.phone_number]
        if p.external_id is not None and self.by_external.get(p.external_id) == p.seq:
            del self.by_external[p.external_id]

    def profile(self, profile_id: str) -> ProfileRecord | None:
        seq = self.by_id.get(profile_id)
        if seq is None:
            return None
        p = self.profiles[seq]
        return None if p.deleted else p

    def find_identifier(self, field: str, value: str) -> ProfileRecord | None:
        """The live profile holding identifier ``field`` = ``value``."""
        if field == "email":
            seq = self.by_email.get(value.lower())
        else:
            index = {
                "phone_number": self.by_phone,
                "external_id": self.by_external,
                "id": self.by_id,
            }[field]
            seq = index.get(value)
        if seq is None or self.profiles[seq].deleted:
            return None
        return self.profiles[seq]

    def identifier_holders(self, attrs: dict[str, Any]) -> list[tuple[str, str, ProfileRecord]]:
        """``(field, value, profile)`` for each identifier in ``attrs`` (email, phone_number,
        external_id, in that order) that a live profile holds: :meth:`find_identifier`
        of each, in one call (a bulk import asks 10,000 times a job)."""
        held: list[tuple[str, str, ProfileRecord]] = []
        P = self.profiles
        email, phone = attrs.get("email"), attrs.get("phone_number")
        external = attrs.get("external_id")
        seq = self.by_email.get(email.lower()) if isinstance(email, str) else None
        if seq is not None and not P[seq].deleted:
            held.append(("email", str(email), P[seq]))
        seq = self.by_phone.get(phone) if isinstance(phone, str) else None
        if seq is not None and not P[seq].deleted:
            held.append(("phone_number", str(phone), P[seq]))
        seq = self.by_external.get(external) if isinstance(external, str) else None
        if seq is not None and not P[seq].deleted:
            held.append(("external_id", str(external), P[seq]))
        return held

    def new_profile(
        self, now: float, fill: Callable[..., None] | None = None, *args: Any
    ) -> ProfileRecord:
        """A new profile created at ``now``; ``fill(p, *args)`` writes its first
        attributes, which are then indexed (as :meth:`change_profile` would, without
        its bookkeeping: a bulk import creates thousands)."""
        seq = len(self.profiles)
        # ids are named a batch at a time (a bulk import's new profiles take them in turn)
        ids, at = self._ids, seq - self._ids_from
        if self._ids_now != now or not 0 <= at < len(ids):
            ids = self._ids = self._profile_ids.batch(now, seq, _ID_BATCH)
            self._ids_now, self._ids_from, at = now, seq, 0
        p = ProfileRecord(seq, ids[at], now)
        if fill is not None:
            fill(p, *args)
            self._index_identifiers(p)
        else:
            self.by_id[p.id] = seq
        self.profiles.append(p)
        if self._new is not None:
            self._new.append(seq)
            self._bulk_times.add(now)
        else:
            self.order_id.insert(seq)
            self.order_created.insert(seq)
            self.order_updated.insert(seq)
        self._email_version += 1
        self.version += 1
        return p

    def change_profile(self, p: ProfileRecord, now: float, mutate: Callable[[], None]) -> None:
        """Apply ``mutate`` to ``p`` keeping indexes right; ``updated`` moves to ``now``."""
        old_updated = (p.updated, p.seq)
        self._unindex_identifiers(p)
        try:
            mutate()
        finally:
            self._index_identifiers(p)
        if self._new is not None:
            # placed in order_updated when the bulk ends (new profiles with the rest)
            self._moved[p.seq] = None
            self._bulk_times.add(now)
            p.updated = max(now, p.updated)
        else:
            self.order_updated.remove(p.seq, old_updated)
            p.updated = max(now, p.updated)
            self.order_updated.insert(p.seq)
        self._email_version += 1
        self.version += 1

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Many profile changes at once (a bulk import job): the sorted orders are brought
        up to date once at the end instead of at each change. Inside it, only the
        identifier indexes (``profile``, ``find_identifier``) are current."""
        if self._new is not None:
            yield
            return
        self.open_bulk()
        try:
            yield
        finally:
            self.settle()

    def open_bulk(self) -> None:
        """Begin a :meth:`bulk` that lasts until :meth:`settle` (a bulk import worked
        through in parts between requests; each request settles first)."""
        if self._new is None:
            self._new, self._moved, self._bulk_times = [], {}, set()

    def settle(self) -> None:
        """End the bulk begun by :meth:`open_bulk`, if any: the sorted orders are current."""
        new, moved, times = self._new, self._moved, self._bulk_times
        if new is None:
            return
        self._new, self._moved, self._bulk_times = None, {}, set()
        at = next(iter(times)) if len(times) == 1 else None
        fresh = set(new)
        changed = [s for s in moved if s not in fresh]
        if len(changed) > 64:
            self.order_updated.discard_many(set(changed))
        else:
            for s in changed:
                self.order_updated.items.remove(s)
        # made at one ``now``, new profiles are in (created, seq) order already, and
        # (their ids named in one millisecond) in id order; so are the changed ones
        # with them by (updated, seq), unless one was updated in the future
        P = self.profiles
        if at is not None and all(P[s].updated == at for s in changed):
            self.order_id.append_sorted(new)
            self.order_created.append_sorted(new)
            self.order_updated.append_sorted(sorted([*new, *changed]))
        else:
            self.order_id.insert_many(new)
            self.order_created.insert_many(new)
            self.order_updated.insert_many([*new, *changed])

    def email_order(self) -> array[int]:
        """Profile seqs sorted by (email, seq); rebuilt lazily after identifier changes."""
        if self._email_order is None or self._email_order[0] != self._email_version:
            key = self.email_key
            self._email_order = (
                self._email_version,
                array("l", sorted((p.seq for p in self.profiles), key=key)),
            )
        return self._email_order[1]

    def email_key(self, seq: int) -> tuple[str, int]:
        return (self.profiles[seq].email or "", seq)

    def live_profiles(self) -> Iterator[ProfileRecord]:
        return (p for p in self.profiles if not p.deleted)

    # -- ids for new objects -------------------------------------------------------

    def next_short_id(self, salt: int) -> str:
        self._counter += 1
        return base62_id(self.seed, salt, self._counter)

    def next_ulid(self, now: float) -> str:
        self._counter += 1
        return ulid(now, self.seed, self._counter, 0x70B)

    def next_seq(self) -> int:
        self._counter += 1
        return self._counter

    def touch(self) -> None:
        """Invalidate derived caches (segment membership) after a change."""
        self.version += 1
