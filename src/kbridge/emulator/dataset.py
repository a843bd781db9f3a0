"""A generated account (:class:`Dataset`), its hidden truth, and its JSON file format.

``kbridge.emulator.datagen`` generates a :class:`Dataset`; :func:`dump` writes
one to a file and :func:`load` reads it back (``config.data_file``), so an
account can be kept, edited or shared without its generator.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import (
    EventColumns,
    ListRecord,
    MetricRecord,
    ProfileRecord,
    SegmentRecord,
)
from kbridge.emulator.backend.vocabulary import M_ORDER

__all__ = [
    "LIFECYCLE_STAGES",
    "Dataset",
    "DatasetFileError",
    "HiddenTraits",
    "dump",
    "load",
]

LIFECYCLE_STAGES = ("churned", "new", "prospect", "at_risk", "loyal", "active")


@dataclass(slots=True, kw_only=True)
class HiddenTraits:
    """What really drove one profile's data; the generator draws it, analytics are scored on it."""

    engagement_rate: float
    purchase_rate: float
    churn_propensity: float
    churn_time: float | None
    stage: str = "active"
    orders: int = 0
    revenue: float = 0.0


@dataclass(slots=True)
class Dataset:
    """A generated account. ``truth`` is the hidden model (see ``kbridge.emulator.datagen``)."""

    seed: int
    now: float
    account_id: str
    account: dict[str, Any]
    profiles: list[ProfileRecord]
    lists: list[ListRecord]
    segments: list[SegmentRecord]
    metrics: list[MetricRecord]
    events: EventColumns
    params: dict[str, Any]
    hidden: list[HiddenTraits] = field(default_factory=list)

    @property
    def truth(self) -> dict[str, Any]:
        """Per-profile hidden traits, aggregates and the generator's parameters."""
        per_profile: dict[str, dict[str, Any]] = {}
        stages: dict[str, int] = dict.fromkeys(LIFECYCLE_STAGES, 0)
        for p, h in zip(self.profiles, self.hidden, strict=True):
            stages[h.stage] += 1
            per_profile[p.id] = {
                "lifecycle_stage": h.stage,
                "churn_propensity": round(h.churn_propensity, 6),
                "churned": h.churn_time is not None and h.churn_time <= self.now,
                "churn_time": iso(h.churn_time),
                "engagement_rate": round(h.engagement_rate, 6),
                "purchase_rate": round(h.purchase_rate, 6),
                "orders": h.orders,
                "revenue": round(h.revenue, 2),
            }
        per_metric = [0] * len(self.metrics)
        revenue = 0.0
        for i, m in enumerate(self.events.metric):
            per_metric[m] += 1
            if m == M_ORDER:
                revenue += self.events.value[i]
        return {
            "seed": self.seed,
            "params": dict(self.params),
            "profiles": per_profile,
            "aggregates": {
                "profiles": len(self.profiles),
                "events": len(self.events),
                "events_per_metric": {
                    self.metrics[i].name: n for i, n in enumerate(per_metric) if n
                },
                "revenue_total": round(revenue, 2),
                "profiles_per_stage": stages,
            },
        }


_FORMAT = "kbridge-emulator-dataset/1"
#: each record's fields as the file holds them: hidden traits as arrays, the others as objects
_HIDDEN_FIELDS = (
    "engagement_rate",
    "purchase_rate",
    "churn_propensity",
    "churn_time",
    "stage",
    "orders",
    "revenue",
)
_LIST_FIELDS = ("seq", "id", "name", "created", "updated", "opt_in_process")
_SEGMENT_FIELDS = (
    "seq",
    "id",
    "name",
    "definition",
    "created",
    "updated",
    "is_active",
    "is_starred",
)
_METRIC_FIELDS = ("index", "id", "name", "created", "updated", "integration")


class DatasetFileError(ValueError):
    """A dataset file is missing, unreadable or not in this module's format."""


def _fields(record: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _profile_to_json(p: ProfileRecord) -> dict[str, Any]:
    return {name: getattr(p, name) for name in ProfileRecord.__slots__}


def _profile_from_json(raw: dict[str, Any]) -> ProfileRecord:
    p = ProfileRecord(raw["seq"], raw["id"], raw["created"])
    for name in ProfileRecord.__slots__:
        if name in raw:
            setattr(p, name, raw[name])
    p.email_suppression = [(r, t) for r, t in p.email_suppression]
    p.email_list_suppressions = [(lid, r, t) for lid, r, t in p.email_list_suppressions]
    p.predictive = tuple(p.predictive) if p.predictive is not None else None
    return p


def dump(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` as JSON (``config.data_file`` loads it back with :func:`load`)."""
    ev = dataset.events
    doc = {
        "format": _FORMAT,
        "seed": dataset.seed,
        "now": dataset.now,
        "account_id": dataset.account_id,
        "account": dataset.account,
        "params": dataset.params,
        "profiles": [_profile_to_json(p) for p in dataset.profiles],
        "hidden": [[getattr(h, name) for name in _HIDDEN_FIELDS] for h in dataset.hidden],
        "lists": [
            {
                **_fields(lst, _LIST_FIELDS),
                "members": [[s, t] for s, t in lst.members.items()],
            }
            for lst in dataset.lists
        ],
        "segments": [_fields(s, _SEGMENT_FIELDS) for s in dataset.segments],
        "metrics": [_fields(m, _METRIC_FIELDS) for m in dataset.metrics],
        "events": {
            "ts": list(ev.ts),
            "profile": list(ev.profile),
            "metric": list(ev.metric),
            "value": list(ev.value),
            "aux": list(ev.aux),
            "generated": ev.generated,
            "extra": [[i, props, uid] for i, (props, uid) in ev.extra.items()],
        },
    }
    Path(path).write_bytes(orjson.dumps(doc))


def _hidden(row: list[Any]) -> HiddenTraits:
    return HiddenTraits(**dict(zip(_HIDDEN_FIELDS, row, strict=True)))


def load(path: str | Path) -> Dataset:
    """Read a dataset written by :func:`dump`."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DatasetFileError(f"cannot read dataset file {str(path)!r}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise DatasetFileError(f"{str(path)!r} is not a {_FORMAT} file")
    try:
        e = doc["events"]
        events = EventColumns(
            ts=array("d", e["ts"]),
            profile=array("l", e["profile"]),
            metric=array("l", e["metric"]),
            value=array("d", e["value"]),
            aux=array("q", e["aux"]),
            generated=e["generated"],
            extra={i: (props, uid) for i, props, uid in e["extra"]},
        )
        return Dataset(
            seed=doc["seed"],
            now=doc["now"],
            account_id=doc["account_id"],
            account=doc["account"],
            profiles=[_profile_from_json(p) for p in doc["profiles"]],
            lists=[
                ListRecord(
                    **{name: raw[name] for name in _LIST_FIELDS}, members=dict(raw["members"])
                )
                for raw in doc["lists"]
            ],
            segments=[SegmentRecord(**raw) for raw in doc["segments"]],
            metrics=[MetricRecord(**raw) for raw in doc["metrics"]],
            events=events,
            params=doc["params"],
            hidden=[
                HiddenTraits(**dict(zip(_HIDDEN_FIELDS, h, strict=True))) for h in doc["hidden"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetFileError(f"{str(path)!r} is malformed: {exc!r}") from None
