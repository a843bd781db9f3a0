"""Who is calling: private API keys, OAuth bearer tokens, and the scopes they carry.

Klaviyo accepts ``Authorization: Klaviyo-API-Key pk_…`` (the scheme word is
literal) and ``Authorization: Bearer <access token>`` on ``/api/*`` (digest §2).
A missing header, another scheme or an unknown credential is a 401
``not_authenticated``; a known credential lacking one of the operation's
scopes is a 403 ``permission_denied`` naming the missing scopes.

Rate limits are per account for private keys (every key of the account
shares one quota) and per OAuth installation for bearer tokens, so a
:class:`Principal` carries the bucket it draws from.

Secrets never appear in reprs or error details: stores show counts only.
"""

from __future__ import annotations

import random
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from kbridge import catalog
from kbridge.emulator.http._spectables import OPTIONAL_COMPANY_ID
from kbridge.emulator.http.errors import HttpProblem

__all__ = [
    "ALL_SCOPES",
    "InMemoryTokenStore",
    "KeyStore",
    "Principal",
    "TokenGrant",
    "TokenStore",
    "authenticate",
    "authenticate_client",
    "generate_private_key",
    "require_scopes",
]

_ALPHANUMERIC = string.ascii_letters + string.digits
_KEY_BODY_LENGTH = 34

#: Every scope any operation in the catalogue asks for (the full-access key has them all).
ALL_SCOPES: frozenset[str] = frozenset(
    scope for op in catalog.all_operations() for scope in op.scopes
)

_MISSING_SCHEME = "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    kind: Literal["api_key", "oauth", "public"]
    #: the rate-limit bucket: the account id (keys), the OAuth installation id (tokens),
    #: or ``public:<company_id>`` (client endpoints, apart from the private API's quota)
    bucket: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What an OAuth access token stands for."""

    installation_id: str
    scopes: frozenset[str]
    expires_at: datetime | None = None


class TokenStore(Protocol):
    """Where bearer tokens are looked up (the OAuth server and the control plane fill it)."""

    def lookup(self, token: str) -> TokenGrant | None: ...


@dataclass
class InMemoryTokenStore:
    """Bearer tokens: issued by the OAuth server (``/oauth/token``) or ``/_emulator/tokens``.

    Expiry is checked by :func:`authenticate` against simulated time, so an
    expired token stays here until revoked; the OAuth server revokes the
    tokens of a grant it takes down.
    """

    _grants: dict[str, TokenGrant] = field(default_factory=dict, repr=False)

    def issue(
        self,
        scopes: Iterable[str],
        *,
        installation_id: str,
        expires_at: datetime | None = None,
    ) -> str:
        token = secrets.token_urlsafe(32)
        self._grants[token] = TokenGrant(installation_id, frozenset(scopes), expires_at)
        return token

    def revoke(self, token: str) -> None:
        self._grants.pop(token, None)

    def lookup(self, token: str) -> TokenGrant | None:
        return self._grants.get(token)

    def __repr__(self) -> str:
        return f"InMemoryTokenStore(<{len(self._grants)} tokens>)"


def generate_private_key(seed: int) -> str:
    """The full-access key for ``seed``: ``pk_`` + 34 alphanumerics, the same on every run.

    Deterministic so that a test suite (or a developer's shell history) can
    rely on the key of a seeded account without reading it from the server.
    """
    rng = random.Random(f"kbridge-emulator-private-key:{seed}")
    return "pk_" + "".join(rng.choice(_ALPHANUMERIC) for _ in range(_KEY_BODY_LENGTH))


def _new_private_key() -> str:
    return "pk_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(_KEY_BODY_LENGTH))


class KeyStore:
    """The account's private keys and their scopes (existing keys cannot be edited)."""

    def __init__(self, full_access_key: str) -> None:
        self.full_access_key = full_access_key
        self._scopes: dict[str, frozenset[str]] = {full_access_key: ALL_SCOPES}

    def mint(self, scopes: Iterable[str]) -> str:
        """A new key with exactly ``scopes``; unknown scopes are refused with ValueError."""
        wanted = frozenset(scopes)
        unknown = sorted(wanted - ALL_SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
        key = _new_private_key()
        self._scopes[key] = wanted
        return key

    def lookup(self, key: str) -> frozenset[str] | None:
        return self._scopes.get(key)

    def __len__(self) -> int:
        return len(self._scopes)

    def __repr__(self) -> str:
        return f"KeyStore(<{len(self._scopes)} keys>)"


def _unauthenticated(detail: str) -> HttpProblem:
    return HttpProblem(401, "not_authenticated", detail)


def authenticate(
    authorization: str | None,
    *,
    keys: KeyStore,
    tokens: TokenStore,
    account_id: str,
    now: datetime,
) -> Principal:
    """The caller named by an ``Authorization`` header value, or a 401 ``HttpProblem``."""
    if not authorization:
        raise _unauthenticated(_MISSING_SCHEME)
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme == "Klaviyo-API-Key" and credential:
        key_scopes = keys.lookup(credential)
        if key_scopes is None:
            raise _unauthenticated("Incorrect authentication credentials.")
        return Principal("api_key", account_id, key_scopes)
    if scheme == "Bearer" and credential:
        grant = tokens.lookup(credential)
        if grant is None:
            raise _unauthenticated("Incorrect authentication credentials.")
        if grant.expires_at is not None and grant.expires_at <= now:
            raise _unauthenticated("Authentication token has expired.")
        return Principal("oauth", grant.installation_id, grant.scopes)
    raise _unauthenticated(_MISSING_SCHEME)


def authenticate_client(
    authorization: str | None,
    company_id: str | None,
    operation: catalog.Operation,
    *,
    account_id: str,
) -> Principal:
    """The caller of a client endpoint (``/client/…``), named by the public ``company_id``.

    Browsers and apps hold no secret, so a private key here means it was
    shipped to them: refused with 401. The caller may do exactly what the
    operation does (its scopes), drawing on limits of its own.
    """
    if authorization and authorization.strip().startswith("Klaviyo-API-Key"):
        raise HttpProblem(
            401,
            "not_authenticated",
            "Private API keys are not accepted on client endpoints; "
            "pass the account's public key as company_id.",
        )
    if not company_id and operation.operation_id in OPTIONAL_COMPANY_ID:
        # a Klaviyo-wide resource: nobody to name, and the same answer for everyone
        return Principal("public", f"public:{account_id}", frozenset(operation.scopes))
    if not company_id:
        raise HttpProblem(
            400,
            "invalid",
            "The company_id query parameter (the account's public key) is required.",
            parameter="company_id",
        )
    if company_id != account_id:
        raise HttpProblem(
            400,
            "invalid",
            "company_id is not the public key of an account.",
            parameter="company_id",
        )
    return Principal("public", f"public:{company_id}", frozenset(operation.scopes))


def require_scopes(principal: Principal, operation: catalog.Operation) -> None:
    """403 ``permission_denied`` naming every scope of ``operation`` the caller lacks."""
    missing = [scope for scope in operation.scopes if scope not in principal.scopes]
    if missing:
        raise HttpProblem(
            403,
            "permission_denied",
            f"You do not have permission to perform this action. "
            f"Missing scope(s) for {operation.operation_id}: {', '.join(missing)}.",
        )
