"""The pure parts of a push: scope planning, consent reading, job packing, error fields."""

from __future__ import annotations

import orjson
import pytest

from kbridge.connections.scopes import plan_scopes
from kbridge.push import JobLimits, consent_of
from kbridge.push._engine import Packer, encode, field_of, payload_hash

pytestmark = pytest.mark.unit


def test_a_key_planned_for_push_can_import_subscribe_and_send_events() -> None:
    scopes = set(plan_scopes(["push"]).scopes)
    assert {"profiles:write", "lists:write", "events:write", "subscriptions:write"} <= scopes


@pytest.mark.parametrize(
    ("value", "consent"),
    [
        (True, True), ("YES", True), (" 1 ", True), ("subscribed", True),
        (False, False), ("no", False), ("0", False),
        (None, None), ("", None), ("maybe", None), (2, None),
    ],
)  # fmt: skip
def test_only_a_recorded_yes_or_no_is_consent(value: object, consent: bool | None) -> None:
    assert consent_of(value) is consent


def test_jobs_never_exceed_the_byte_limit_with_their_envelope() -> None:
    limits = JobLimits(max_rows=10_000, max_bytes=1_000)
    packer = Packer(limits, envelope=60)
    bodies = []
    for i in range(100):
        encoded = encode({"type": "profile", "attributes": {"email": f"p{i}@example.com"}})
        if not packer.fits(encoded):
            bodies.append(packer.take()[0])
        packer.add(encoded, f"p{i}", payload_hash(encoded))
    bodies.append(packer.take()[0])
    sizes = [60 + len(orjson.dumps(b)) for b in bodies]
    assert max(sizes) <= 1_000
    assert sum(len(orjson.loads(orjson.dumps(b))) for b in bodies) == 100


def test_equal_payloads_hash_alike_whatever_the_key_order() -> None:
    a = encode({"email": "x@example.com", "properties": {"a": 1, "b": 2}})
    b = encode({"properties": {"b": 2, "a": 1}, "email": "x@example.com"})
    assert payload_hash(a) == payload_hash(b)
    assert payload_hash(a) != payload_hash(encode({"email": "x@example.com"}))


def test_the_field_an_import_error_names() -> None:
    base = "/data/attributes/profiles/data/"
    assert field_of(base + "3/attributes/email", base) == "email"
    assert field_of(base + "3/attributes/properties/plan", base) == "properties.plan"
    assert field_of(base + "3", base) == "profile"


def test_duckdb_writes_the_payload_text_whose_hashes_push_state_keeps() -> None:
    # the hashes already in push_state were taken over exactly this text: a payload
    # written any other way would resend every row once
    from kbridge.push._sqlpath import _payload_sql
    from kbridge.warehouse import open_warehouse

    wh = open_warehouse("duckdb:///:memory:")
    wh.query(
        "CREATE TEMP TABLE t AS SELECT ' a@x.com ' AS email, 'Ann' AS first_name, "
        'DATE \'2026-01-02\' AS d, 1.5::DECIMAL(10, 2) AS "de""c", NULL::VARCHAR AS gone, '
        "[1, 2] AS l, {'k': 'v'} AS s"
    )
    _, payload = _payload_sql(["first_name"], ['de"c', "d", "gone", "l", "s"], "email")
    got = wh.query(f"SELECT {payload} FROM t")  # noqa: S608 (our own SQL)
    wh.close()
    assert got[0][0] == (
        '{"type":"profile","attributes":{"first_name":"Ann","properties":{"de\\"c":1.5,'
        '"d":"2026-01-02","gone":null,"l":[1,2],"s":{"k":"v"}},"email":"a@x.com"}}'
    )
