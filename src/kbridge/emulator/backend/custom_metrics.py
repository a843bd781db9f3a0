"""Custom metrics, mapped metrics and metric properties: the Metrics tag beyond metrics.

A custom metric combines metrics (``count`` of their events or the ``value``
of a property); a mapped metric says which metric (or custom metric) stands
for one of Klaviyo's seven business concepts (revenue, viewed product…);
a metric's properties are read from a sample of its recent events, so what
an integration sends shows up there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    relationship_ids,
)
from kbridge.emulator.backend.errors import ConflictError, InvalidError
from kbridge.emulator.backend.ids import base62_id, iso
from kbridge.emulator.backend.metrics import metric_resource
from kbridge.emulator.backend.models import MetricRecord
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.backend.vocabulary import event_properties

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MAPPED_METRICS", "CustomMetricRecord", "CustomMetricsBackend"]

#: Klaviyo's mapped-metric concepts, and the generated metric each maps to at first
MAPPED_METRICS = {
    "added_to_cart": "Added to Cart",
    "cancelled_sales": None,
    "ordered_product": "Ordered Product",
    "refunded_sales": None,
    "revenue": "Placed Order",
    "started_checkout": "Started Checkout",
    "viewed_product": "Viewed Product",
}
_METHODS = ("count", "value")
#: the recent events per metric whose properties are listed (Klaviyo samples too)
_SAMPLE = 200
_MAX_SAMPLES = 5


@dataclass(slots=True)
class CustomMetricRecord:
    seq: int
    id: str
    name: str
    definition: dict[str, Any]
    created: float
    updated: float

    def metric_ids(self) -> list[str]:
        return list(dict.fromkeys(g["metric_id"] for g in self.definition["metric_groups"]))


@dataclass(slots=True)
class _Mapping:
    metric_id: str | None
    custom_metric_id: str | None
    updated: float


class CustomMetricsBackend(TagBackend):
    operations = frozenset(
        {
            "get_custom_metrics",
            "create_custom_metric",
            "get_custom_metric",
            "update_custom_metric",
            "delete_custom_metric",
            "get_metrics_for_custom_metric",
            "get_metric_ids_for_custom_metric",
            "get_mapped_metrics",
            "get_mapped_metric",
            "update_mapped_metric",
            "get_custom_metric_for_mapped_metric",
            "get_metric_for_mapped_metric",
            "get_custom_metric_id_for_mapped_metric",
            "get_metric_id_for_mapped_metric",
            "get_metric_property",
            "get_metric_for_metric_property",
            "get_metric_id_for_metric_property",
            "get_properties_for_metric",
            "get_property_ids_for_metric",
        }
    )

    def __init__(self, ctx: Context, now: float) -> None:
        super().__init__(ctx)
        self.custom: dict[str, CustomMetricRecord] = {}
        by_name = self.store.metric_by_name
        order = by_name.get("Placed Order")
        if order is not None:
            # one seeded custom metric, so listings and syncs have something to read
            definition = {"aggregation_method": "count",
                          "metric_groups": [{"metric_id": order.id, "metric_filters": None,
                                             "value_property": None}]}  # fmt: skip
            seq = self.store.next_seq()
            seeded = CustomMetricRecord(
                seq, base62_id(0xC0570, seq), "Orders (all stores)", definition, now, now
            )
            self.custom[seeded.id] = seeded
        self.mapped: dict[str, _Mapping] = {}
        for concept, name in MAPPED_METRICS.items():
            metric = by_name.get(name) if name is not None else None
            self.mapped[concept] = _Mapping(metric.id if metric else None, None, now)

    # -- custom metrics ------------------------------------------------------------

    def custom_resource(self, c: CustomMetricRecord, *, linked: bool = False) -> Resource:
        attrs = {
            "name": c.name,
            "created": iso(c.created),
            "updated": iso(c.updated),
            "definition": c.definition,
        }
        if linked:
            rels: dict[str, Any] = {"metrics": [("metric", m) for m in c.metric_ids()]}
            return Resource("custom-metric", c.id, attrs, relationships=rels)
        return Resource("custom-metric", c.id, attrs, links_only=("metrics",))

    def _custom(self, cid: str) -> CustomMetricRecord:
        return existing(self.custom, "custom-metric", cid)

    def _metric(self, mid: str) -> MetricRecord:
        return existing(self.store.metric_by_id, "metric", mid)

    def _included_metrics(self, call: Call, customs: list[CustomMetricRecord]) -> list[Resource]:
        if "metrics" not in call.query.include:
            return []
        ids = dict.fromkeys(m for c in customs for m in c.metric_ids())
        found = [self.store.metric_by_id.get(m) for m in ids]
        return [metric_resource(m) for m in found if m is not None]

    def get_custom_metrics(self, call: Call) -> Outcome:
        customs = sorted(self.custom.values(), key=lambda c: c.seq)
        linked = "metrics" in call.query.include
        return Outcome(
            data=[self.custom_resource(c, linked=linked) for c in customs],
            included=self._included_metrics(call, customs),
        )

    def get_custom_metric(self, call: Call) -> Outcome:
        c = self._custom(self.path_id(call))
        linked = "metrics" in call.query.include
        return Outcome(
            data=self.custom_resource(c, linked=linked),
            included=self._included_metrics(call, [c]),
        )

    def _definition(self, value: Any) -> dict[str, Any]:
        ptr = "/data/attributes/definition"
        if not isinstance(value, dict):
            raise InvalidError("definition must be an object", pointer=ptr)
        method = value.get("aggregation_method")
        if method not in _METHODS:
            raise InvalidError(
                "aggregation_method must be 'count' or 'value'",
                pointer=f"{ptr}/aggregation_method",
            )
        groups = value.get("metric_groups")
        if not isinstance(groups, list) or not groups:
            raise InvalidError(
                "metric_groups must be a non-empty list", pointer=f"{ptr}/metric_groups"
            )
        out: list[dict[str, Any]] = []
        for k, group in enumerate(groups):
            gptr = f"{ptr}/metric_groups/{k}"
            mid = group.get("metric_id") if isinstance(group, dict) else None
            if not isinstance(mid, str) or mid not in self.store.metric_by_id:
                raise InvalidError(f"metric {mid!r} does not exist", pointer=f"{gptr}/metric_id")
            prop = group.get("value_property")
            if method == "value" and not prop:
                # a value aggregation has to know which property to sum
                raise InvalidError(
                    "value_property is required when aggregation_method is 'value'",
                    pointer=f"{gptr}/value_property",
                )
            out.append(
                {
                    "metric_id": mid,
                    "metric_filters": group.get("metric_filters"),
                    "value_property": prop,
                }
            )
        return {"aggregation_method": method, "metric_groups": out}

    def _check_name(self, name: Any, other: CustomMetricRecord | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidError("name is required", pointer="/data/attributes/name")
        taken = {c.name for c in self.custom.values() if c is not other}
        if name in taken or name in self.store.metric_by_name:
            raise ConflictError(
                f"A metric named {name!r} already exists.", pointer="/data/attributes/name"
            )
        return name

    def create_custom_metric(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "custom-metric"))
        name = self._check_name(attrs.get("name"))
        definition = self._definition(attrs.get("definition"))
        now = self.ctx.now()
        seq = self.store.next_seq()
        c = CustomMetricRecord(seq, base62_id(0xC0570, seq), name, definition, now, now)
        self.custom[c.id] = c
        return Outcome(data=self.custom_resource(c, linked=True))

    def update_custom_metric(self, call: Call) -> Outcome:
        c = self._custom(self.path_id(call))
        data = data_of(call.body, "custom-metric")
        if data.get("id") != c.id:
            raise InvalidError("data.id must match the id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        if attrs.get("name") is not None:
            c.name = self._check_name(attrs["name"], c)
        if attrs.get("definition") is not None:
            c.definition = self._definition(attrs["definition"])
        c.updated = max(c.updated, self.ctx.now())
        return Outcome(data=self.custom_resource(c, linked=True))

    def delete_custom_metric(self, call: Call) -> Outcome:
        c = self._custom(self.path_id(call))
        for mapping in self.mapped.values():
            if mapping.custom_metric_id == c.id:
                mapping.custom_metric_id = None
        del self.custom[c.id]
        return Outcome()

    def get_metrics_for_custom_metric(self, call: Call) -> Outcome:
        c = self._custom(self.path_id(call))
        metrics = [self.store.metric_by_id.get(m) for m in c.metric_ids()]
        return Outcome(data=[metric_resource(m) for m in metrics if m is not None])

    def get_metric_ids_for_custom_metric(self, call: Call) -> Outcome:
        c = self._custom(self.path_id(call))
        return Outcome(
            data=[Resource("metric", m, {}) for m in c.metric_ids()], identifiers_only=True
        )

    # -- mapped metrics ------------------------------------------------------------

    def mapped_resource(self, concept: str, m: _Mapping) -> Resource:
        rels: dict[str, Any] = {}
        links_only: list[str] = []
        for name, rtype, value in (
            ("metric", "metric", m.metric_id),
            ("custom-metric", "custom-metric", m.custom_metric_id),
        ):
            if value is None:
                links_only.append(name)
            else:
                rels[name] = (rtype, value)
        attrs = {"updated": iso(m.updated)}
        return Resource(
            "mapped-metric", concept, attrs, relationships=rels, links_only=tuple(links_only)
        )

    def _mapping(self, call: Call) -> tuple[str, _Mapping]:
        concept = self.path_id(call)
        m = existing(self.mapped, "mapped-metric", concept)
        return concept, m

    def _mapped_included(self, call: Call, mappings: list[_Mapping]) -> list[Resource]:
        included: list[Resource] = []
        if "metric" in call.query.include:
            ids = dict.fromkeys(m.metric_id for m in mappings if m.metric_id)
            found = [self.store.metric_by_id.get(i) for i in ids if i]
            included += [metric_resource(m) for m in found if m is not None]
        if "custom-metric" in call.query.include:
            cids = dict.fromkeys(m.custom_metric_id for m in mappings if m.custom_metric_id)
            included += [self.custom_resource(self.custom[c]) for c in cids if c in self.custom]
        return included

    def get_mapped_metrics(self, call: Call) -> Outcome:
        items = sorted(self.mapped.items())
        return Outcome(
            data=[self.mapped_resource(c, m) for c, m in items],
            included=self._mapped_included(call, [m for _, m in items]),
        )

    def get_mapped_metric(self, call: Call) -> Outcome:
        concept, m = self._mapping(call)
        return Outcome(
            data=self.mapped_resource(concept, m), included=self._mapped_included(call, [m])
        )

    def update_mapped_metric(self, call: Call) -> Outcome:
        concept, m = self._mapping(call)
        data = data_of(call.body, "mapped-metric")
        if data.get("id") != concept:
            raise InvalidError("data.id must match the id in the path", pointer="/data/id")
        metric_ids = relationship_ids(data, "metric", "metric", many=False)
        custom_ids = relationship_ids(data, "custom-metric", "custom-metric", many=False)
        if metric_ids and custom_ids:
            # a concept is one series: a metric or a custom metric, never both
            raise InvalidError(
                "map either a metric or a custom metric, not both", pointer="/data/relationships"
            )
        if metric_ids:
            if metric_ids[0] not in self.store.metric_by_id:
                raise InvalidError(
                    f"metric {metric_ids[0]!r} does not exist",
                    pointer="/data/relationships/metric/data/id",
                )
            m.metric_id, m.custom_metric_id = metric_ids[0], None
        elif custom_ids:
            if custom_ids[0] not in self.custom:
                raise InvalidError(
                    f"custom metric {custom_ids[0]!r} does not exist",
                    pointer="/data/relationships/custom-metric/data/id",
                )
            m.metric_id, m.custom_metric_id = None, custom_ids[0]
        m.updated = max(m.updated, self.ctx.now())
        return Outcome(data=self.mapped_resource(concept, m))

    def get_metric_for_mapped_metric(self, call: Call) -> Outcome:
        _, m = self._mapping(call)
        if m.metric_id is None:
            return Outcome(null_data=True)
        return Outcome(data=metric_resource(self._metric(m.metric_id)))

    def get_metric_id_for_mapped_metric(self, call: Call) -> Outcome:
        _, m = self._mapping(call)
        if m.metric_id is None:
            return Outcome(null_data=True, identifiers_only=True)
        return Outcome(data=Resource("metric", m.metric_id, {}), identifiers_only=True)

    def get_custom_metric_for_mapped_metric(self, call: Call) -> Outcome:
        _, m = self._mapping(call)
        if m.custom_metric_id is None:
            return Outcome(null_data=True)
        return Outcome(data=self.custom_resource(self._custom(m.custom_metric_id)))

    def get_custom_metric_id_for_mapped_metric(self, call: Call) -> Outcome:
        _, m = self._mapping(call)
        if m.custom_metric_id is None:
            return Outcome(null_data=True, identifiers_only=True)
        return Outcome(
            data=Resource("custom-metric", m.custom_metric_id, {}), identifiers_only=True
        )

    # -- metric properties ---------------------------------------------------------

    def _event_props(self, metric: MetricRecord) -> Iterator[dict[str, Any]]:
        store = self.store
        ev = store.events
        index = store.metrics.index(metric)
        indexes = store.events_by_metric.get(index)
        recent = set(indexes[-_SAMPLE:]) if indexes is not None else set()
        # what integrations sent through the API, however old its timestamps
        recent |= {i for i in ev.extra if ev.metric[i] == index}
        for i in sorted(recent):
            if i in store.deleted_events:
                continue
            if i < ev.generated:
                yield event_properties(store.seed, i, index, ev.aux[i], ev.value[i])[0]
            else:
                yield dict(ev.extra.get(i, ({}, None))[0])

    def properties_of(self, metric: MetricRecord) -> list[Resource]:
        samples: dict[str, list[Any]] = {}
        for props in self._event_props(metric):
            for name, value in props.items():
                seen = samples.setdefault(name, [])
                if len(seen) < _MAX_SAMPLES and value not in seen and _scalar(value):
                    seen.append(value)
        return [
            self._property_resource(metric, name, values)
            for name, values in sorted(samples.items())
        ]

    @staticmethod
    def _property_resource(metric: MetricRecord, name: str, values: list[Any]) -> Resource:
        pid = f"{metric.id}{zlib.crc32(name.encode()):08x}"
        attrs = {
            "label": name.lstrip("$").replace("_", " "),
            "property": name,
            "inferred_type": _inferred(values),
            "sample_values": values,
        }
        return Resource(
            "metric-property", pid, attrs, relationships={"metric": ("metric", metric.id)}
        )

    def _property(self, pid: str) -> tuple[MetricRecord, Resource]:
        for metric in self.store.metrics:
            if pid.startswith(metric.id):
                for r in self.properties_of(metric):
                    if r.id == pid:
                        return metric, r
        raise not_found("metric-property", pid)

    def get_metric_property(self, call: Call) -> Outcome:
        metric, r = self._property(self.path_id(call))
        included = [metric_resource(metric)] if "metric" in call.query.include else []
        return Outcome(data=r, included=included)

    def get_metric_for_metric_property(self, call: Call) -> Outcome:
        metric, _ = self._property(self.path_id(call))
        return Outcome(data=metric_resource(metric))

    def get_metric_id_for_metric_property(self, call: Call) -> Outcome:
        metric, _ = self._property(self.path_id(call))
        return Outcome(data=Resource("metric", metric.id, {}), identifiers_only=True)

    def get_properties_for_metric(self, call: Call) -> Outcome:
        return Outcome(data=self.properties_of(self._metric(self.path_id(call))))

    def get_property_ids_for_metric(self, call: Call) -> Outcome:
        props = self.properties_of(self._metric(self.path_id(call)))
        return Outcome(
            data=[Resource("metric-property", r.id, {}) for r in props], identifiers_only=True
        )


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _inferred(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"
