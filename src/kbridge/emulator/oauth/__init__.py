"""The emulator's OAuth 2.0 authorization server (authorization code + PKCE S256, refresh).

:mod:`.authority` holds the state and the rules (no HTTP); :mod:`.routes`
serves ``/oauth/authorize``, ``/oauth/token`` and ``/oauth/revoke``.
"""

from __future__ import annotations

from kbridge.emulator.oauth.authority import (
    VERIFIER_PATTERN,
    AuthorizationRequest,
    OAuthAuthority,
    OAuthClient,
    s256_challenge,
)
from kbridge.emulator.oauth.errors import AuthorizeError, OAuthError
from kbridge.emulator.oauth.routes import oauth_routes

__all__ = [
    "VERIFIER_PATTERN",
    "AuthorizationRequest",
    "AuthorizeError",
    "OAuthAuthority",
    "OAuthClient",
    "OAuthError",
    "oauth_routes",
    "s256_challenge",
]
