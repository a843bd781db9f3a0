"""The emulator's OAuth 2.0 authorization server, without HTTP: clients, codes, grants.

Klaviyo's flow (digest §4) is the authorization-code grant with mandatory
PKCE S256, then refresh-token grants. What this module decides:

- **Clients** are registered through the control plane with exact redirect
  URIs; a client authenticates with its id and secret (compared in constant
  time).
- **Codes** are single-use and live ``code_ttl`` simulated seconds. A code
  presented with a wrong PKCE verifier is burned (whoever holds it is not
  the client that asked for it); presenting a code a second time also
  revokes what the first exchange issued (RFC 6749 §4.1.2).
- **Grants** (one per approved authorization) own the current refresh token
  and every access token issued under it. Refreshing rotates the refresh
  token: the old one answers ``invalid_grant`` from then on. Revoking a
  refresh token kills its grant, access tokens included; revoking an access
  token kills only that token.
- **Access tokens** land in the emulator's bearer-token store with the
  granted scopes and a simulated expiry, so ``/api/*`` enforces them like a
  key's scopes, and ``POST /_emulator/clock`` can expire them. Their
  rate-limit bucket is the installation: (account, client id).

Time is the simulated clock throughout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from kbridge.emulator.http.auth import ALL_SCOPES, InMemoryTokenStore
from kbridge.emulator.oauth.errors import AuthorizeError, OAuthError
from kbridge.emulator.simclock import SimClock

__all__ = [
    "VERIFIER_PATTERN",
    "AuthorizationRequest",
    "OAuthAuthority",
    "OAuthClient",
    "s256_challenge",
]

#: RFC 7636 §4.1 (and Klaviyo's troubleshooting page): 43–128 unreserved characters
VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
#: a base64url SHA-256 digest without padding is exactly 43 characters
_CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated ``/oauth/authorize`` request, ready to approve or deny."""

    client: OAuthClient
    redirect_uri: str
    scopes: frozenset[str]
    state: str | None
    code_challenge: str


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    challenge: str
    expires_at: datetime
    used: bool = False
    #: the grant the successful exchange created (revoked if the code is replayed)
    grant_id: str | None = None


@dataclass(slots=True)
class _Grant:
    client_id: str
    scopes: frozenset[str]
    refresh_token: str = field(repr=False)
    refresh_expires_at: datetime | None
    access_tokens: set[str] = field(default_factory=set, repr=False)


def _validate_redirect_uri(uri: object) -> str:
    if not isinstance(uri, str) or not uri:
        raise ValueError("every redirect URI must be a non-empty string")
    parts = urlsplit(uri)
    if not parts.scheme:
        raise ValueError(f"redirect URI {uri!r} must be absolute (with a scheme)")
    if parts.scheme in ("http", "https") and not parts.netloc:
        raise ValueError(f"redirect URI {uri!r} has no host")
    if parts.fragment:
        raise ValueError(f"redirect URI {uri!r} must not contain a fragment (RFC 6749 §3.1.2)")
    return uri


def _required(name: str, value: str | None) -> str:
    if not value:
        raise OAuthError("invalid_request", f'The "{name}" parameter is required.')
    return value


class OAuthAuthority:
    """Registered clients, pending codes and live grants of one emulator."""

    def __init__(
        self,
        *,
        clock: SimClock,
        tokens: InMemoryTokenStore,
        account_id: Callable[[], str],
        access_token_ttl: float = 3600.0,
        code_ttl: float = 600.0,
        refresh_token_ttl: float | None = 90 * 24 * 3600.0,
    ) -> None:
        if access_token_ttl <= 0 or code_ttl <= 0:
            raise ValueError("OAuth access-token and code lifetimes must be positive")
        if refresh_token_ttl is not None and refresh_token_ttl <= 0:
            raise ValueError("the OAuth refresh-token lifetime must be positive (or None)")
        self._clock = clock
        self._tokens = tokens
        self._account_id = account_id
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self._clients: dict[str, OAuthClient] = {}
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}
        self._by_refresh: dict[str, str] = {}
        self._rotated: dict[str, str] = {}
        self._by_access: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"OAuthAuthority(<{len(self._clients)} clients, {len(self._grants)} grants>)"

    # -- clients ---------------------------------------------------------------------------

    def register_client(self, redirect_uris: Sequence[object]) -> OAuthClient:
        """A new client allowed to redirect to exactly ``redirect_uris``; ValueError if bad."""
        if isinstance(redirect_uris, str) or not redirect_uris:
            raise ValueError('"redirect_uris" must be a non-empty list of absolute URIs')
        uris = tuple(dict.fromkeys(_validate_redirect_uri(uri) for uri in redirect_uris))
        client = OAuthClient(str(uuid.uuid4()), secrets.token_urlsafe(40), uris)
        self._clients[client.client_id] = client
        return client

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        """The client these credentials name, or ``invalid_client``."""
        if not client_id or client_secret is None:
            raise OAuthError(
                "invalid_client",
                "Client authentication is required: send Authorization: Basic "
                "base64(client_id:client_secret).",
            )
        client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            raise OAuthError("invalid_client", "Client authentication failed.")
        return client

    # -- /oauth/authorize ------------------------------------------------------------------

    def check_authorization(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """Validate an authorization request in RFC 6749 §4.1.2.1 order.

        Client and redirect URI come first: until both are known good, an
        error must not be sent to the redirect URI (it could be an attacker's).
        """
        client_id = params.get("client_id")
        if not client_id:
            raise AuthorizeError(
                "invalid_request", 'The "client_id" parameter is required.', redirectable=False
            )
        client = self._clients.get(client_id)
        if client is None:
            raise AuthorizeError("invalid_client", "Unknown client_id.", redirectable=False)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise AuthorizeError(
                "invalid_request", 'The "redirect_uri" parameter is required.', redirectable=False
            )
        if redirect_uri not in client.redirect_uris:
            raise AuthorizeError(
                "invalid_request",
                "The redirect_uri does not exactly match one registered for this client.",
                redirectable=False,
            )
        if params.get("response_type") != "code":
            raise AuthorizeError(
                "unsupported_response_type",
                'Only response_type "code" is supported.',
                redirectable=True,
            )
        method = params.get("code_challenge_method")
        if method != "S256":
            shown = "missing" if not method else f'"{method}"'
            raise AuthorizeError(
                "invalid_request",
                f'PKCE is required: code_challenge_method must be "S256" (got {shown}).',
                redirectable=True,
            )
        challenge = params.get("code_challenge", "")
        if not _CHALLENGE_PATTERN.match(challenge):
            raise AuthorizeError(
                "invalid_request",
                "code_challenge must be the unpadded base64url SHA-256 of the verifier "
                "(43 characters).",
                redirectable=True,
            )
        return AuthorizationRequest(
            client=client,
            redirect_uri=redirect_uri,
            scopes=self._requested_scopes(params.get("scope")),
            state=params.get("state"),
            code_challenge=challenge,
        )

    @staticmethod
    def _requested_scopes(scope: str | None) -> frozenset[str]:
        requested = frozenset((scope or "").split())
        if not requested:
            raise AuthorizeError(
                "invalid_scope",
                'The "scope" parameter must list at least one scope (space-separated).',
                redirectable=True,
            )
        unknown = sorted(requested - ALL_SCOPES)
        if unknown:
            raise AuthorizeError(
                "invalid_scope", f"Unknown scope(s): {', '.join(unknown)}.", redirectable=True
            )
        return requested

    def issue_code(self, request: AuthorizationRequest) -> str:
        """An approved request's single-use authorization code."""
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(
            client_id=request.client.client_id,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            challenge=request.code_challenge,
            expires_at=self._clock.now() + timedelta(seconds=self.code_ttl),
        )
        return code

    # -- /oauth/token ----------------------------------------------------------------------

    def exchange_code(
        self,
        client: OAuthClient,
        *,
        code: str | None,
        code_verifier: str | None,
        redirect_uri: str | None,
    ) -> dict[str, Any]:
        """The ``authorization_code`` grant: checks code, redirect URI and PKCE; new tokens."""
        code = _required("code", code)
        code_verifier = _required("code_verifier", code_verifier)
        _required("redirect_uri", redirect_uri)
        record = self._codes.get(code)
        if record is None or record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The authorization code is invalid.")
        if record.used:
            if record.grant_id is not None:
                self._revoke_grant(record.grant_id)
            raise OAuthError(
                "invalid_grant",
                "The authorization code was already used; the tokens it granted are revoked.",
            )
        if record.expires_at <= self._clock.now():
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        if redirect_uri != record.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                "The redirect_uri does not match the one used in the authorization request.",
            )
        if not VERIFIER_PATTERN.match(code_verifier):
            raise OAuthError(
                "invalid_request",
                'Invalid "code_verifier": it must match ^[A-Za-z0-9\\-._~]{43,128}$.',
            )
        record.used = True
        if not hmac.compare_digest(s256_challenge(code_verifier), record.challenge):
            raise OAuthError("invalid_grant", "Code challenge failed.")
        grant_id = str(uuid.uuid4())
        record.grant_id = grant_id
        grant = _Grant(
            client_id=client.client_id,
            scopes=record.scopes,
            refresh_token=self._new_refresh_token(grant_id),
            refresh_expires_at=self._refresh_expiry(),
        )
        self._grants[grant_id] = grant
        return self._token_response(grant_id, grant, grant.scopes)

    def refresh(
        self, client: OAuthClient, *, refresh_token: str | None, scope: str | None
    ) -> dict[str, Any]:
        """The ``refresh_token`` grant with rotation; ``scope`` may only narrow the grant."""
        if not refresh_token:
            raise OAuthError("invalid_request", 'The "refresh_token" parameter is required.')
        if refresh_token in self._rotated:
            raise OAuthError(
                "invalid_grant",
                "The refresh token was already used and has been rotated; "
                "use the refresh token from the latest token response.",
            )
        grant_id = self._by_refresh.get(refresh_token)
        grant = self._grants.get(grant_id) if grant_id is not None else None
        if grant_id is None or grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The refresh token is invalid or revoked.")
        if grant.refresh_expires_at is not None and grant.refresh_expires_at <= self._clock.now():
            raise OAuthError("invalid_grant", "The refresh token has expired.")
        scopes = grant.scopes
        if scope is not None:
            scopes = frozenset(scope.split())
            wider = sorted(scopes - grant.scopes)
            if not scopes or wider:
                raise OAuthError(
                    "invalid_scope",
                    "A refresh can only keep or narrow the granted scopes"
                    + (f"; not granted: {', '.join(wider)}." if wider else "."),
                )
        del self._by_refresh[refresh_token]
        self._rotated[refresh_token] = grant_id
        grant.refresh_token = self._new_refresh_token(grant_id)
        grant.refresh_expires_at = self._refresh_expiry()
        return self._token_response(grant_id, grant, scopes)

    # -- /oauth/revoke ---------------------------------------------------------------------

    def revoke(self, client: OAuthClient, token: str | None) -> None:
        """RFC 7009: a refresh token takes its grant down; unknown tokens are a no-op."""
        if not token:
            raise OAuthError("invalid_request", 'The "token" parameter is required.')
        grant_id = self._by_refresh.get(token) or self._by_access.get(token)
        if grant_id is None:
            return
        grant = self._grants.get(grant_id)
        if grant is None:
            return
        if grant.client_id != client.client_id:
            raise OAuthError("invalid_request", "The token was not issued to this client.")
        if token in self._by_refresh:
            self._revoke_grant(grant_id)
        else:
            self._revoke_access_tokens(grant, [token])

    # -- internals -------------------------------------------------------------------------

    def installation_id(self, client_id: str) -> str:
        """The rate-limit bucket of an OAuth installation: (account, client)."""
        return f"oauth:{self._account_id()}:{client_id}"

    def _new_refresh_token(self, grant_id: str) -> str:
        token = secrets.token_urlsafe(48)
        self._by_refresh[token] = grant_id
        return token

    def _refresh_expiry(self) -> datetime | None:
        if self.refresh_token_ttl is None:
            return None
        return self._clock.now() + timedelta(seconds=self.refresh_token_ttl)

    def _token_response(
        self, grant_id: str, grant: _Grant, scopes: frozenset[str]
    ) -> dict[str, Any]:
        access = self._tokens.issue(
            scopes,
            installation_id=self.installation_id(grant.client_id),
            expires_at=self._clock.now() + timedelta(seconds=self.access_token_ttl),
        )
        grant.access_tokens.add(access)
        self._by_access[access] = grant_id
        expires_in = self.access_token_ttl
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(expires_in) if float(expires_in).is_integer() else expires_in,
            "refresh_token": grant.refresh_token,
            "scope": " ".join(sorted(scopes)),
        }

    def _revoke_access_tokens(self, grant: _Grant, tokens: Iterable[str]) -> None:
        for token in list(tokens):
            self._tokens.revoke(token)
            self._by_access.pop(token, None)
            grant.access_tokens.discard(token)

    def _revoke_grant(self, grant_id: str) -> None:
        grant = self._grants.pop(grant_id, None)
        if grant is None:
            return
        self._revoke_access_tokens(grant, grant.access_tokens)
        self._by_refresh.pop(grant.refresh_token, None)
