"""Warehouse → Klaviyo in bulk: profiles through import jobs, changed rows only, resumable.

May import: api, warehouse, core, catalog.

    async with AsyncClient(api_key) as client:
        summary = await push_profiles(client, rows, warehouse=wh, id_column="email",
                                      properties=["churn_risk"], list_id="Y6nRLr")

State lives in the warehouse (``push_state``, ``push_jobs``, ``push_errors``; see
:mod:`kbridge.push.tables` and ``docs/push.md``).
"""

from __future__ import annotations

from kbridge.push._engine import JobLimits, PushInputError, PushSummary, account_of, forget
from kbridge.push.events import EVENT_LIMITS, PUSH_EVENTS, push_events
from kbridge.push.profiles import (
    IDENTITY_COLUMNS,
    PROFILE_LIMITS,
    PUSH_PROFILES,
    PollPolicy,
    push_profiles,
)
from kbridge.push.source import Source, read_source
from kbridge.push.subscriptions import PUSH_SUBSCRIPTIONS, consent_of, push_subscriptions
from kbridge.push.tables import PUSH_ERRORS, PUSH_JOBS, PUSH_STATE, PUSH_TABLES

__all__ = [
    "EVENT_LIMITS",
    "IDENTITY_COLUMNS",
    "PROFILE_LIMITS",
    "PUSH_ERRORS",
    "PUSH_EVENTS",
    "PUSH_JOBS",
    "PUSH_PROFILES",
    "PUSH_STATE",
    "PUSH_SUBSCRIPTIONS",
    "PUSH_TABLES",
    "JobLimits",
    "PollPolicy",
    "PushInputError",
    "PushSummary",
    "Source",
    "account_of",
    "consent_of",
    "forget",
    "push_events",
    "push_profiles",
    "push_subscriptions",
    "read_source",
]
