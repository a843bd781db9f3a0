"""``client.metrics``: the kinds of event the account records (Klaviyo tag *Metrics*)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Unpack

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import ListQuery, Service, list_params

__all__ = ["MetricsService"]


class MetricsService(Service):
    async def get_metrics(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_metrics", query)

    def iter_metrics(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_metrics", query)

    async def get_metric(self, metric_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_metric", **query)
        return await self._one("get_metric", path_params={"id": metric_id}, params=params)
