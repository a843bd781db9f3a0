"""One strategy per stream kind, chosen by what a stream declares (never by its name).

=====================  ==========================================  =====================
stream declares         strategy                                    module
=====================  ==========================================  =====================
``parent``              :class:`Children` (memberships)             ``children``
``slice_days``          :class:`Windowed` (events)                  ``windowed``
``report``              :class:`Reports` (campaign/flow reports)    ``reports``
``aggregates``          :class:`MetricAggregates` (per metric/day)  ``aggregates``
``get_accounts``        :class:`AccountPage` (the page already read) ``incremental``
otherwise               :class:`Incremental` (bookmark, partitions) ``incremental``
=====================  ==========================================  =====================
"""

from __future__ import annotations

from kbridge.sync.strategies.aggregates import MetricAggregates
from kbridge.sync.strategies.base import Strategy
from kbridge.sync.strategies.children import Children
from kbridge.sync.strategies.incremental import AccountPage, Incremental
from kbridge.sync.strategies.reports import Reports
from kbridge.sync.strategies.windowed import Windowed
from kbridge.sync.streams import Stream

__all__ = [
    "AccountPage",
    "Children",
    "Incremental",
    "MetricAggregates",
    "Reports",
    "Strategy",
    "Windowed",
    "strategy_for",
]


def strategy_for(stream: Stream) -> Strategy:
    """How ``stream`` is read, from what it declares."""
    if stream.parent is not None:
        return Children()
    if stream.slice_days is not None:
        return Windowed()
    if stream.report is not None:
        return Reports()
    if stream.aggregates is not None:
        return MetricAggregates()
    if stream.operation_id == "get_accounts":
        return AccountPage()
    return Incremental()
