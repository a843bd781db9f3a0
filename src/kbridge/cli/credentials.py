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

from collections.abc import Mapping
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
    """The saved connection ``name``, opened on the store the environment points at."""
    # Imported here: most commands never open the connection store.
    from kbridge.cli.connections import credentials_for

    found = credentials_for(name, env)
    chosen_url = base_url or found.base_url or DEFAULT_BASE_URL
    source = f"connection {name}"
    if found.token_provider is None:
        return Credentials(base_url=chosen_url, api_key=found.api_key, source=source)
    return Credentials(
        base_url=chosen_url,
        token_provider=found.token_provider,
        installation_id=found.account_id,
        source=source,
    )
