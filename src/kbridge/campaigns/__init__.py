"""Publishing workflows: campaigns (publish, schedule, cancel, revert, status, performance),
templates (push by name, render) and flows (create from a file, status, preview).

May import: api, warehouse, core, catalog. Each workflow takes an
:class:`~kbridge.api.AsyncClient`; the CLI (``kbridge campaigns publish`` …) is
a thin layer over these functions. Errors are in :mod:`kbridge.campaigns.errors`.
"""

from __future__ import annotations

from kbridge.campaigns._common import scopes_for
from kbridge.campaigns.errors import (
    AudienceEmptyError,
    DefinitionError,
    InvalidKeyError,
    MissingScopesError,
    PublishError,
    SenderNotVerifiedError,
    SendFailedError,
    SendTimeInPastError,
)
from kbridge.campaigns.flows import (
    FlowState,
    PreviewResult,
    build_definition,
    create_flow,
    preview_flow,
    set_flow_status,
)
from kbridge.campaigns.performance import (
    CAMPAIGN_PERFORMANCE,
    MessagePerformance,
    PerformanceReport,
    campaign_performance,
    save_performance,
)
from kbridge.campaigns.publish import (
    CampaignState,
    PublishRequest,
    campaign_status,
    cancel,
    publish,
    revert,
    schedule,
)
from kbridge.campaigns.templates import (
    PushResult,
    RenderedTemplate,
    push_template,
    render_template,
)

__all__ = [
    "CAMPAIGN_PERFORMANCE",
    "AudienceEmptyError",
    "CampaignState",
    "DefinitionError",
    "FlowState",
    "InvalidKeyError",
    "MessagePerformance",
    "MissingScopesError",
    "PerformanceReport",
    "PreviewResult",
    "PublishError",
    "PublishRequest",
    "PushResult",
    "RenderedTemplate",
    "SendFailedError",
    "SendTimeInPastError",
    "SenderNotVerifiedError",
    "build_definition",
    "campaign_performance",
    "campaign_status",
    "cancel",
    "create_flow",
    "preview_flow",
    "publish",
    "push_template",
    "render_template",
    "revert",
    "save_performance",
    "schedule",
    "scopes_for",
    "set_flow_status",
]
