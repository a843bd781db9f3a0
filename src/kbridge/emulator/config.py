"""The emulator's settings, frozen. The CLI builds one from its options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["EmulatorConfig", "OAuthConsent", "RateLimitAlgorithm"]

RateLimitAlgorithm = Literal["fixed-window", "leaky-bucket"]
#: how ``/oauth/authorize`` answers: approve at once, show a consent form, or refuse
OAuthConsent = Literal["auto", "page", "deny"]


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    seed: int = 42
    #: independent accounts served at once; account ``i`` is generated from ``seed + i``
    #: (on its first use) and has its own keys, rate-limit windows and daily caps
    accounts: int = 1
    #: synthetic account size; 0 profiles gives an empty account (metrics still exist)
    profiles: int = 1000
    events: int = 10000
    #: generated beyond the account's small fixed catalogue, coupons and custom-object
    #: records, which benchmarks need by the thousand: catalogue items (one variant each)
    #: spread over ``extra_catalog_categories`` more categories (else the fixed ones)
    extra_catalog_items: int = 0
    extra_catalog_categories: int = 0
    #: more coupons, each with ``codes_per_extra_coupon`` unassigned codes
    extra_coupons: int = 0
    codes_per_extra_coupon: int = 0
    #: more records of the generated custom object type
    extra_custom_object_records: int = 0
    #: ``None`` = off; otherwise a factor applied to every published limit (1.0 = spec)
    rate_limit_factor: float | None = 1.0
    rate_limit_algorithm: RateLimitAlgorithm = "fixed-window"
    #: daily caps by operation id, replacing the spec's (not scaled by the factor); ``None``
    #: removes a cap. Klaviyo's real caps are partly unverified (image-upload: 100 or 500?)
    daily_caps: Mapping[str, int | None] = field(default_factory=dict)
    #: the timezone whose midnight starts a new quota day (unverified: UTC is assumed)
    daily_cap_timezone: str = "UTC"
    #: the full-access private key; generated from the seed when ``None``
    api_key: str | None = None
    #: answer a missing ``revision`` header with 400 (Klaviyo's behaviour is unverified)
    require_revision: bool = True
    #: accept ``not(...)`` around a single allowed condition (unverified in Klaviyo)
    allow_not_filter: bool = True
    #: simulated seconds before an async job (bulk import, subscribe, …) completes
    job_delay_seconds: float = 0.0
    #: profiles a bulk import job works through per simulated second once it leaves the
    #: queue (``processing`` meanwhile); ``None`` processes it at once
    import_profiles_per_second: float | None = None
    #: simulated seconds before a data-privacy deletion job removes the profile
    deletion_delay_seconds: float = 60.0
    #: host used in absolute ``links`` (defaults to the address the server listens on)
    public_base_url: str | None = None
    #: optional JSON file to load the account from instead of generating it
    data_file: str | None = None
    #: revisions served like the spec's besides the implemented ones (2026-07-15, 2026-10-15);
    #: any other gets Klaviyo's 400
    extra_revisions: tuple[str, ...] = field(default_factory=tuple)
    #: fault injection on ``/api/*``, e.g. ``"http500=0.02,latency=20ms±10ms"`` (``None`` = off)
    faults: str | None = None
    #: ``/oauth/authorize``: ``auto`` approves, ``page`` shows a consent form, ``deny`` refuses
    oauth_consent: OAuthConsent = "auto"
    #: simulated seconds an OAuth access token lives (``expires_in`` in the token response)
    oauth_access_token_ttl: float = 3600.0
    #: simulated seconds an authorization code can be exchanged
    oauth_code_ttl: float = 600.0
    #: simulated seconds a refresh token lives after it is issued (``None`` = forever)
    oauth_refresh_token_ttl: float | None = 90 * 24 * 3600.0
    #: when set, every ``/_emulator/…`` request must carry ``Authorization: Bearer <token>``
    #: (and may then come from beyond loopback); required to bind beyond loopback
    admin_token: str | None = field(default=None, repr=False)
    #: real seconds a connection may take to send a request's header; then it is closed
    header_timeout: float = 10.0
    #: real seconds a request's body may take to arrive once its header is in; then 408
    body_timeout: float = 30.0
