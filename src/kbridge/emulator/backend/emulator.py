"""The emulator's backend: routes a :class:`Call` to the per-tag backend method
named after its operation id, and owns the account's lifecycle (generate,
reset, ground truth)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from kbridge.emulator.backend.accounts import AccountsBackend
from kbridge.emulator.backend.call import Call, Outcome
from kbridge.emulator.backend.campaign_messages import CampaignMessagesBackend
from kbridge.emulator.backend.campaigns import CampaignsBackend, outbox_of
from kbridge.emulator.backend.catalogs import CatalogsBackend
from kbridge.emulator.backend.client import ClientBackend
from kbridge.emulator.backend.common import Context, TagBackend
from kbridge.emulator.backend.coupons import CouponsBackend
from kbridge.emulator.backend.custom_metrics import CustomMetricsBackend
from kbridge.emulator.backend.custom_objects import CustomObjectsBackend
from kbridge.emulator.backend.errors import NotImplementedOperationError
from kbridge.emulator.backend.events import EventsBackend
from kbridge.emulator.backend.flows import FlowsBackend
from kbridge.emulator.backend.forms import FormsBackend
from kbridge.emulator.backend.images import ImagesBackend
from kbridge.emulator.backend.jobs import JobsBackend
from kbridge.emulator.backend.lists import ListsBackend
from kbridge.emulator.backend.metric_aggregates import MetricAggregatesBackend
from kbridge.emulator.backend.metrics import MetricsBackend
from kbridge.emulator.backend.outbox import Outbox
from kbridge.emulator.backend.privacy import PrivacyBackend
from kbridge.emulator.backend.profile_merge import ProfileMergeBackend
from kbridge.emulator.backend.profiles import ProfilesBackend
from kbridge.emulator.backend.push_tokens import PushTokensBackend
from kbridge.emulator.backend.reporting import ReportingBackend
from kbridge.emulator.backend.reviews import ConversationsBackend, ReviewsBackend
from kbridge.emulator.backend.segments import SegmentsBackend
from kbridge.emulator.backend.store import Store
from kbridge.emulator.backend.subscriptions import SubscriptionsBackend
from kbridge.emulator.backend.tags import TagsBackend
from kbridge.emulator.backend.templates import TemplatesBackend
from kbridge.emulator.backend.universal_content import UniversalContentBackend
from kbridge.emulator.backend.web_feeds import TrackingSettingsBackend, WebFeedsBackend
from kbridge.emulator.backend.webhooks import WebhooksBackend
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.datagen import generate, generate_catalog
from kbridge.emulator.dataset import Dataset, load
from kbridge.emulator.simclock import SimClock

__all__ = ["EmulatorBackend"]

#: account size (profiles + events/10) from which the loaded heap is frozen
_FREEZE_AT = 50_000


class EmulatorBackend:
    """The in-memory Klaviyo account behind the emulator (implements ``Backend``).

    The account is generated from ``config.seed`` at the simulated clock's
    current time (or read from ``config.data_file``, see ``dataset.dump``);
    ``reset()`` restores the identical account (same ``now``).
    """

    def __init__(
        self, config: EmulatorConfig, clock: SimClock, *, dataset: Dataset | None = None
    ) -> None:
        self._config = config
        self._clock = clock
        self._generated_at = clock.now()
        self._dataset = dataset
        self._load()

    def _load(self) -> None:
        data = self._dataset
        c = self._config
        if data is None and c.data_file is not None:
            data = load(c.data_file)
        if data is None:
            data = generate(c.seed, c.profiles, c.events, self._generated_at)
        self._data = data
        ctx = Context(store=Store(data), clock=self._clock, config=self._config)
        jobs = JobsBackend(ctx)
        ctx.jobs = jobs
        segments = SegmentsBackend(ctx)
        ctx.segments = segments
        push_tokens = PushTokensBackend(ctx)
        shop = generate_catalog(
            data.seed,
            data.now,
            [p.id for p in data.profiles[:200]],
            extra_items=c.extra_catalog_items,
            extra_categories=c.extra_catalog_categories,
            extra_coupons=c.extra_coupons,
            codes_per_extra_coupon=c.codes_per_extra_coupon,
        )
        catalogs = CatalogsBackend(ctx, shop)
        reviews = ReviewsBackend(ctx, shop, data.now)
        reviews.catalog_items = lambda: catalogs.records["catalog-item"].values()
        backends: list[TagBackend] = [
            AccountsBackend(ctx),
            ProfilesBackend(ctx),
            ListsBackend(ctx),
            segments,
            MetricsBackend(ctx),
            EventsBackend(ctx),
            jobs,
            SubscriptionsBackend(ctx),
            TemplatesBackend(ctx),
            CampaignsBackend(ctx, hidden=data.hidden),
            CampaignMessagesBackend(ctx),
            ReportingBackend(ctx),
            ImagesBackend(ctx),
            FlowsBackend(ctx),
            TagsBackend(ctx),
            PrivacyBackend(ctx),
            catalogs,
            CouponsBackend(ctx, shop),
            MetricAggregatesBackend(ctx),
            UniversalContentBackend(ctx),
            push_tokens,
            ProfileMergeBackend(ctx, push_tokens),
            WebhooksBackend(ctx, data.now),
            reviews,
            ConversationsBackend(ctx),
            CustomObjectsBackend(ctx, data.now),
            FormsBackend(ctx, data.now),
            WebFeedsBackend(ctx, data.now),
            TrackingSettingsBackend(ctx),
            ClientBackend(ctx, lambda call: self.dispatch(call)),
            CustomMetricsBackend(ctx, data.now),
        ]
        jobs.handlers["event-bulk-create-job"] = lambda job: self._bulk_events(job.payload, job)
        self._ctx = ctx
        self._jobs = jobs
        self._routes: dict[str, Callable[[Call], Outcome]] = {}
        for backend in backends:
            for op in backend.operations:
                self._routes[op] = getattr(backend, op)
        self._events = next(b for b in backends if isinstance(b, EventsBackend))
        self._settle_heap(len(data.profiles) + len(data.events) // 10)

    @staticmethod
    def _settle_heap(size: int) -> None:
        """Move a large loaded account out of the garbage collector's sight.

        200k profiles and their dicts are millions of tracked objects: every
        full collection would walk them all (a ~100 ms pause in the middle of
        a request). They live as long as the account, so freeze them; unfreeze
        first so a previous account (on reset) can be collected.
        """
        if size < _FREEZE_AT:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _bulk_events(self, payload: Any, job: Any) -> None:
        job.failed_count = self._events.apply_bulk(payload)
        job.completed_count = job.total_count

    @property
    def account_id(self) -> str:
        return self._ctx.store.account_id

    @property
    def implemented(self) -> frozenset[str]:
        return frozenset(self._routes)

    @property
    def store(self) -> Store:
        """The live store (for tests and the control plane; not part of ``Backend``)."""
        return self._ctx.store

    @property
    def outbox(self) -> Outbox:
        """Sent campaign emails and verified senders (for ``/_emulator/outbox``/``senders``)."""
        return outbox_of(self._ctx)

    def image_file(self, filename: str) -> tuple[bytes, str] | None:
        """An uploaded image's bytes and media type (for ``/_emulator/images/{id}.{ext}``)."""
        images = self._ctx.images
        return images.file(filename) if images is not None else None

    def dispatch(self, call: Call) -> Outcome:
        op = call.operation.operation_id
        handler = self._routes.get(op)
        if handler is None:
            raise NotImplementedOperationError(
                f"{call.operation.method} {call.operation.path} ({op}) is not emulated yet"
            )
        return handler(call)

    def run_due(self, *, complete_imports: bool = True) -> None:
        self._jobs.run_due(complete_imports=complete_imports)
        for callback in self._ctx.on_due:
            callback()

    def work(self, rows: int) -> float | None:
        return self._jobs.work(rows)

    def truth(self) -> dict[str, Any]:
        return self._data.truth

    def reset(self) -> None:
        self._load()
