"""ULIDs: the table-driven encoder against the definition (Crockford base32, 26 digits)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from kbridge.emulator.backend.events import _uuid
from kbridge.emulator.backend.ids import (
    _encode128,
    event_id,
    event_ids,
    event_index,
    iso,
    isos,
    ulid,
)

pytestmark = pytest.mark.unit

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _by_definition(ms: int, rand: int) -> str:
    value = (ms % (1 << 48)) << 80 | rand % (1 << 80)
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append(CROCKFORD[digit])
    return "".join(reversed(digits))


@pytest.mark.parametrize(
    ("ms", "rand"),
    [(0, 0), ((1 << 48) - 1, (1 << 80) - 1), (1 << 47, 1), (1_733_325_008_000, 0xDEADBEEF)],
)
def test_edges_match_the_definition(ms: int, rand: int) -> None:
    assert _encode128(ms, rand) == _by_definition(ms, rand)


def test_random_values_match_the_definition_and_out_of_range_bits_are_dropped() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        ms, rand = rng.getrandbits(52), rng.getrandbits(84)
        assert _encode128(ms, rand) == _by_definition(ms, rand)


def test_ids_keep_their_shape_and_event_ids_their_index() -> None:
    assert len(ulid(1_733_325_008.0, 1, 2)) == 26
    eid = event_id(1_733_325_008.0, 123_456, 42)
    assert len(eid) == 26
    assert set(eid) <= set(CROCKFORD)
    assert event_index(eid, 42) == 123_456


def test_event_ids_of_a_page_are_event_id_each() -> None:
    rng = random.Random(3)
    ts = [-5.0, -0.0004, 0.0, 0.0005, 1_733_325_008.123, 8.9e12]
    ts += [rng.uniform(0, 4e9) for _ in range(3000)] + [
        float(rng.randrange(9**12)) for _ in range(3000)
    ]
    keys = [*range(len(ts)), len(ts) - 1, 0]
    for salt in (0, 42, rng.getrandbits(64)):
        assert event_ids(ts, keys, salt) == [event_id(ts[i], i, salt).encode() for i in keys]
    # the index part: large indexes (up to 40 bits) against the reference encoder
    far = {rng.getrandbits(40): rng.uniform(0, 4e9) for _ in range(2000)}
    assert event_ids(far, list(far), 9) == [event_id(t, i, 9).encode() for i, t in far.items()]


def test_isos_of_a_page_are_iso_each() -> None:
    rng = random.Random(13)
    ts = [0.0, 3599.0, 3600.0, 253_402_300_799.0, -1.0, -0.5, 1_733_325_008.25]
    ts += [float(rng.randrange(0, 4_102_444_800)) for _ in range(3000)]
    ts += [rng.uniform(-2e9, 4e9) for _ in range(3000)]
    keys = list(range(len(ts)))[::-1]
    assert isos(ts, keys) == [(iso(ts[i]) or "").encode() for i in keys]


@pytest.mark.parametrize(
    "ts",
    [0.0, 59.0, 3599.0, 3600.0, 86399.0, 951_782_400.0, 1_733_328_145.0, 253_402_300_799.0],
)
def test_iso_of_whole_seconds_matches_isoformat(ts: float) -> None:
    assert iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat()


def test_iso_matches_isoformat_for_random_whole_and_fractional_times() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        whole = float(rng.randrange(0, 4_102_444_800))
        fractional = rng.uniform(-2e9, 4e9)
        for ts in (whole, fractional):
            assert iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat()
    assert iso(None) is None


def test_iso_rejects_what_datetime_rejects() -> None:
    with pytest.raises(ValueError, match="NaN"):
        iso(float("nan"))
    with pytest.raises(OverflowError):
        iso(float("inf"))


def _uuid_by_definition(seed: int, i: int) -> str:
    a = ((i + 1) * 0x9E3779B97F4A7C15 ^ seed * 0xBF58476D1CE4E5B9) & (1 << 64) - 1
    h = f"{a:016x}{(a * 0xD6E8FEB86659FD93 + i) & (1 << 64) - 1:016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def test_event_uuid_is_the_two_hashes_in_hex_with_version_and_variant() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        seed, i = rng.getrandbits(64), rng.getrandbits(40)
        assert _uuid(seed, i) == _uuid_by_definition(seed, i)
    assert _uuid(0, 0)[14] == "4"
    assert _uuid(0, 0)[19] == "a"
