"""One service per Klaviyo OpenAPI tag, attached to the client as ``client.<resource>``.

Methods are named after Klaviyo's ``operationId``; iterators are prefixed
``iter_``. Every argument is keyword-only after the resource id, validated
before a request is sent (see :mod:`kbridge.api.validation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbridge.api.resources.accounts import AccountsService
from kbridge.api.resources.bulk import BulkService
from kbridge.api.resources.campaigns import CampaignsService, email_message, sms_message
from kbridge.api.resources.catalogs import CatalogsService
from kbridge.api.resources.coupons import CouponsService
from kbridge.api.resources.data_privacy import DataPrivacyService
from kbridge.api.resources.events import EventsService, NewEvent
from kbridge.api.resources.flows import FlowsService
from kbridge.api.resources.images import ImagesService
from kbridge.api.resources.lists import ListsService
from kbridge.api.resources.metrics import MetricsService
from kbridge.api.resources.profiles import ProfilesService
from kbridge.api.resources.reporting import ReportingService, timeframe
from kbridge.api.resources.segments import SegmentsService
from kbridge.api.resources.subscriptions import Contact, SubscriptionsService
from kbridge.api.resources.tags import TagsService
from kbridge.api.resources.templates import TemplatesService

if TYPE_CHECKING:
    from kbridge.api.client import AsyncClient

__all__ = [
    "SERVICES",
    "AccountsService",
    "BulkService",
    "CampaignsService",
    "CatalogsService",
    "Contact",
    "CouponsService",
    "DataPrivacyService",
    "EventsService",
    "FlowsService",
    "ImagesService",
    "ListsService",
    "MetricsService",
    "NewEvent",
    "ProfilesService",
    "ReportingService",
    "SegmentsService",
    "SubscriptionsService",
    "TagsService",
    "TemplatesService",
    "email_message",
    "services_for",
    "sms_message",
    "timeframe",
]

#: attribute name on the client → service class
SERVICES = {
    "accounts": AccountsService,
    "bulk": BulkService,
    "campaigns": CampaignsService,
    "catalogs": CatalogsService,
    "coupons": CouponsService,
    "data_privacy": DataPrivacyService,
    "events": EventsService,
    "flows": FlowsService,
    "images": ImagesService,
    "lists": ListsService,
    "metrics": MetricsService,
    "profiles": ProfilesService,
    "reporting": ReportingService,
    "segments": SegmentsService,
    "subscriptions": SubscriptionsService,
    "tags": TagsService,
    "templates": TemplatesService,
}


def services_for(client: AsyncClient) -> dict[str, object]:
    """One instance of each service bound to ``client``."""
    return {name: cls(client) for name, cls in SERVICES.items()}
