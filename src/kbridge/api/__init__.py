"""The Klaviyo client: one request pipeline (auth, revision, JSON:API, pagination,
rate limiting, retries, errors) behind AsyncClient and a synchronous Client.

May import: core, catalog.

    async with AsyncClient("pk_…") as client:
        async for profile in client.paginate("get_profiles", params={"filter": "..."}):
            ...
"""

from __future__ import annotations

from kbridge.api.auth import (
    BearerAuth,
    PrivateKeyAuth,
    RefreshingTokenProvider,
    StaticTokenProvider,
    TokenProvider,
)
from kbridge.api.client import (
    DEFAULT_BASE_URL,
    ApiResponse,
    AsyncClient,
    Client,
    ClientConfig,
)
from kbridge.api.errors import (
    ApiError,
    AuthenticationError,
    ChallengeError,
    ConflictError,
    FilterError,
    InvalidCredentialsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
)
from kbridge.api.filters import Condition, parse_filter, validate_filter
from kbridge.api.jsonapi import Document, Resource, build_document, decode_document, identifiers
from kbridge.api.ratelimit import DailyBudget, LimiterConfig, RateLimiter
from kbridge.api.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiError",
    "ApiResponse",
    "AsyncClient",
    "AuthenticationError",
    "BearerAuth",
    "ChallengeError",
    "Client",
    "ClientConfig",
    "Condition",
    "ConflictError",
    "DailyBudget",
    "Document",
    "FilterError",
    "InvalidCredentialsError",
    "InvalidRequestError",
    "LimiterConfig",
    "NotFoundError",
    "PermissionDeniedError",
    "PrivateKeyAuth",
    "QuotaExhaustedError",
    "RateLimitedError",
    "RateLimiter",
    "RefreshingTokenProvider",
    "Resource",
    "RetryPolicy",
    "ServerError",
    "StaticTokenProvider",
    "TokenProvider",
    "TransportError",
    "UnexpectedResponseError",
    "build_document",
    "decode_document",
    "error_from_response",
    "identifiers",
    "parse_filter",
    "validate_filter",
]
