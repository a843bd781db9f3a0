"""Typed blocking services for :class:`kbridge.api.Client` (``client.profiles`` …).

Generated from the async services in ``kbridge.api.resources`` by
``scripts/gen_blocking.py`` — do not edit; run ``make blocking`` after changing a service.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from kbridge.api.jsonapi import Resource
from kbridge.api.resources import (
    AccountsService,
    BulkService,
    CampaignsService,
    CatalogsService,
    CouponsService,
    DataPrivacyService,
    EventsService,
    FlowsService,
    ImagesService,
    ListsService,
    MetricsService,
    ProfilesService,
    ReportingService,
    SegmentsService,
    SubscriptionsService,
    TagsService,
    TemplatesService,
)
from kbridge.api.resources._base import ListQuery, Progress
from kbridge.api.resources.events import NewEvent
from kbridge.api.resources.subscriptions import Contact

if TYPE_CHECKING:
    from kbridge.api._blocking_client import Client

__all__ = [
    "BlockingAccountsService",
    "BlockingBulkService",
    "BlockingCampaignsService",
    "BlockingCatalogsService",
    "BlockingCouponsService",
    "BlockingDataPrivacyService",
    "BlockingEventsService",
    "BlockingFlowsService",
    "BlockingImagesService",
    "BlockingListsService",
    "BlockingMetricsService",
    "BlockingProfilesService",
    "BlockingReportingService",
    "BlockingSegmentsService",
    "BlockingSubscriptionsService",
    "BlockingTagsService",
    "BlockingTemplatesService",
]


class BlockingAccountsService:
    """:class:`AccountsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: AccountsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> AccountsService:
        """The underlying async service."""
        return self._service

    def get_accounts(
        self, *, fields: Mapping[str, str | Sequence[str]] | None = None
    ) -> list[Resource]:
        """See :meth:`AccountsService.get_accounts`."""
        return self._client.run(lambda: self._service.get_accounts(fields=fields))

    def get_account(
        self, account_id: str, *, fields: Mapping[str, str | Sequence[str]] | None = None
    ) -> Resource:
        """See :meth:`AccountsService.get_account`."""
        return self._client.run(lambda: self._service.get_account(account_id, fields=fields))


class BlockingBulkService:
    """:class:`BulkService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: BulkService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> BulkService:
        """The underlying async service."""
        return self._service

    def bulk_create_events(
        self, events: Sequence[NewEvent], *, progress: Progress | None = None
    ) -> int:
        """See :meth:`BulkService.bulk_create_events`."""
        return self._client.run(lambda: self._service.bulk_create_events(events, progress=progress))

    def bulk_subscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        custom_source: str | None = None,
        historical_import: bool | None = None,
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`BulkService.bulk_subscribe_profiles`."""
        return self._client.run(
            lambda: self._service.bulk_subscribe_profiles(
                profiles,
                list_id=list_id,
                channels=channels,
                custom_source=custom_source,
                historical_import=historical_import,
                progress=progress,
            )
        )

    def bulk_import_profiles(
        self,
        profiles: Sequence[Mapping[str, Any]],
        *,
        list_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[Resource]:
        """See :meth:`BulkService.bulk_import_profiles`."""
        return self._client.run(
            lambda: self._service.bulk_import_profiles(
                profiles, list_ids=list_ids, progress=progress
            )
        )


class BlockingCampaignsService:
    """:class:`CampaignsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: CampaignsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> CampaignsService:
        """The underlying async service."""
        return self._service

    def get_campaigns(
        self, *, channel: str | None = None, **query: Unpack[ListQuery]
    ) -> list[Resource]:
        """See :meth:`CampaignsService.get_campaigns`."""
        return self._client.run(lambda: self._service.get_campaigns(channel=channel, **query))

    def iter_campaigns(
        self, *, channel: str | None = None, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`CampaignsService.iter_campaigns`."""
        return self._client._drain(self._service.iter_campaigns(channel=channel, **query))

    def get_campaign(self, campaign_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`CampaignsService.get_campaign`."""
        return self._client.run(lambda: self._service.get_campaign(campaign_id, **query))

    def create_campaign(
        self,
        *,
        name: str,
        included: Sequence[str],
        excluded: Sequence[str] = (),
        message: Mapping[str, Any],
        send_at: datetime | None = None,
        use_smart_sending: bool | None = None,
    ) -> Resource:
        """See :meth:`CampaignsService.create_campaign`."""
        return self._client.run(
            lambda: self._service.create_campaign(
                name=name,
                included=included,
                excluded=excluded,
                message=message,
                send_at=send_at,
                use_smart_sending=use_smart_sending,
            )
        )

    def update_campaign(
        self,
        campaign_id: str,
        *,
        name: str | None = None,
        included: Sequence[str] | None = None,
        excluded: Sequence[str] | None = None,
        send_at: datetime | None = None,
        use_smart_sending: bool | None = None,
    ) -> Resource:
        """See :meth:`CampaignsService.update_campaign`."""
        return self._client.run(
            lambda: self._service.update_campaign(
                campaign_id,
                name=name,
                included=included,
                excluded=excluded,
                send_at=send_at,
                use_smart_sending=use_smart_sending,
            )
        )

    def delete_campaign(self, campaign_id: str) -> None:
        """See :meth:`CampaignsService.delete_campaign`."""
        return self._client.run(lambda: self._service.delete_campaign(campaign_id))

    def create_campaign_clone(self, campaign_id: str, *, new_name: str | None = None) -> Resource:
        """See :meth:`CampaignsService.create_campaign_clone`."""
        return self._client.run(
            lambda: self._service.create_campaign_clone(campaign_id, new_name=new_name)
        )

    def get_messages_for_campaign(self, campaign_id: str) -> list[Resource]:
        """See :meth:`CampaignsService.get_messages_for_campaign`."""
        return self._client.run(lambda: self._service.get_messages_for_campaign(campaign_id))

    def get_campaign_message(self, message_id: str) -> Resource:
        """See :meth:`CampaignsService.get_campaign_message`."""
        return self._client.run(lambda: self._service.get_campaign_message(message_id))

    def update_campaign_message(
        self, message_id: str, *, definition: Mapping[str, Any]
    ) -> Resource:
        """See :meth:`CampaignsService.update_campaign_message`."""
        return self._client.run(
            lambda: self._service.update_campaign_message(message_id, definition=definition)
        )

    def assign_template_to_campaign_message(self, message_id: str, *, template_id: str) -> Resource:
        """See :meth:`CampaignsService.assign_template_to_campaign_message`."""
        return self._client.run(
            lambda: self._service.assign_template_to_campaign_message(
                message_id, template_id=template_id
            )
        )

    def send_campaign(self, campaign_id: str) -> Resource | None:
        """See :meth:`CampaignsService.send_campaign`."""
        return self._client.run(lambda: self._service.send_campaign(campaign_id))

    def get_campaign_send_job(self, job_id: str) -> Resource:
        """See :meth:`CampaignsService.get_campaign_send_job`."""
        return self._client.run(lambda: self._service.get_campaign_send_job(job_id))

    def cancel_campaign_send(self, job_id: str, *, action: str = "cancel") -> None:
        """See :meth:`CampaignsService.cancel_campaign_send`."""
        return self._client.run(lambda: self._service.cancel_campaign_send(job_id, action=action))


class BlockingCatalogsService:
    """:class:`CatalogsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: CatalogsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> CatalogsService:
        """The underlying async service."""
        return self._service

    def get_catalog_items(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`CatalogsService.get_catalog_items`."""
        return self._client.run(lambda: self._service.get_catalog_items(**query))

    def iter_catalog_items(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_catalog_items`."""
        return self._client._drain(self._service.iter_catalog_items(**query))

    def get_catalog_item(self, item_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`CatalogsService.get_catalog_item`."""
        return self._client.run(lambda: self._service.get_catalog_item(item_id, **query))

    def create_catalog_item(
        self,
        *,
        external_id: str,
        title: str,
        description: str,
        url: str,
        price: float | None = None,
        image_full_url: str | None = None,
        images: Sequence[str] | None = None,
        published: bool | None = None,
        category_ids: Sequence[str] = (),
    ) -> Resource:
        """See :meth:`CatalogsService.create_catalog_item`."""
        return self._client.run(
            lambda: self._service.create_catalog_item(
                external_id=external_id,
                title=title,
                description=description,
                url=url,
                price=price,
                image_full_url=image_full_url,
                images=images,
                published=published,
                category_ids=category_ids,
            )
        )

    def update_catalog_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        url: str | None = None,
        price: float | None = None,
        image_full_url: str | None = None,
        published: bool | None = None,
        category_ids: Sequence[str] | None = None,
    ) -> Resource:
        """See :meth:`CatalogsService.update_catalog_item`."""
        return self._client.run(
            lambda: self._service.update_catalog_item(
                item_id,
                title=title,
                description=description,
                url=url,
                price=price,
                image_full_url=image_full_url,
                published=published,
                category_ids=category_ids,
            )
        )

    def delete_catalog_item(self, item_id: str) -> None:
        """See :meth:`CatalogsService.delete_catalog_item`."""
        return self._client.run(lambda: self._service.delete_catalog_item(item_id))

    def iter_variants_for_catalog_item(
        self, item_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_variants_for_catalog_item`."""
        return self._client._drain(self._service.iter_variants_for_catalog_item(item_id, **query))

    def iter_categories_for_catalog_item(
        self, item_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_categories_for_catalog_item`."""
        return self._client._drain(self._service.iter_categories_for_catalog_item(item_id, **query))

    def add_categories_to_catalog_item(self, item_id: str, *, category_ids: Sequence[str]) -> None:
        """See :meth:`CatalogsService.add_categories_to_catalog_item`."""
        return self._client.run(
            lambda: self._service.add_categories_to_catalog_item(item_id, category_ids=category_ids)
        )

    def iter_catalog_variants(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_catalog_variants`."""
        return self._client._drain(self._service.iter_catalog_variants(**query))

    def get_catalog_variant(self, variant_id: str) -> Resource:
        """See :meth:`CatalogsService.get_catalog_variant`."""
        return self._client.run(lambda: self._service.get_catalog_variant(variant_id))

    def create_catalog_variant(
        self,
        *,
        item_id: str,
        external_id: str,
        title: str,
        description: str,
        sku: str,
        price: float,
        inventory_quantity: float,
        url: str,
        inventory_policy: int | None = None,
        published: bool | None = None,
    ) -> Resource:
        """See :meth:`CatalogsService.create_catalog_variant`."""
        return self._client.run(
            lambda: self._service.create_catalog_variant(
                item_id=item_id,
                external_id=external_id,
                title=title,
                description=description,
                sku=sku,
                price=price,
                inventory_quantity=inventory_quantity,
                url=url,
                inventory_policy=inventory_policy,
                published=published,
            )
        )

    def update_catalog_variant(
        self,
        variant_id: str,
        *,
        price: float | None = None,
        inventory_quantity: float | None = None,
        title: str | None = None,
        published: bool | None = None,
    ) -> Resource:
        """See :meth:`CatalogsService.update_catalog_variant`."""
        return self._client.run(
            lambda: self._service.update_catalog_variant(
                variant_id,
                price=price,
                inventory_quantity=inventory_quantity,
                title=title,
                published=published,
            )
        )

    def delete_catalog_variant(self, variant_id: str) -> None:
        """See :meth:`CatalogsService.delete_catalog_variant`."""
        return self._client.run(lambda: self._service.delete_catalog_variant(variant_id))

    def iter_catalog_categories(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_catalog_categories`."""
        return self._client._drain(self._service.iter_catalog_categories(**query))

    def get_catalog_category(self, category_id: str) -> Resource:
        """See :meth:`CatalogsService.get_catalog_category`."""
        return self._client.run(lambda: self._service.get_catalog_category(category_id))

    def create_catalog_category(
        self, *, external_id: str, name: str, item_ids: Sequence[str] = ()
    ) -> Resource:
        """See :meth:`CatalogsService.create_catalog_category`."""
        return self._client.run(
            lambda: self._service.create_catalog_category(
                external_id=external_id, name=name, item_ids=item_ids
            )
        )

    def update_catalog_category(self, category_id: str, *, name: str) -> Resource:
        """See :meth:`CatalogsService.update_catalog_category`."""
        return self._client.run(
            lambda: self._service.update_catalog_category(category_id, name=name)
        )

    def delete_catalog_category(self, category_id: str) -> None:
        """See :meth:`CatalogsService.delete_catalog_category`."""
        return self._client.run(lambda: self._service.delete_catalog_category(category_id))

    def iter_items_for_catalog_category(
        self, category_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`CatalogsService.iter_items_for_catalog_category`."""
        return self._client._drain(
            self._service.iter_items_for_catalog_category(category_id, **query)
        )

    def bulk_create_catalog_items(
        self, items: Sequence[Mapping[str, Any]], *, progress: Progress | None = None
    ) -> list[Resource]:
        """See :meth:`CatalogsService.bulk_create_catalog_items`."""
        return self._client.run(
            lambda: self._service.bulk_create_catalog_items(items, progress=progress)
        )

    def bulk_update_catalog_items(
        self, items: Sequence[Mapping[str, Any]], *, progress: Progress | None = None
    ) -> list[Resource]:
        """See :meth:`CatalogsService.bulk_update_catalog_items`."""
        return self._client.run(
            lambda: self._service.bulk_update_catalog_items(items, progress=progress)
        )

    def bulk_delete_catalog_items(
        self, item_ids: Sequence[str], *, progress: Progress | None = None
    ) -> list[Resource]:
        """See :meth:`CatalogsService.bulk_delete_catalog_items`."""
        return self._client.run(
            lambda: self._service.bulk_delete_catalog_items(item_ids, progress=progress)
        )

    def get_bulk_create_catalog_items_job(self, job_id: str) -> Resource:
        """See :meth:`CatalogsService.get_bulk_create_catalog_items_job`."""
        return self._client.run(lambda: self._service.get_bulk_create_catalog_items_job(job_id))

    def get_bulk_update_catalog_items_job(self, job_id: str) -> Resource:
        """See :meth:`CatalogsService.get_bulk_update_catalog_items_job`."""
        return self._client.run(lambda: self._service.get_bulk_update_catalog_items_job(job_id))

    def get_bulk_delete_catalog_items_job(self, job_id: str) -> Resource:
        """See :meth:`CatalogsService.get_bulk_delete_catalog_items_job`."""
        return self._client.run(lambda: self._service.get_bulk_delete_catalog_items_job(job_id))


class BlockingCouponsService:
    """:class:`CouponsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: CouponsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> CouponsService:
        """The underlying async service."""
        return self._service

    def get_coupons(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`CouponsService.get_coupons`."""
        return self._client.run(lambda: self._service.get_coupons(**query))

    def iter_coupons(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`CouponsService.iter_coupons`."""
        return self._client._drain(self._service.iter_coupons(**query))

    def get_coupon(self, coupon_id: str) -> Resource:
        """See :meth:`CouponsService.get_coupon`."""
        return self._client.run(lambda: self._service.get_coupon(coupon_id))

    def create_coupon(
        self,
        *,
        external_id: str,
        description: str | None = None,
        low_balance_threshold: int | None = None,
    ) -> Resource:
        """See :meth:`CouponsService.create_coupon`."""
        return self._client.run(
            lambda: self._service.create_coupon(
                external_id=external_id,
                description=description,
                low_balance_threshold=low_balance_threshold,
            )
        )

    def update_coupon(
        self,
        coupon_id: str,
        *,
        description: str | None = None,
        low_balance_threshold: int | None = None,
    ) -> Resource:
        """See :meth:`CouponsService.update_coupon`."""
        return self._client.run(
            lambda: self._service.update_coupon(
                coupon_id, description=description, low_balance_threshold=low_balance_threshold
            )
        )

    def delete_coupon(self, coupon_id: str) -> None:
        """See :meth:`CouponsService.delete_coupon`."""
        return self._client.run(lambda: self._service.delete_coupon(coupon_id))

    def iter_coupon_codes(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`CouponsService.iter_coupon_codes`."""
        return self._client._drain(self._service.iter_coupon_codes(**query))

    def iter_coupon_codes_for_coupon(
        self, coupon_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`CouponsService.iter_coupon_codes_for_coupon`."""
        return self._client._drain(self._service.iter_coupon_codes_for_coupon(coupon_id, **query))

    def get_coupon_code(self, code_id: str) -> Resource:
        """See :meth:`CouponsService.get_coupon_code`."""
        return self._client.run(lambda: self._service.get_coupon_code(code_id))

    def create_coupon_code(
        self, *, coupon_id: str, unique_code: str, expires_at: datetime | None = None
    ) -> Resource:
        """See :meth:`CouponsService.create_coupon_code`."""
        return self._client.run(
            lambda: self._service.create_coupon_code(
                coupon_id=coupon_id, unique_code=unique_code, expires_at=expires_at
            )
        )

    def update_coupon_code(
        self, code_id: str, *, status: str | None = None, expires_at: datetime | None = None
    ) -> Resource:
        """See :meth:`CouponsService.update_coupon_code`."""
        return self._client.run(
            lambda: self._service.update_coupon_code(code_id, status=status, expires_at=expires_at)
        )

    def delete_coupon_code(self, code_id: str) -> None:
        """See :meth:`CouponsService.delete_coupon_code`."""
        return self._client.run(lambda: self._service.delete_coupon_code(code_id))

    def bulk_create_coupon_codes(
        self,
        coupon_id: str,
        *,
        codes: Sequence[str],
        expires_at: datetime | None = None,
        progress: Progress | None = None,
    ) -> list[Resource]:
        """See :meth:`CouponsService.bulk_create_coupon_codes`."""
        return self._client.run(
            lambda: self._service.bulk_create_coupon_codes(
                coupon_id, codes=codes, expires_at=expires_at, progress=progress
            )
        )

    def get_bulk_create_coupon_codes_job(self, job_id: str) -> Resource:
        """See :meth:`CouponsService.get_bulk_create_coupon_codes_job`."""
        return self._client.run(lambda: self._service.get_bulk_create_coupon_codes_job(job_id))


class BlockingDataPrivacyService:
    """:class:`DataPrivacyService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: DataPrivacyService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> DataPrivacyService:
        """The underlying async service."""
        return self._service

    def request_profile_deletion(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        profile_id: str | None = None,
    ) -> None:
        """See :meth:`DataPrivacyService.request_profile_deletion`."""
        return self._client.run(
            lambda: self._service.request_profile_deletion(
                email=email, phone_number=phone_number, profile_id=profile_id
            )
        )


class BlockingEventsService:
    """:class:`EventsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: EventsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> EventsService:
        """The underlying async service."""
        return self._service

    def get_events(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`EventsService.get_events`."""
        return self._client.run(lambda: self._service.get_events(**query))

    def iter_events(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`EventsService.iter_events`."""
        return self._client._drain(self._service.iter_events(**query))

    def get_event(self, event_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`EventsService.get_event`."""
        return self._client.run(lambda: self._service.get_event(event_id, **query))

    def create_event(self, event: NewEvent) -> None:
        """See :meth:`EventsService.create_event`."""
        return self._client.run(lambda: self._service.create_event(event))

    def bulk_create_events(
        self, events: Sequence[NewEvent], *, progress: Progress | None = None
    ) -> int:
        """See :meth:`EventsService.bulk_create_events`."""
        return self._client.run(lambda: self._service.bulk_create_events(events, progress=progress))


class BlockingFlowsService:
    """:class:`FlowsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: FlowsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> FlowsService:
        """The underlying async service."""
        return self._service

    def get_flows(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`FlowsService.get_flows`."""
        return self._client.run(lambda: self._service.get_flows(**query))

    def iter_flows(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`FlowsService.iter_flows`."""
        return self._client._drain(self._service.iter_flows(**query))

    def get_flow(self, flow_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`FlowsService.get_flow`."""
        return self._client.run(lambda: self._service.get_flow(flow_id, **query))

    def create_flow(self, *, name: str, definition: Mapping[str, Any]) -> Resource:
        """See :meth:`FlowsService.create_flow`."""
        return self._client.run(lambda: self._service.create_flow(name=name, definition=definition))

    def update_flow(self, flow_id: str, *, status: str) -> Resource:
        """See :meth:`FlowsService.update_flow`."""
        return self._client.run(lambda: self._service.update_flow(flow_id, status=status))

    def delete_flow(self, flow_id: str) -> None:
        """See :meth:`FlowsService.delete_flow`."""
        return self._client.run(lambda: self._service.delete_flow(flow_id))


class BlockingImagesService:
    """:class:`ImagesService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: ImagesService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> ImagesService:
        """The underlying async service."""
        return self._service

    def get_images(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`ImagesService.get_images`."""
        return self._client.run(lambda: self._service.get_images(**query))

    def iter_images(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`ImagesService.iter_images`."""
        return self._client._drain(self._service.iter_images(**query))

    def get_image(self, image_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`ImagesService.get_image`."""
        return self._client.run(lambda: self._service.get_image(image_id, **query))

    def update_image(
        self, image_id: str, *, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        """See :meth:`ImagesService.update_image`."""
        return self._client.run(
            lambda: self._service.update_image(image_id, name=name, hidden=hidden)
        )

    def upload_image_from_url(
        self, *, url: str, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        """See :meth:`ImagesService.upload_image_from_url`."""
        return self._client.run(
            lambda: self._service.upload_image_from_url(url=url, name=name, hidden=hidden)
        )

    def upload_image_from_file(
        self, path: str | Path, *, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        """See :meth:`ImagesService.upload_image_from_file`."""
        return self._client.run(
            lambda: self._service.upload_image_from_file(path, name=name, hidden=hidden)
        )


class BlockingListsService:
    """:class:`ListsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: ListsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> ListsService:
        """The underlying async service."""
        return self._service

    def get_lists(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`ListsService.get_lists`."""
        return self._client.run(lambda: self._service.get_lists(**query))

    def iter_lists(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`ListsService.iter_lists`."""
        return self._client._drain(self._service.iter_lists(**query))

    def get_list(self, list_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`ListsService.get_list`."""
        return self._client.run(lambda: self._service.get_list(list_id, **query))

    def create_list(self, *, name: str, opt_in_process: str | None = None) -> Resource:
        """See :meth:`ListsService.create_list`."""
        return self._client.run(
            lambda: self._service.create_list(name=name, opt_in_process=opt_in_process)
        )

    def update_list(
        self, list_id: str, *, name: str | None = None, opt_in_process: str | None = None
    ) -> Resource:
        """See :meth:`ListsService.update_list`."""
        return self._client.run(
            lambda: self._service.update_list(list_id, name=name, opt_in_process=opt_in_process)
        )

    def delete_list(self, list_id: str) -> None:
        """See :meth:`ListsService.delete_list`."""
        return self._client.run(lambda: self._service.delete_list(list_id))

    def get_profiles_for_list(self, list_id: str, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`ListsService.get_profiles_for_list`."""
        return self._client.run(lambda: self._service.get_profiles_for_list(list_id, **query))

    def iter_profiles_for_list(
        self, list_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`ListsService.iter_profiles_for_list`."""
        return self._client._drain(self._service.iter_profiles_for_list(list_id, **query))

    def add_profiles_to_list(
        self, list_id: str, *, profile_ids: Sequence[str], progress: Progress | None = None
    ) -> int:
        """See :meth:`ListsService.add_profiles_to_list`."""
        return self._client.run(
            lambda: self._service.add_profiles_to_list(
                list_id, profile_ids=profile_ids, progress=progress
            )
        )

    def remove_profiles_from_list(
        self, list_id: str, *, profile_ids: Sequence[str], progress: Progress | None = None
    ) -> int:
        """See :meth:`ListsService.remove_profiles_from_list`."""
        return self._client.run(
            lambda: self._service.remove_profiles_from_list(
                list_id, profile_ids=profile_ids, progress=progress
            )
        )

    def add_profiles_to_list_by_email(
        self,
        list_id: str,
        *,
        emails: Sequence[str],
        profile_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`ListsService.add_profiles_to_list_by_email`."""
        return self._client.run(
            lambda: self._service.add_profiles_to_list_by_email(
                list_id, emails=emails, profile_ids=profile_ids, progress=progress
            )
        )

    def remove_profiles_from_list_by_email(
        self,
        list_id: str,
        *,
        emails: Sequence[str],
        profile_ids: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`ListsService.remove_profiles_from_list_by_email`."""
        return self._client.run(
            lambda: self._service.remove_profiles_from_list_by_email(
                list_id, emails=emails, profile_ids=profile_ids, progress=progress
            )
        )


class BlockingMetricsService:
    """:class:`MetricsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: MetricsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> MetricsService:
        """The underlying async service."""
        return self._service

    def get_metrics(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`MetricsService.get_metrics`."""
        return self._client.run(lambda: self._service.get_metrics(**query))

    def iter_metrics(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`MetricsService.iter_metrics`."""
        return self._client._drain(self._service.iter_metrics(**query))

    def get_metric(self, metric_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`MetricsService.get_metric`."""
        return self._client.run(lambda: self._service.get_metric(metric_id, **query))


class BlockingProfilesService:
    """:class:`ProfilesService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: ProfilesService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> ProfilesService:
        """The underlying async service."""
        return self._service

    def get_profiles(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`ProfilesService.get_profiles`."""
        return self._client.run(lambda: self._service.get_profiles(**query))

    def iter_profiles(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`ProfilesService.iter_profiles`."""
        return self._client._drain(self._service.iter_profiles(**query))

    def get_profile(
        self,
        profile_id: str,
        *,
        fields: Mapping[str, str | Sequence[str]] | None = None,
        include: str | Sequence[str] | None = None,
        additional_fields: Mapping[str, str | Sequence[str]] | None = None,
    ) -> Resource:
        """See :meth:`ProfilesService.get_profile`."""
        return self._client.run(
            lambda: self._service.get_profile(
                profile_id, fields=fields, include=include, additional_fields=additional_fields
            )
        )

    def create_profile(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """See :meth:`ProfilesService.create_profile`."""
        return self._client.run(
            lambda: self._service.create_profile(
                email=email,
                phone_number=phone_number,
                external_id=external_id,
                first_name=first_name,
                last_name=last_name,
                organization=organization,
                title=title,
                image=image,
                locale=locale,
                location=location,
                properties=properties,
            )
        )

    def update_profile(
        self,
        profile_id: str,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """See :meth:`ProfilesService.update_profile`."""
        return self._client.run(
            lambda: self._service.update_profile(
                profile_id,
                email=email,
                phone_number=phone_number,
                external_id=external_id,
                first_name=first_name,
                last_name=last_name,
                organization=organization,
                title=title,
                image=image,
                locale=locale,
                location=location,
                properties=properties,
            )
        )

    def create_or_update_profile(
        self,
        *,
        email: str | None = None,
        phone_number: str | None = None,
        external_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        organization: str | None = None,
        title: str | None = None,
        image: str | None = None,
        locale: str | None = None,
        location: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Resource:
        """See :meth:`ProfilesService.create_or_update_profile`."""
        return self._client.run(
            lambda: self._service.create_or_update_profile(
                email=email,
                phone_number=phone_number,
                external_id=external_id,
                first_name=first_name,
                last_name=last_name,
                organization=organization,
                title=title,
                image=image,
                locale=locale,
                location=location,
                properties=properties,
            )
        )

    def profile_ids_for_emails(self, emails: Sequence[str]) -> dict[str, str]:
        """See :meth:`ProfilesService.profile_ids_for_emails`."""
        return self._client.run(lambda: self._service.profile_ids_for_emails(emails))


class BlockingReportingService:
    """:class:`ReportingService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: ReportingService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> ReportingService:
        """The underlying async service."""
        return self._service

    def query_campaign_values(
        self,
        *,
        statistics: Sequence[str],
        conversion_metric_id: str,
        timeframe: dict[str, Any],
        group_by: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> Resource:
        """See :meth:`ReportingService.query_campaign_values`."""
        return self._client.run(
            lambda: self._service.query_campaign_values(
                statistics=statistics,
                conversion_metric_id=conversion_metric_id,
                timeframe=timeframe,
                group_by=group_by,
                filter=filter,
            )
        )

    def query_flow_values(
        self,
        *,
        statistics: Sequence[str],
        conversion_metric_id: str,
        timeframe: dict[str, Any],
        group_by: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> Resource:
        """See :meth:`ReportingService.query_flow_values`."""
        return self._client.run(
            lambda: self._service.query_flow_values(
                statistics=statistics,
                conversion_metric_id=conversion_metric_id,
                timeframe=timeframe,
                group_by=group_by,
                filter=filter,
            )
        )


class BlockingSegmentsService:
    """:class:`SegmentsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: SegmentsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> SegmentsService:
        """The underlying async service."""
        return self._service

    def get_segments(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`SegmentsService.get_segments`."""
        return self._client.run(lambda: self._service.get_segments(**query))

    def iter_segments(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`SegmentsService.iter_segments`."""
        return self._client._drain(self._service.iter_segments(**query))

    def get_segment(self, segment_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`SegmentsService.get_segment`."""
        return self._client.run(lambda: self._service.get_segment(segment_id, **query))

    def create_segment(
        self,
        *,
        name: str,
        condition_groups: Sequence[Mapping[str, Any]],
        is_starred: bool | None = None,
    ) -> Resource:
        """See :meth:`SegmentsService.create_segment`."""
        return self._client.run(
            lambda: self._service.create_segment(
                name=name, condition_groups=condition_groups, is_starred=is_starred
            )
        )

    def update_segment(
        self,
        segment_id: str,
        *,
        name: str | None = None,
        condition_groups: Sequence[Mapping[str, Any]] | None = None,
        is_starred: bool | None = None,
    ) -> Resource:
        """See :meth:`SegmentsService.update_segment`."""
        return self._client.run(
            lambda: self._service.update_segment(
                segment_id, name=name, condition_groups=condition_groups, is_starred=is_starred
            )
        )

    def delete_segment(self, segment_id: str) -> None:
        """See :meth:`SegmentsService.delete_segment`."""
        return self._client.run(lambda: self._service.delete_segment(segment_id))

    def iter_profiles_for_segment(
        self, segment_id: str, **query: Unpack[ListQuery]
    ) -> Iterator[Resource]:
        """See :meth:`SegmentsService.iter_profiles_for_segment`."""
        return self._client._drain(self._service.iter_profiles_for_segment(segment_id, **query))


class BlockingSubscriptionsService:
    """:class:`SubscriptionsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: SubscriptionsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> SubscriptionsService:
        """The underlying async service."""
        return self._service

    def bulk_subscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        custom_source: str | None = None,
        historical_import: bool | None = None,
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`SubscriptionsService.bulk_subscribe_profiles`."""
        return self._client.run(
            lambda: self._service.bulk_subscribe_profiles(
                profiles,
                list_id=list_id,
                channels=channels,
                custom_source=custom_source,
                historical_import=historical_import,
                progress=progress,
            )
        )

    def bulk_unsubscribe_profiles(
        self,
        profiles: Sequence[Contact | str],
        *,
        list_id: str | None = None,
        channels: Sequence[str] = ("email",),
        progress: Progress | None = None,
    ) -> int:
        """See :meth:`SubscriptionsService.bulk_unsubscribe_profiles`."""
        return self._client.run(
            lambda: self._service.bulk_unsubscribe_profiles(
                profiles, list_id=list_id, channels=channels, progress=progress
            )
        )


class BlockingTagsService:
    """:class:`TagsService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: TagsService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> TagsService:
        """The underlying async service."""
        return self._service

    def get_tags(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`TagsService.get_tags`."""
        return self._client.run(lambda: self._service.get_tags(**query))

    def iter_tags(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`TagsService.iter_tags`."""
        return self._client._drain(self._service.iter_tags(**query))

    def get_tag(self, tag_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`TagsService.get_tag`."""
        return self._client.run(lambda: self._service.get_tag(tag_id, **query))

    def create_tag(self, *, name: str, tag_group_id: str | None = None) -> Resource:
        """See :meth:`TagsService.create_tag`."""
        return self._client.run(
            lambda: self._service.create_tag(name=name, tag_group_id=tag_group_id)
        )

    def update_tag(self, tag_id: str, *, name: str) -> None:
        """See :meth:`TagsService.update_tag`."""
        return self._client.run(lambda: self._service.update_tag(tag_id, name=name))

    def delete_tag(self, tag_id: str) -> None:
        """See :meth:`TagsService.delete_tag`."""
        return self._client.run(lambda: self._service.delete_tag(tag_id))

    def tag_resources(self, tag_id: str, *, kind: str, ids: Sequence[str]) -> None:
        """See :meth:`TagsService.tag_resources`."""
        return self._client.run(lambda: self._service.tag_resources(tag_id, kind=kind, ids=ids))

    def untag_resources(self, tag_id: str, *, kind: str, ids: Sequence[str]) -> None:
        """See :meth:`TagsService.untag_resources`."""
        return self._client.run(lambda: self._service.untag_resources(tag_id, kind=kind, ids=ids))


class BlockingTemplatesService:
    """:class:`TemplatesService` for blocking code: calls run on the client's loop."""

    def __init__(self, client: Client, service: TemplatesService) -> None:
        self._client = client
        self._service = service

    @property
    def service(self) -> TemplatesService:
        """The underlying async service."""
        return self._service

    def get_templates(self, **query: Unpack[ListQuery]) -> list[Resource]:
        """See :meth:`TemplatesService.get_templates`."""
        return self._client.run(lambda: self._service.get_templates(**query))

    def iter_templates(self, **query: Unpack[ListQuery]) -> Iterator[Resource]:
        """See :meth:`TemplatesService.iter_templates`."""
        return self._client._drain(self._service.iter_templates(**query))

    def get_template(self, template_id: str, **query: Unpack[ListQuery]) -> Resource:
        """See :meth:`TemplatesService.get_template`."""
        return self._client.run(lambda: self._service.get_template(template_id, **query))

    def create_template(
        self,
        *,
        name: str,
        html: str | None = None,
        text: str | None = None,
        editor_type: str = "CODE",
    ) -> Resource:
        """See :meth:`TemplatesService.create_template`."""
        return self._client.run(
            lambda: self._service.create_template(
                name=name, html=html, text=text, editor_type=editor_type
            )
        )

    def update_template(
        self,
        template_id: str,
        *,
        name: str | None = None,
        html: str | None = None,
        text: str | None = None,
    ) -> Resource:
        """See :meth:`TemplatesService.update_template`."""
        return self._client.run(
            lambda: self._service.update_template(template_id, name=name, html=html, text=text)
        )

    def delete_template(self, template_id: str) -> None:
        """See :meth:`TemplatesService.delete_template`."""
        return self._client.run(lambda: self._service.delete_template(template_id))

    def render_template(
        self, template_id: str, *, context: Mapping[str, Any] | None = None
    ) -> Resource:
        """See :meth:`TemplatesService.render_template`."""
        return self._client.run(lambda: self._service.render_template(template_id, context=context))

    def clone_template(self, template_id: str, *, name: str | None = None) -> Resource:
        """See :meth:`TemplatesService.clone_template`."""
        return self._client.run(lambda: self._service.clone_template(template_id, name=name))
