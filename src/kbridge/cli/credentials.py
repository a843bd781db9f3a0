"""Where the CLI's credentials come from: one resolver for every command.

Precedence: ``--connection NAME`` (a saved connection, opened through the
connections layer, with its own base URL) or ``--api-key``, then
``KBRIDGE_CONNECTION``, then ``KLAVIYO_API_KEY``, then the default
connection saved with ``kbridge config set connection NAME``; base URL from
``--base-url``, then ``KLAVIYO_BASE_URL``, then Klaviyo's. The environment
is read here (the CLI is the only layer that reads it) and passed in as a
mapping, so tests can give their own. The key never appears in a repr or an error message.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kbridge.api import DEFAULT_BASE_URL, TokenProvider
from kbridge.cli.config import CONNECTION_ENV, default_connection
from kbridge.core import ConfigurationError

__all__ = ["Credentials", "resolve_credentials"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """A private key or an OAuth token provider, and the base URL to use them on."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    token_provider: TokenProvider | None = field(default=None, repr=False)
    installation_id: str | None = None
    source: str = "api key"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`kbridge.api.AsyncClient`."""
        if self.token_provider is not None:
            return {
                "token_provider": self.token_provider,
                "installation_id": self.installation_id,
                "base_url": self.base_url,
            }
        return {"api_key": self.api_key, "base_url": self.base_url}


def resolve_credentials(
    api_key: str | None,
    base_url: str | None,
    connection: str | None,
    env: Mapping[str, str],
) -> Credentials:
    """The credentials a command should use; a clear ``ConfigurationError`` if there are none."""
    if connection:
        if api_key:
            raise ConfigurationError("give --api-key or --connection, not both")
        return _from_connection(connection, base_url, env)
    if not api_key and env.get(CONNECTION_ENV):
        return _from_connection(env[CONNECTION_ENV], base_url, env)
    key = api_key or env.get("KLAVIYO_API_KEY") or None
    url = base_url or env.get("KLAVIYO_BASE_URL") or DEFAULT_BASE_URL
    if not key:
        # the file's default comes last: any flag or environment variable beats it
        saved = default_connection(env)
        if saved:
            return _from_connection(saved, base_url, env)
        raise ConfigurationError(
            "no credentials: pass --api-key pk_… or --connection NAME, set KLAVIYO_API_KEY or "
            "KBRIDGE_CONNECTION, or save a default with `kbridge config set connection NAME`"
        )
    source = "--api-key" if api_key else "KLAVIYO_API_KEY"
    return Credentials(base_url=url, api_key=key, source=source)


def _from_connection(name: str, base_url: str | None, env: Mapping[str, str]) -> Credentials:
    """Ask the connections layer for the saved connection ``name``.

    Uses ``kbridge.cli.connections.credentials_for(name, env)`` (which opens
    ``kbridge.connections.open_credentials`` on the store the environment
    points at). It returns an object with ``api_key``/``token_provider``/
    ``base_url``; a ``(key_or_token_provider, base_url)`` pair is accepted too.
    """
    opener = _connection_opener(env)
    if opener is None:
        raise ConfigurationError("connections are not available yet; use --api-key")
    found = opener(name)
    installation_id: str | None = None
    if isinstance(found, tuple):
        secret, url = found
    else:
        secret = found.token_provider if found.token_provider is not None else found.api_key
        url = found.base_url
        installation_id = getattr(found, "account_id", None)
    chosen_url = base_url or url or DEFAULT_BASE_URL
    if isinstance(secret, str):
        return Credentials(base_url=chosen_url, api_key=secret, source=f"connection {name}")
    return Credentials(
        base_url=chosen_url,
        token_provider=secret,
        installation_id=installation_id,
        source=f"connection {name}",
    )


def _connection_opener(env: Mapping[str, str]) -> Callable[[str], Any] | None:
    """The connections layer's opener, imported lazily (most commands never need it)."""
    try:
        cli_module = importlib.import_module("kbridge.cli.connections")
    except ImportError:
        return None
    credentials_for = getattr(cli_module, "credentials_for", None)
    if credentials_for is None:
        return None
    return lambda name: credentials_for(name, env)
