"""Analytics: SQL over the synced warehouse (never the API).

Every analysis is a function ``fn(warehouse, account_id, *, …) -> Frame``
reading the tables `kbridge sync` writes (docs/warehouse.md).
"""

from __future__ import annotations

from kbridge.analytics.attribution import Windows, attribution
from kbridge.analytics.campaigns import CampaignPerformance, campaign_performance
from kbridge.analytics.churn import (
    Churn,
    ChurnTruthScore,
    churn,
    churn_vs_truth,
    score_against_truth,
)
from kbridge.analytics.consent import Consent, ConsentMetrics, consent
from kbridge.analytics.errors import AnalyticsError
from kbridge.analytics.frame import Frame
from kbridge.analytics.lifecycle import STAGES, Lifecycle, LifecycleRules, lifecycle
from kbridge.analytics.products import Products, top_products
from kbridge.analytics.rfm import DEFAULT_SEGMENTS, RFM, SegmentRule, rfm

__all__ = [
    "DEFAULT_SEGMENTS",
    "RFM",
    "STAGES",
    "AnalyticsError",
    "CampaignPerformance",
    "Churn",
    "ChurnTruthScore",
    "Consent",
    "ConsentMetrics",
    "Frame",
    "Lifecycle",
    "LifecycleRules",
    "Products",
    "SegmentRule",
    "Windows",
    "attribution",
    "campaign_performance",
    "churn",
    "churn_vs_truth",
    "consent",
    "lifecycle",
    "rfm",
    "score_against_truth",
    "top_products",
]
