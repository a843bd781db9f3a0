"""Identifiers and timestamps in Klaviyo's shapes, derived deterministically.

Profiles, jobs and events carry 26-character ULIDs (48-bit millisecond time
in Crockford base32, then 80 bits); lists, segments and metrics carry
6-character base62 ids. Everything here is a pure function of its inputs so
the same seed always yields the same account, and an event id can be turned
back into the event's index without a lookup table (2M events would make one
costly).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

__all__ = [
    "MonotonicUlids",
    "base62_id",
    "event_id",
    "event_ids",
    "event_index",
    "iso",
    "isos",
    "mix64",
    "parse_iso",
    "ulid",
    "unit_float",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_VALUE = {c: i for i, c in enumerate(_CROCKFORD)}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MASK64 = (1 << 64) - 1
_MASK40 = (1 << 40) - 1


@lru_cache(maxsize=64)
def _cached_mask(salt: int) -> int:
    return mix64(salt, 0xE7E27) & _MASK40


def mix64(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): cheap, stable across runs.

    Python's ``hash`` is salted per process for strings, and ``random.Random``
    costs microseconds to seed; this is what lazily derived data is keyed on.
    """
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h


def _mix_on(h: int, p: int) -> int:
    """One more part folded into a :func:`mix64` result."""
    h = (h ^ (p & _MASK64)) & _MASK64
    h = (h + 0x9E3779B97F4A7C15) & _MASK64
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
    return h ^ (h >> 31)


def unit_float(*parts: int) -> float:
    """A deterministic float in [0, 1) from integers."""
    return (mix64(*parts) >> 11) / float(1 << 53)


#: every 10-bit value as two Crockford characters, and every 15-bit value as three: a
#: ULID (130 bits, the top two zero) is one pair and eight triples, 9 lookups, not 26
#: divisions (ids are on the path of every event served)
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_TRIPLES = tuple(a + b + c for a in _CROCKFORD for b in _CROCKFORD for c in _CROCKFORD)
_M15 = (1 << 15) - 1


def _encode128(ms: int, rand: int) -> str:
    v = (ms & ((1 << 48) - 1)) << 80 | (rand & ((1 << 80) - 1))
    t = _TRIPLES
    return "".join(
        (
            _PAIRS[v >> 120],
            t[(v >> 105) & _M15],
            t[(v >> 90) & _M15],
            t[(v >> 75) & _M15],
            t[(v >> 60) & _M15],
            t[(v >> 45) & _M15],
            t[(v >> 30) & _M15],
            t[(v >> 15) & _M15],
            t[v & _M15],
        )
    )


def ulid(ts: float, *entropy: int) -> str:
    """A ULID: time part ``ts`` (epoch seconds), randomness hashed from ``entropy``."""
    first = mix64(*entropy)
    # mix64 folds its parts in turn: mix64(*entropy, 1) goes on from mix64(*entropy)
    rand = first << 16 | (_mix_on(first, 1) & 0xFFFF)
    return _encode128(max(0, int(ts * 1000)), rand)


@lru_cache(maxsize=4)
def _time_part(ms: int) -> str:
    return _encode128(ms, 0)[:10]


class MonotonicUlids:
    """ULIDs for counters ``n`` (0 <= n < 2**40) at times ``ts``, keyed by seed and salt.

    The time part is ``ts``; the 80 bits after it start at a value drawn for (seed,
    salt, millisecond) and go up with ``n`` (ULID's monotonic mode). So ids made in
    one millisecond sort as their counters do: a bulk import's new profiles join the
    id order at its end (no sort), and naming one costs a fifth of :func:`ulid`'s
    integer mixing (~8 µs on a slow machine, 10,000 times a job).
    """

    __slots__ = ("_base", "_high", "_key", "_ms", "_prefix")

    def __init__(self, seed: int, salt: int) -> None:
        self._key = mix64(seed, salt).to_bytes(8, "little")
        self._ms = self._high = -1
        self._base = 0
        self._prefix = ""

    def __call__(self, ts: float, n: int) -> str:
        ms = max(0, int(ts * 1000)) & _MASK48
        if ms != self._ms:
            drawn = hashlib.blake2b(ms.to_bytes(8, "little"), digest_size=10, key=self._key)
            # 79 bits: adding a 40-bit counter never carries out of the 80
            self._ms, self._high = ms, -1
            self._base = int.from_bytes(drawn.digest(), "big") >> 1
        r = self._base + n
        t = _TRIPLES
        if r >> 30 != self._high:
            # the first 20 characters change only when the low 30 bits carry
            self._high = r >> 30
            self._prefix = "".join(
                (
                    _time_part(ms),
                    _CROCKFORD[r >> 75],
                    t[(r >> 60) & _M15],
                    t[(r >> 45) & _M15],
                    t[(r >> 30) & _M15],
                )
            )
        return self._prefix + t[(r >> 15) & _M15] + t[r & _M15]

    def batch(self, ts: float, n: int, count: int) -> list[str]:
        """``[self(ts, n), self(ts, n + 1), …]``, ``count`` of them (a tenth of the cost:
        consecutive ids differ in their last three characters, 32,768 at a time)."""
        out: list[str] = []
        while count > 0:
            first = self(ts, n)
            low = (self._base + n) & _M15
            take = min(count, _M15 + 1 - low)
            head = first[:-3]
            out.extend([head + last for last in _TRIPLES[low : low + take]])
            n += take
            count -= take
        return out


def _salt_mask(salt: int) -> int:
    return _cached_mask(salt)


def event_id(ts: float, index: int, salt: int) -> str:
    """An event's ULID: time, 40 scrambled bits, then the index masked by the salt (reversible)."""
    high = ((index + 1) * 0x9E3779B97F4A7C15 ^ salt) & _MASK40
    return _encode128(max(0, int(ts * 1000)), high << 40 | (index ^ _cached_mask(salt)))


_PAIRS_B = tuple(p.encode() for p in _PAIRS)
_TRIPLES_B = tuple(t.encode() for t in _TRIPLES)
_MASK48 = (1 << 48) - 1


def event_ids(ts: Sequence[float], keys: Iterable[int], salt: int) -> list[bytes]:
    """:func:`event_id` of each event index in ``keys`` (times from ``ts``), ASCII bytes.

    The same ids in one loop with everything bound once: a cold page of 1000
    events spent a tenth of its time in per-event calls here. The 26 characters
    split at 5-bit boundaries into the time (10) and the two 40-bit halves of
    the randomness (8 each), so each is looked up from machine-sized integers
    instead of shifting one 128-bit one. (Indexes stay below 2**40, as
    :func:`event_index` assumes.)
    """
    mask, golden = _cached_mask(salt), 0x9E3779B97F4A7C15
    pairs, t, m15, m10, join = _PAIRS_B, _TRIPLES_B, _M15, 0x3FF, b"".join
    out: list[bytes] = []
    append = out.append
    for i in keys:
        ms = int(ts[i] * 1000) & _MASK48 if ts[i] >= 0 else 0
        hi = ((i + 1) * golden ^ salt) & _MASK40
        lo = (i ^ mask) & _MASK40
        append(
            join(
                (
                    pairs[ms >> 40],
                    t[(ms >> 25) & m15],
                    t[(ms >> 10) & m15],
                    pairs[ms & m10],
                    t[hi >> 25],
                    t[(hi >> 10) & m15],
                    pairs[hi & m10],
                    t[lo >> 25],
                    t[(lo >> 10) & m15],
                    pairs[lo & m10],
                )
            )
        )
    return out


def event_index(event_id_: str, salt: int) -> int | None:
    """The index encoded in an id made by :func:`event_id`, or ``None`` if malformed.

    The caller must still check that ``event_id(...)`` of that index gives the
    same string (the time and scrambled bits make a forged id fail that check).
    """
    if len(event_id_) != 26:
        return None
    value = 0
    for ch in event_id_[18:]:
        digit = _CROCKFORD_VALUE.get(ch)
        if digit is None:
            return None
        value = value << 5 | digit
    return (value ^ _salt_mask(salt)) & _MASK40


def base62_id(*entropy: int, length: int = 6) -> str:
    """A short base62 id (lists, segments, metrics, public keys) hashed from ``entropy``."""
    value = mix64(*entropy)
    out = []
    for _ in range(length):
        value, digit = divmod(value, 62)
        out.append(_BASE62[digit])
    return "".join(out)


#: "MM:SS+00:00" for every second of an hour
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}+00:00" for m in range(60) for s in range(60))
#: whole seconds from the epoch to year 10000 (beyond it, datetime refuses)
_MAX_WHOLE = 253_402_300_800


@lru_cache(maxsize=1 << 17)
def _hour_prefix(hour: int) -> str:
    """``YYYY-MM-DDTHH:`` of the hour ``hour`` hours after the epoch (15 years fit the cache)."""
    return datetime.fromtimestamp(hour * 3600, UTC).isoformat()[:14]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 with ``+00:00`` (Klaviyo's response style); ``None`` stays."""
    if ts is None:
        return None
    # (comparisons first: NaN and infinities fail them and go to datetime's own errors)
    if 0 <= ts < _MAX_WHOLE and (whole := int(ts)) == ts:
        # Whole seconds (every generated event): a kept hour and a table lookup, the
        # same text as isoformat() at a fraction of its cost on the events hot path.
        return _hour_prefix(whole // 3600) + _MINUTE_SECOND[whole % 3600]
    return datetime.fromtimestamp(ts, UTC).isoformat()


_MINUTE_SECOND_B = tuple(text.encode() for text in _MINUTE_SECOND)


def isos(ts: Sequence[float], keys: Iterable[int]) -> list[bytes]:
    """:func:`iso` of ``ts[i]`` for each ``i`` in ``keys``, ASCII bytes (a page's worth)."""
    hours: dict[int, bytes] = {}
    minute_second = _MINUTE_SECOND_B
    out: list[bytes] = []
    append = out.append
    for i in keys:
        t = ts[i]
        if 0 <= t < _MAX_WHOLE and (whole := int(t)) == t:
            hour, second = divmod(whole, 3600)
            head = hours.get(hour)
            if head is None:
                head = hours[hour] = _hour_prefix(hour).encode()
            append(head + minute_second[second])
        else:
            append(datetime.fromtimestamp(t, UTC).isoformat().encode())
    return out


def parse_iso(text: str) -> float:
    """ISO 8601 (``Z`` or offset; a naive time is taken as UTC) to epoch seconds.

    Raises ``ValueError`` on anything else.
    """
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
