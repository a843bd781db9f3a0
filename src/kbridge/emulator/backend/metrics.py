"""Metrics: the event types of the account (read-only; new names come from events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import TagBackend, existing, page_of, page_outcome
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import MetricRecord
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MetricsBackend", "metric_resource"]


def metric_resource(m: MetricRecord) -> Resource:
    attrs: dict[str, Any] = {
        "name": m.name,
        "created": iso(m.created),
        "updated": iso(m.updated),
        "integration": dict(m.integration),
    }
    return Resource("metric", m.id, attrs, links_only=("flow-triggers",))


class MetricsBackend(TagBackend):
    operations = frozenset({"get_metrics", "get_metric"})

    def get_metrics(self, call: Call) -> Outcome:
        metrics = self.store.metrics
        getters = {
            "integration.name": lambda i: metrics[i].integration.get("name"),
            "integration.category": lambda i: metrics[i].integration.get("category"),
        }
        ordered = range(len(metrics))
        page = page_of(call, ordered, lambda i: (i,), getters)
        return page_outcome(page, lambda i: metric_resource(metrics[i]))

    def get_metric(self, call: Call) -> Outcome:
        mid = self.path_id(call)
        m = existing(self.store.metric_by_id, "metric", mid)
        return Outcome(data=metric_resource(m))
