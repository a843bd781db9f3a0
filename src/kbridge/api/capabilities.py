"""What each workflow calls, declared once; a capability is the union of its workflows.

A :class:`Workflow` names the catalogue operations one workflow (sync, a
privacy access report, publishing a campaign, …) may call. A
:class:`Capability` — what a user grants a key for (``kbridge scopes --for
sync``) — is a set of workflows, so its operations, and from them the least
scopes (:mod:`kbridge.connections.scopes`), are computed, never copied.

The declarations live here, below the workflows, because the layers that
plan scopes (``connections``) may not import the workflows (``sync``,
``privacy``, ``campaigns``), while every workflow may import ``api``.

A declaration is held to the truth at run time: a workflow runs its calls
inside ``with WORKFLOW.calls():``, and the client checks each operation it
sends against every workflow active in the current context. An operation a
workflow did not declare emits :class:`UndeclaredOperationWarning` — an
error under the test suite's ``filterwarnings = error``, a warning (the
call still goes out) for users, whose key may well hold the scope anyway.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from kbridge import catalog

__all__ = [
    "ANALYTICS_PUSH",
    "CAMPAIGN_CONTROL",
    "CAMPAIGN_PERFORMANCE",
    "CAMPAIGN_PUBLISH",
    "CAMPAIGN_SCHEDULE",
    "CAPABILITIES",
    "CONNECT",
    "FLOW_CREATE",
    "FLOW_PREVIEW",
    "FLOW_STATUS",
    "PRIVACY_ACCESS",
    "PRIVACY_DELETE",
    "PUSH_EVENTS",
    "PUSH_PROFILES",
    "PUSH_SUBSCRIPTIONS",
    "SYNC",
    "TEMPLATE_PUSH",
    "TEMPLATE_RENDER",
    "WORKFLOWS",
    "Capability",
    "UndeclaredOperationWarning",
    "Workflow",
    "active_workflows",
    "check_operation",
]


P = ParamSpec("P")
T = TypeVar("T")


class UndeclaredOperationWarning(UserWarning):
    """A workflow called an operation it does not declare (so its capability's scopes miss it)."""


@dataclass(frozen=True, slots=True)
class Workflow:
    """One workflow and every catalogue operation it may call (its one declaration)."""

    name: str
    operations: tuple[str, ...]

    def __post_init__(self) -> None:
        for operation_id in self.operations:
            if catalog.get(operation_id).auth != "private":
                raise ValueError(f"{self.name}: {operation_id} is not a private-key operation")

    @classmethod
    def of(cls, name: str, *parts: str | Workflow) -> Workflow:
        """A workflow calling ``parts``: operation ids, or whole workflows it runs inside."""
        ops: dict[str, None] = {}
        for part in parts:
            for op in part.operations if isinstance(part, Workflow) else (part,):
                ops.setdefault(op, None)
        return cls(name, tuple(ops))

    @contextmanager
    def calls(self) -> Iterator[None]:
        """Run the block as this workflow: each operation sent must be one it declares."""
        token = _ACTIVE.set((*_ACTIVE.get(), self))
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def runs(self, fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an async workflow entry point so that all its calls run as this workflow."""

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with self.calls():
                return await fn(*args, **kwargs)

        return wrapper


@dataclass(frozen=True, slots=True)
class Capability:
    """What a key is granted for: a name, one line for humans, and the workflows it runs."""

    name: str
    summary: str
    workflows: tuple[Workflow, ...]

    @property
    def operations(self) -> tuple[str, ...]:
        """Every operation its workflows call, each once, in declaration order."""
        return Workflow.of(self.name, *self.workflows).operations


_ACTIVE: ContextVar[tuple[Workflow, ...]] = ContextVar("kbridge_workflows", default=())


def active_workflows() -> tuple[Workflow, ...]:
    """The workflows the current context runs inside, outermost first."""
    return _ACTIVE.get()


def check_operation(operation_id: str) -> None:
    """Warn when ``operation_id`` is not declared by every workflow active here.

    Nested workflows (a flow preview publishing a campaign) must each declare
    it: a key planned for the outer one has to serve the inner one's calls.
    """
    for workflow in _ACTIVE.get():
        if operation_id not in workflow.operations:
            warnings.warn(
                UndeclaredOperationWarning(
                    f"workflow {workflow.name!r} called {operation_id!r}, which it does not "
                    "declare in kbridge.api.capabilities; its capability's scopes may miss it"
                ),
                stacklevel=3,
            )


# -- the declarations ------------------------------------------------------------------------

#: "test my key": what every connection must be able to do
CONNECT = Workflow.of("connect", "get_accounts")
#: the listing (and parent listing) of every stream the sync extracts, plus the two reports
SYNC = Workflow.of(
    "sync",
    "get_accounts",
    "get_profiles",
    "get_lists",
    "get_profiles_for_list",
    "get_segments",
    "get_profiles_for_segment",
    "get_metrics",
    "get_events",
    "get_campaigns",
    "get_flows",
    "get_flow_action_messages",
    "get_templates",
    "get_tags",
    "query_campaign_values",
    "query_flow_series",
    "get_catalog_items",
    "get_catalog_variants",
    "get_catalog_categories",
    "get_items_for_catalog_category",
    "get_coupons",
    "get_coupon_codes_for_coupon",
    "get_object_types",
    "get_records_for_object_type",
    "query_metric_aggregates",
    "get_tag_groups",
    "get_images",
    "get_forms",
)
#: find the person, then everything kbridge can show about them
PRIVACY_ACCESS = Workflow.of(
    "privacy-access",
    "get_profiles",
    "get_profile",
    "get_lists_for_profile",
    "get_segments_for_profile",
    "get_events",
)
#: find the person, ask for the deletion; get_accounts: whose warehouse rows to purge after
PRIVACY_DELETE = Workflow.of(
    "privacy-delete", "get_profiles", "request_profile_deletion", "get_accounts"
)
#: render a template (by id) for a context
TEMPLATE_RENDER = Workflow.of("templates.render", "render_template")
#: create or update a template by name
TEMPLATE_PUSH = Workflow.of("templates.push", "get_templates", "create_template", "update_template")
#: a campaign from a request (an HTML file becomes a template), its audience checked, sent
CAMPAIGN_PUBLISH = Workflow.of(
    "campaigns.publish",
    "create_campaign",
    "get_messages_for_campaign",
    "create_template",
    "assign_template_to_campaign_message",
    "delete_template",
    "refresh_campaign_recipient_estimation",
    "get_campaign_recipient_estimation_job",
    "get_campaign_recipient_estimation",
    "send_campaign",
    "get_campaign",
    "delete_campaign",
)
#: move an existing campaign's send time
CAMPAIGN_SCHEDULE = Workflow.of(
    "campaigns.schedule",
    "get_campaign",
    "update_campaign",
    "get_messages_for_campaign",
    "send_campaign",
)
#: read, cancel or revert a send
CAMPAIGN_CONTROL = Workflow.of("campaigns.control", "cancel_campaign_send", "get_campaign")
#: the values report for a campaign (conversion metric, account timezone)
CAMPAIGN_PERFORMANCE = Workflow.of(
    "campaigns.performance", "get_metrics", "query_campaign_values", "get_accounts"
)
#: a flow from a definition file (its trigger metric and templates by name)
FLOW_CREATE = Workflow.of("flows.create", "get_metrics", "get_templates", "create_flow")
#: switch a flow live, draft or manual
FLOW_STATUS = Workflow.of("flows.status", "update_flow", "get_flow")
#: a flow's first email sent to a test profile: a one-off campaign to a one-member list
FLOW_PREVIEW = Workflow.of(
    "flows.preview",
    "get_flow",
    "get_event",
    "get_events",
    "get_profiles",
    "get_lists",
    "create_list",
    "get_profiles_for_list",
    "add_profiles_to_list",
    "remove_profiles_from_list",
    TEMPLATE_RENDER,
    CAMPAIGN_PUBLISH,
)
#: a computed audience pushed to the list of that name (created if missing, pruned on request)
#: warehouse rows as profiles (bulk import jobs, polled, their import errors read)
PUSH_PROFILES = Workflow.of(
    "push.profiles",
    "get_accounts",
    "bulk_import_profiles",
    "get_bulk_import_profiles_jobs",
    "get_bulk_import_profiles_job",
    "get_errors_for_bulk_import_profiles_job",
)
#: segment members onto a list and churn_risk onto profiles, both through PUSH_PROFILES
ANALYTICS_PUSH = Workflow.of(
    "analytics-push",
    "get_lists",
    "create_list",
    "add_profiles_to_list",
    "get_profiles_for_list",
    "remove_profiles_from_list",
    PUSH_PROFILES,
)
#: warehouse rows as events (bulk event jobs)
PUSH_EVENTS = Workflow.of("push.events", "get_accounts", "bulk_create_events")
#: recorded consent as subscriptions (bulk subscribe and unsubscribe jobs)
PUSH_SUBSCRIPTIONS = Workflow.of(
    "push.subscriptions", "get_accounts", "bulk_subscribe_profiles", "bulk_unsubscribe_profiles"
)

WORKFLOWS: Mapping[str, Workflow] = MappingProxyType(
    {
        w.name: w
        for w in (
            CONNECT,
            SYNC,
            PRIVACY_ACCESS,
            PRIVACY_DELETE,
            TEMPLATE_RENDER,
            TEMPLATE_PUSH,
            CAMPAIGN_PUBLISH,
            CAMPAIGN_SCHEDULE,
            CAMPAIGN_CONTROL,
            CAMPAIGN_PERFORMANCE,
            FLOW_CREATE,
            FLOW_STATUS,
            FLOW_PREVIEW,
            ANALYTICS_PUSH,
            PUSH_PROFILES,
            PUSH_EVENTS,
            PUSH_SUBSCRIPTIONS,
        )
    }
)


def _capability(name: str, summary: str, *workflows: Workflow) -> Capability:
    return Capability(name, summary, workflows)


#: every fixed capability, in the order kbridge lists them (``actions:<resource>`` are
#: derived from the action registry by :mod:`kbridge.connections.scopes`)
CAPABILITIES: Mapping[str, Capability] = MappingProxyType(
    {
        c.name: c
        for c in (
            _capability(
                "connect", "verify the key and read the account (sender, timezone)", CONNECT
            ),
            _capability("sync", "extract every stream into the warehouse", SYNC),
            _capability(
                "privacy-access",
                "find a person and export what Klaviyo holds about them",
                PRIVACY_ACCESS,
            ),
            _capability(
                "privacy-delete", "find a person and request their deletion", PRIVACY_DELETE
            ),
            _capability(
                "campaigns-publish",
                "create, schedule, send and cancel campaigns",
                CAMPAIGN_PUBLISH,
                CAMPAIGN_SCHEDULE,
                CAMPAIGN_CONTROL,
                CAMPAIGN_PERFORMANCE,
            ),
            _capability("templates", "manage email templates", TEMPLATE_PUSH, TEMPLATE_RENDER),
            _capability(
                "flows",
                "create flows from a definition, read them and switch them on or off",
                FLOW_CREATE,
                FLOW_STATUS,
            ),
            _capability(
                "flows-preview",
                "send a flow's first email to a test profile (a one-off campaign)",
                FLOW_PREVIEW,
            ),
            _capability("analytics", "analyse the warehouse (no API calls)"),
            _capability(
                "analytics-push", "push a computed audience back as a Klaviyo list", ANALYTICS_PUSH
            ),
            _capability(
                "push",
                "push warehouse rows back as profiles, events and subscriptions (bulk jobs)",
                PUSH_PROFILES,
                PUSH_EVENTS,
                PUSH_SUBSCRIPTIONS,
            ),
        )
    }
)
