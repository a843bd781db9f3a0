"""How an :class:`~kbridge.api.AsyncClient` is configured: :class:`ClientConfig`,
the keyword arguments :class:`~kbridge.api.Client` passes on, and the checks that
turn a constructor's arguments into one config and one credential.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

import httpx

from kbridge import __version__, catalog
from kbridge.api.auth import Auth, BearerAuth, PrivateKeyAuth, TokenProvider
from kbridge.api.errors import InvalidCredentialsError
from kbridge.api.ratelimit import LimiterConfig, RateLimiter
from kbridge.api.retry import RetryPolicy
from kbridge.core import Clock, ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "ClientConfig",
    "ClientOptions",
]

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
#: seconds one attempt may take end to end: httpx's read timeout restarts with every
#: chunk, so a server dripping bytes (or a proxy holding the line) would never trip it
DEFAULT_TOTAL_TIMEOUT = 120.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """Everything configurable about a client, frozen; ``api_key`` is never in its repr."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    revision: str = catalog.REVISION
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    #: seconds per attempt, whatever the phase (``None``: only httpx's per-phase timeouts)
    total_timeout: float | None = DEFAULT_TOTAL_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: LimiterConfig = field(default_factory=LimiterConfig)
    user_agent: str = f"kbridge/{__version__}"
    #: the wire under httpx: ``"asyncio"``, kbridge's lean HTTP/1.1 transport (httpx's
    #: own is still used behind an environment proxy), or ``"httpx"``, httpx's default
    http_transport: Literal["asyncio", "httpx"] = "asyncio"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> ClientConfig:
        """A config from ``KLAVIYO_API_KEY``/``KLAVIYO_BASE_URL`` in ``env`` (CLI: os.environ)."""
        values: dict[str, Any] = {}
        if env.get("KLAVIYO_API_KEY"):
            values["api_key"] = env["KLAVIYO_API_KEY"]
        if env.get("KLAVIYO_BASE_URL"):
            values["base_url"] = env["KLAVIYO_BASE_URL"]
        values.update(overrides)
        return cls(**values)


def _configure(
    config: ClientConfig | None,
    *,
    api_key: str | None,
    base_url: str | None,
    deprecated: Mapping[str, Any],
) -> ClientConfig:
    """The one config a client runs on: ``config``, plus the credential and host if given.

    A setting given twice with two values is refused rather than one silently
    winning; the old per-setting keywords still apply, with a warning.
    """
    cfg = config or ClientConfig()
    if api_key is not None:
        if cfg.api_key is not None and cfg.api_key != api_key:
            raise ConfigurationError("two different API keys: pass api_key or config.api_key")
        cfg = replace(cfg, api_key=api_key)
    if base_url is not None:
        if config is not None and cfg.base_url not in (DEFAULT_BASE_URL, base_url):
            raise ConfigurationError(
                f"two base URLs: base_url={base_url!r} and config.base_url={cfg.base_url!r}"
            )
        cfg = replace(cfg, base_url=base_url)
    given = {name: value for name, value in deprecated.items() if value is not None}
    if given:
        names = ", ".join(f"{name}=…" for name in given)
        warnings.warn(
            f"AsyncClient({names}) is deprecated; pass config=ClientConfig({names})",
            DeprecationWarning,
            stacklevel=3,
        )
        cfg = replace(cfg, **given)
    if cfg.total_timeout is not None and cfg.total_timeout <= 0:
        raise ConfigurationError("total_timeout must be positive seconds (or None)")
    return cfg


def _renamed_retry(retry: RetryPolicy | None, retries: RetryPolicy | None) -> RetryPolicy | None:
    """``retry`` is the one name for a call's retry policy; ``retries`` still works, warned."""
    if retries is None:
        return retry
    if retry is not None:
        raise ConfigurationError("pass retry=…, not also its deprecated name retries=…")
    warnings.warn("raw(retries=…) is deprecated; pass retry=…", DeprecationWarning, stacklevel=3)
    return retries


def _make_auth(
    api_key: str | None, token_provider: TokenProvider | None, installation_id: str | None
) -> Auth:
    if api_key is not None and token_provider is not None:
        raise InvalidCredentialsError("pass either api_key or token_provider, not both")
    if token_provider is not None:
        return BearerAuth(token_provider, installation_id=installation_id)
    if api_key is None:
        raise InvalidCredentialsError(
            "no credentials: pass api_key='pk_…' (a private key) or token_provider=… (OAuth)"
        )
    return PrivateKeyAuth(api_key)


class ClientOptions(TypedDict, total=False):
    """The keyword arguments of :class:`AsyncClient`, which :class:`Client` passes on."""

    token_provider: TokenProvider | None
    installation_id: str | None
    config: ClientConfig | None
    base_url: str | None
    clock: Clock | None
    transport: httpx.AsyncBaseTransport | None
    rate_limiter: RateLimiter | None
    random: Callable[[], float] | None
    #: deprecated: set them on ``config``
    revision: str | None
    retry: RetryPolicy | None
    timeout: httpx.Timeout | None
    total_timeout: float | None
