from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing import Resource as SchemaResource
from referencing.jsonschema import DRAFT202012

from kbridge import catalog
from kbridge.core.clock import ManualClock
from kbridge.emulator.backend import EmulatorBackend
from kbridge.emulator.backend.call import Call
from kbridge.emulator.backend.ids import parse_iso
from kbridge.emulator.backend.vocabulary import M_ORDER
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.datagen import Dataset, generate
from kbridge.emulator.query import Page, Query
from kbridge.emulator.simclock import SimClock

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPEC = Path(__file__).resolve().parents[3] / ".." / "shared" / "klaviyo-openapi" / "stable.json"


def _fingerprint(d: Dataset) -> tuple[Any, ...]:
    return (
        [(p.id, p.email, p.phone_number, p.properties, p.predictive) for p in d.profiles],
        bytes(d.events.ts), bytes(d.events.profile), bytes(d.events.metric),
        bytes(d.events.value), bytes(d.events.aux),
        [(lst.id, lst.members) for lst in d.lists],
        [(s.id, s.definition) for s in d.segments],
        d.truth,
    )  # fmt: skip


def test_same_seed_same_account_different_seed_different() -> None:
    a = generate(3, 200, 2000, NOW)
    b = generate(3, 200, 2000, NOW)
    c = generate(4, 200, 2000, NOW)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)


def test_shape_and_model_invariants() -> None:
    d = generate(11, 2000, 20000, NOW)
    assert abs(len(d.events) - 20000) < 20000 * 0.05
    emails = [p.email for p in d.profiles]
    assert len(set(emails)) == len(emails)
    assert all(p.phone_number is None or p.phone_number.startswith("+") for p in d.profiles)
    ts = d.events.ts
    assert all(ts[i] <= ts[i + 1] for i in range(len(ts) - 1))
    assert all(d.now - 731 * 86400 <= p.created <= d.now for p in d.profiles)
    subscribed = sum(p.email_consent == "SUBSCRIBED" for p in d.profiles) / len(d.profiles)
    assert 0.45 < subscribed < 0.7
    truth = d.truth
    assert truth["aggregates"]["events"] == len(d.events)
    assert sum(truth["aggregates"]["profiles_per_stage"].values()) == len(d.profiles)
    # churned profiles never order after their churn time
    churn = {i: truth["profiles"][p.id]["churn_time"] for i, p in enumerate(d.profiles)}
    for k in range(len(ts)):
        if d.events.metric[k] == M_ORDER and churn[d.events.profile[k]] is not None:
            assert ts[k] <= parse_iso(churn[d.events.profile[k]])
    revenue = sum(v["revenue"] for v in truth["profiles"].values())
    assert revenue == pytest.approx(truth["aggregates"]["revenue_total"], abs=1.0)


_INT_OR_NUMBER = [{"type": "integer"}, {"type": "number"}]


def _nullable_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``nullable`` becomes a null alternative.

    The spec also writes ``oneOf: [integer, number]``, which no integer can
    satisfy (it matches both); that one becomes ``anyOf``.
    """
    if isinstance(node, list):
        return [_nullable_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if out.get("oneOf") == _INT_OR_NUMBER:
        out["anyOf"] = out.pop("oneOf")
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


@cache
def _spec() -> tuple[dict[str, Any], Registry[Any]]:
    import json

    doc = _nullable_to_jsonschema(json.loads(SPEC.read_text()))
    registry: Registry[Any] = Registry().with_resource(
        "urn:spec", SchemaResource.from_contents(doc, default_specification=DRAFT202012)
    )
    return doc, registry


def _validate(attrs: dict[str, Any], component: str) -> None:
    doc, registry = _spec()
    schema = dict(doc["components"]["schemas"][component]["properties"]["attributes"])
    schema = _rebase(schema)
    schema["additionalProperties"] = False
    Draft202012Validator(schema, registry=registry).validate(attrs)


def _rebase(node: Any) -> Any:
    if isinstance(node, list):
        return [_rebase(x) for x in node]
    if not isinstance(node, dict):
        return node
    return {k: ("urn:spec" + v if k == "$ref" else _rebase(v)) for k, v in node.items()}


@pytest.fixture(scope="module")
def backend() -> EmulatorBackend:
    return EmulatorBackend(EmulatorConfig(seed=5, profiles=400, events=4000),
                           SimClock(ManualClock(NOW)))  # fmt: skip


def _items(b: EmulatorBackend, op: str, query: Query | None = None, **path: str) -> list[Any]:
    out = b.dispatch(Call(catalog.get(op), dict(path), query or Query())).data
    if isinstance(out, Page):
        return out.items
    return out if isinstance(out, list) else [out]


def test_generated_resources_match_the_spec_schemas(backend: EmulatorBackend) -> None:
    extra = {"profile": ("subscriptions", "predictive_analytics")}
    for r in _items(backend, "get_profiles", Query(page_size=100, additional_fields=extra)):
        attrs = dict(r.attributes)
        subs, predictive = attrs.pop("subscriptions"), attrs.pop("predictive_analytics")
        _validate(attrs, "ProfileResponseObjectResource")
        _, registry = _spec()
        for value, name in ((subs, "Subscriptions"), (predictive, "PredictiveAnalytics")):
            schema = {"$ref": f"urn:spec#/components/schemas/{name}"}
            Draft202012Validator(schema, registry=registry).validate(value)
    for r in _items(backend, "get_lists"):
        _validate(r.attributes, "ListRetrieveResponseObjectResource")
        for m in _items(backend, "get_profiles_for_list", Query(page_size=20), id=r.id):
            _validate(m.attributes, "ListMemberResponseObjectResource")
    for r in _items(backend, "get_segments"):
        _validate(r.attributes, "SegmentRetrieveResponseObjectResource")
        for m in _items(backend, "get_profiles_for_segment", Query(page_size=20), id=r.id):
            _validate(m.attributes, "SegmentMemberResponseObjectResource")
    for r in _items(backend, "get_metrics"):
        _validate(r.attributes, "MetricResponseObjectResource")
    for r in _items(backend, "get_events", Query(page_size=1000)):
        _validate(r.attributes, "EventResponseObjectResource")
    for r in _items(backend, "get_accounts"):
        _validate(r.attributes, "AccountResponseObjectResource")


def test_every_generated_segment_is_evaluable_and_non_trivial(backend: EmulatorBackend) -> None:
    sizes = {
        s.name: len(_items(backend, "get_profile_ids_for_segment", Query(page_size=100), id=s.id))
        for s in backend.store.segments.values()
    }
    assert sizes["Email subscribers"] > 0
    assert sizes["Gold and platinum tier"] > 0
    assert all(n < 400 for n in sizes.values())


def test_the_generator_imports_on_its_own() -> None:
    """datagen uses backend.ids/models and the backend uses datagen: either may come first."""
    import subprocess
    import sys

    for first, second in (("datagen", "backend"), ("backend", "datagen")):
        code = (
            f"import kbridge.emulator.{first}; import kbridge.emulator.{second}; "
            "from kbridge.emulator.backend import EmulatorBackend"
        )
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stderr


def test_dump_and_load_round_trip_into_the_backend(tmp_path: Path) -> None:
    from kbridge.emulator.datagen import DatasetFileError, dump, load

    original = generate(9, 150, 1500, NOW)
    path = tmp_path / "account.json"
    dump(original, path)
    assert _fingerprint(load(path)) == _fingerprint(original)
    from_file = EmulatorBackend(
        EmulatorConfig(seed=1, profiles=1, events=1, data_file=str(path)),
        SimClock(ManualClock(NOW)),
    )
    assert from_file.account_id == original.account_id
    assert len(from_file.store.profiles) == 150
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetFileError, match="not a"):
        load(tmp_path / "bad.json")


@pytest.mark.parametrize("seed", [4, 11])
def test_no_generated_event_is_dated_after_now(seed: int) -> None:
    # A client that reads up to "now" must see every generated event: opens hours after a
    # send, clicks, a session's later steps and its order all stop at the clock.
    d = generate(seed, 2000, 20000, NOW)
    late = [t for t in d.events.ts if t > d.now]
    assert late == []
    # and the last hours are not empty: what would have landed later is dropped, not piled up
    assert sum(1 for t in d.events.ts if d.now - 6 * 3600 <= t) > 0
    assert sum(1 for t in d.events.ts if t == d.now) <= 2
