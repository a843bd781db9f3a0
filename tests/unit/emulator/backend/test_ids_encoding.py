"""ULIDs: the table-driven encoder against the definition (Crockford base32, 26 digits)."""

from __future__ import annotations

import random

import pytest

from kbridge.emulator.backend.ids import _encode128, event_id, event_index, ulid

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
