"""Credentials: a private API key or OAuth bearer tokens, never shown anywhere.

Both kinds expose the same small interface to the pipeline: the
``Authorization`` header value, a way to refresh after a 401, and an
*account fingerprint* (a one-way hash) that keys the rate limiter, because
Klaviyo meters private keys per account and OAuth per installation.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from kbridge.api.errors import InvalidCredentialsError
from kbridge.core import Clock

__all__ = [
    "Auth",
    "BearerAuth",
    "PrivateKeyAuth",
    "RefreshingTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "fingerprint",
]

_PRIVATE_KEY = re.compile(r"^pk_[A-Za-z0-9]+$")
_MIN_KEY_LENGTH = 20
_SHAPE = "a private key looks like 'pk_' followed by letters and digits (about 37 characters)"


def fingerprint(kind: str, secret: str) -> str:
    """A short, non-reversible identity for a credential (safe to log and to key buckets)."""
    digest = hashlib.sha256(f"kbridge:{kind}:{secret}".encode()).hexdigest()
    return f"{kind}-{digest[:16]}"


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies OAuth access tokens; refreshes on expiry by itself and on demand after a 401."""

    async def token(self) -> str:
        """A currently valid access token (refreshing first if it has expired)."""
        ...

    async def refresh(self) -> str:
        """Force a refresh (the server said 401) and return the new access token."""
        ...


class StaticTokenProvider:
    """A fixed access token (tests, short scripts). ``refresh`` cannot mint a new one."""

    __slots__ = ("_token", "installation_id")

    def __init__(self, token: str, *, installation_id: str | None = None) -> None:
        if not token or not token.strip():
            raise InvalidCredentialsError("the OAuth access token is empty")
        self._token = token.strip()
        self.installation_id = installation_id

    async def token(self) -> str:
        return self._token

    async def refresh(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=***)"


class RefreshingTokenProvider:
    """Caches an access token and renews it ``margin`` seconds before it expires.

    ``fetch`` returns ``(access_token, expires_in_seconds)`` (e.g. an OAuth
    refresh-token grant, which the connections layer owns). Concurrent
    callers share one renewal instead of each spending the refresh token.
    """

    __slots__ = (
        "_clock",
        "_expires_at",
        "_fetch",
        "_generation",
        "_lock",
        "_margin",
        "_token",
        "installation_id",
    )

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        *,
        clock: Clock,
        margin: float = 30.0,
        installation_id: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._token: str | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.installation_id = installation_id

    async def token(self) -> str:
        if self._token is None or self._clock.monotonic() >= self._expires_at - self._margin:
            return await self.refresh()
        return self._token

    async def refresh(self) -> str:
        seen = self._generation
        async with self._lock:
            if self._generation != seen and self._token is not None:
                return self._token  # another task renewed it while we waited
            token, expires_in = await self._fetch()
            if not token:
                raise InvalidCredentialsError("the token provider returned an empty access token")
            self._token = token
            self._expires_at = self._clock.monotonic() + expires_in
            self._generation += 1
            return token

    def __repr__(self) -> str:
        return f"RefreshingTokenProvider(installation_id={self.installation_id!r}, token=***)"


class Auth(Protocol):
    """What the pipeline needs from a credential."""

    @property
    def account(self) -> str:
        """The account fingerprint that keys the rate limiter."""
        ...

    async def authorization(self) -> str:
        """The value for the ``Authorization`` header."""
        ...

    async def refresh_after_401(self, rejected: str) -> bool:
        """After ``rejected`` got a 401, get a new credential; True if a retry can help."""
        ...


def _check_private_key(key: object) -> str:
    """``key`` if it has a private key's shape; otherwise a message saying why not.

    The messages never repeat the key: a mistyped key is still a secret.
    """
    if not isinstance(key, str):
        raise InvalidCredentialsError(f"the API key must be a string; {_SHAPE}")
    key = key.strip()
    if not key:
        raise InvalidCredentialsError(f"the API key is empty; {_SHAPE}")
    if key.lower().startswith(("klaviyo-api-key ", "bearer ")):
        raise InvalidCredentialsError(
            f"give the key alone, without the 'Klaviyo-API-Key'/'Bearer' prefix; {_SHAPE}"
        )
    if not key.startswith("pk_"):
        if len(key) == 6 and key.isalnum():
            raise InvalidCredentialsError(
                "this is a 6-character *public* key (site ID), which only works on /client "
                f"endpoints; use a private API key instead: {_SHAPE}"
            )
        raise InvalidCredentialsError(f"the API key does not start with 'pk_'; {_SHAPE}")
    if not _PRIVATE_KEY.match(key):
        raise InvalidCredentialsError(
            f"the API key contains characters other than letters and digits; {_SHAPE}"
        )
    if len(key) < _MIN_KEY_LENGTH:
        raise InvalidCredentialsError(
            f"the API key is only {len(key)} characters long, too short; {_SHAPE}"
        )
    return key


class PrivateKeyAuth:
    """``Authorization: Klaviyo-API-Key pk_…``; the shape is checked before any request."""

    __slots__ = ("_account", "_key")

    def __init__(self, key: str) -> None:
        self._key = _check_private_key(key)
        self._account = fingerprint("key", self._key)

    @property
    def account(self) -> str:
        return self._account

    async def authorization(self) -> str:
        return f"Klaviyo-API-Key {self._key}"

    async def refresh_after_401(self, rejected: str) -> bool:
        return False  # a revoked or wrong key stays wrong

    def __repr__(self) -> str:
        return f"PrivateKeyAuth(account={self._account})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("PrivateKeyAuth holds a secret and cannot be pickled")


class BearerAuth:
    """``Authorization: Bearer <token>`` from a :class:`TokenProvider`.

    The limiter key is the installation id (each OAuth installation has its
    own quota); without one, each provider object counts as its own
    installation.
    """

    __slots__ = ("_account", "_provider")

    def __init__(self, provider: TokenProvider, *, installation_id: str | None = None) -> None:
        if not isinstance(provider, TokenProvider):
            raise InvalidCredentialsError(
                "token_provider must have async token() and refresh() methods"
            )
        self._provider = provider
        installation = installation_id or getattr(provider, "installation_id", None)
        identity = str(installation) if installation else f"object-{id(provider)}"
        self._account = fingerprint("oauth", identity)

    @property
    def account(self) -> str:
        return self._account

    async def authorization(self) -> str:
        return f"Bearer {await self._provider.token()}"

    async def refresh_after_401(self, rejected: str) -> bool:
        fresh = await self._provider.refresh()
        return f"Bearer {fresh}" != rejected

    def __repr__(self) -> str:
        return f"BearerAuth(account={self._account})"
