"""The REST API's request and response bodies: typed once, validated and documented from here.

Requests are strict (a number is not a string, unknown fields are refused)
so that a mistake is a 422 naming the field, not a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

__all__ = [
    "JOB_KINDS",
    "JOB_STATES",
    "CampaignOut",
    "ConnectionIn",
    "ConnectionOut",
    "ErrorOut",
    "JobCreated",
    "JobEventOut",
    "JobIn",
    "JobKind",
    "JobOut",
    "JobState",
    "OAuthStartIn",
    "OAuthStartOut",
    "PrivacyRequestIn",
    "PrivacyRequestJob",
    "PrivacyRequestOut",
    "RotateIn",
    "ScheduleIn",
    "ScheduleOut",
    "ScopeCheckOut",
]

#: the job kinds of issue #20; the job engine (``kbridge.service.jobs``) runs them
JobKind = Literal[
    "sync",
    "privacy_access",
    "privacy_delete",
    "campaign_publish",
    "campaign_schedule",
    "campaign_cancel",
    "campaign_revert",
    "report",
    "segment_push",
]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATES: tuple[str, ...] = get_args(JobState)


def _number_as_text(value: object) -> object:
    # `"rate_limits": 0.5` means what `--rate-limits 0.5` means; a bool is not a factor
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConnectionIn(_Strict):
    """Connect a Klaviyo account by private API key (verified before anything is stored)."""

    name: str = Field(description="letters, digits, '.', '_' or '-'; unique in the workspace")
    api_key: SecretStr = Field(description="a private API key, pk_…")
    base_url: str | None = Field(
        default=None, description="the API's base URL (default: Klaviyo's; an emulator's in tests)"
    )
    rate_limits: Annotated[str, BeforeValidator(_number_as_text)] = Field(
        default="spec",
        description="'spec' (Klaviyo's published limits), 'off', or a factor of them such as 0.5",
    )
    warehouse: str | None = Field(
        default=None,
        description="duckdb:////absolute/file.duckdb or postgresql://…; default: a DuckDB file "
        "named after the connection in the service's data directory",
    )


class ConnectionOut(BaseModel):
    id: str
    name: str
    kind: str
    account_id: str
    account_name: str | None
    base_url: str
    rate_limits: str
    warehouse: str = Field(description="where its syncs go (a password, if any, is masked)")
    capabilities: list[str]
    scopes: list[str]
    connected_at: datetime
    rotated_at: datetime | None


class JobIn(_Strict):
    """Queue a job for one of the workspace's connections."""

    kind: JobKind
    connection: str = Field(description="the connection's id (or its name)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description='for sync: {"streams"?: [names], "start_date"?: ISO date-time with '
        'zone, "full_refresh"?: bool}',
    )


class JobCreated(BaseModel):
    id: str
    state: JobState


class JobOut(BaseModel):
    id: str
    kind: str
    state: JobState
    connection: str | None
    params: dict[str, Any]
    progress: dict[str, Any] | None
    error: str | None = Field(description="the last error, one line")
    result: dict[str, Any] | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobEventOut(BaseModel):
    at: datetime
    event: str
    detail: dict[str, Any] | None


class ScheduleIn(_Strict):
    """Repeat a job for a connection: daily at a local time, or by a cron expression."""

    connection: str = Field(description="the connection's id (or its name)")
    kind: JobKind = "sync"
    daily_at: str | None = Field(default=None, description="HH:MM, local to timezone")
    cron: str | None = Field(default=None, description="5 fields, read in timezone")
    # IANA names are short; a long one reaches zoneinfo as an over-long file name (OSError)
    timezone: str = Field(
        default="UTC", max_length=64, description="an IANA name, e.g. Europe/Berlin"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="as for POST /jobs")


class ScheduleOut(BaseModel):
    id: str
    connection: str
    kind: str
    params: dict[str, Any]
    daily_at: str | None
    cron: str | None
    timezone: str
    enabled: bool
    next_due: datetime | None


class RotateIn(_Strict):
    """Replace a connection's private key (verified first; the old one is kept if refused)."""

    api_key: SecretStr = Field(description="the new private API key, pk_…, of the same account")


class OAuthStartIn(_Strict):
    """Start connecting a Klaviyo account through an OAuth app (authorization code + PKCE)."""

    name: str = Field(description="letters, digits, '.', '_' or '-'; unique in the workspace")
    client_id: str = Field(min_length=1, max_length=256, description="the OAuth app's client id")
    client_secret: SecretStr = Field(description="the OAuth app's client secret")
    base_url: str | None = Field(default=None, description="the API's base URL")
    oauth_base_url: str | None = Field(
        default=None,
        description="where /oauth/authorize, /oauth/token and /oauth/revoke are (default: "
        "Klaviyo's; an emulator's base_url when base_url is one)",
    )
    capabilities: list[str] = Field(
        default_factory=lambda: ["sync", "privacy-access", "privacy-delete"],
        description="what the connection is for: its scopes are the least these need",
    )
    redirect_uri: str | None = Field(
        default=None,
        description="this API's callback as registered with the app (default: "
        "<this server>/api/v1/connections/oauth/callback)",
    )
    rate_limits: Annotated[str, BeforeValidator(_number_as_text)] = "spec"
    warehouse: str | None = None


class OAuthStartOut(BaseModel):
    authorize_url: str = Field(description="open it in a browser to consent in Klaviyo")
    redirect_uri: str
    scopes: list[str]
    expires_at: datetime = Field(description="the flow is forgotten after this")


class CampaignOut(BaseModel):
    id: str
    name: str
    status: str = Field(description="Klaviyo's: Draft, Scheduled, Sending, Sent, Cancelled…")
    channel: str
    send_time: str | None
    created_at: str | None
    updated_at: str | None


class CapabilityScopesOut(BaseModel):
    capability: str
    summary: str
    needs: list[str] = Field(description="the least scopes the capability's operations need")
    missing: list[str] = Field(description="needed but not granted to the stored credential")
    ok: bool


class ScopeCheckOut(BaseModel):
    connection: str
    granted: list[str] = Field(description="the scopes the credential was found to have")
    capabilities: list[CapabilityScopesOut]


class PrivacyRequestIn(_Strict):
    """A data subject's request: a report of their data (access) or its deletion."""

    kind: Literal["access", "deletion"]
    connection: str = Field(description="the connection's id (or its name)")
    email: str | None = Field(default=None, description="the subject's email address")
    phone: str | None = Field(default=None, description="or their phone number, E.164 (+…)")
    regulation: Literal["gdpr", "ccpa"] = Field(
        default="gdpr", description="sets the due date: 30 days (GDPR) or 45 days (CCPA)"
    )


class PrivacyRequestJob(BaseModel):
    id: str
    state: JobState | None


class PrivacyRequestOut(BaseModel):
    id: str
    kind: Literal["access", "deletion"]
    connection: str | None
    regulation: str
    subject_type: str | None = Field(description="email or phone (the subject itself is not kept)")
    subject_hash: str = Field(description="the subject's keyed hash, as in the privacy audit log")
    state: Literal["received", "requested", "confirmed", "failed", "cancelled"]
    job: PrivacyRequestJob | None
    detail: str | None = Field(description="why it failed, one line")
    received_at: datetime
    due_at: datetime | None
    requested_at: datetime | None
    confirmed_at: datetime | None


class _ErrorBody(BaseModel):
    status: int
    message: str
    field: str | None = None
    errors: list[dict[str, str]] | None = None


class ErrorOut(BaseModel):
    error: _ErrorBody
