"""The plain records of the connections layer: what is saved, and the secrets kept apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

__all__ = [
    "ConnectionFields",
    "ConnectionKind",
    "ConnectionRecord",
    "OAuthClientInfo",
    "Sender",
    "TokenSet",
]

ConnectionKind = Literal["api_key", "oauth"]


@dataclass(frozen=True, slots=True)
class Sender:
    """The account's default sender, from ``contact_information`` (campaigns start from it)."""

    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthClientInfo:
    """The non-secret half of an OAuth app registration, plus where its endpoints are."""

    client_id: str
    token_url: str
    revoke_url: str
    installation_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionRecord:
    """One saved connection, without its secrets (safe to print).

    ``id`` never changes for the life of the connection, even when its key is
    rotated, so anything tied to it (sync state, history) stays attached.
    ``scopes`` is what the credential is known to hold (the OAuth grant, or
    what the last probe found); ``capabilities`` what those scopes can serve.
    """

    id: str
    name: str
    kind: ConnectionKind
    base_url: str
    account_id: str
    account_name: str | None
    sender: Sender
    connected_at: datetime
    rotated_at: datetime | None = None
    capabilities: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    oauth: OAuthClientInfo | None = None


class _RequiredFields(TypedDict):
    kind: ConnectionKind
    base_url: str
    account_id: str
    account_name: str | None
    sender: Sender
    capabilities: tuple[str, ...]
    scopes: tuple[str, ...]
    secrets: Mapping[str, Any]


# ``oauth`` optional by total=False, not NotRequired[…]: the runtime cannot see the latter
# under postponed annotations, and the stores check the keys at run time
class ConnectionFields(_RequiredFields, total=False):
    """What a store's ``upsert(name, **fields)`` saves: the routing fields, what the
    credential can do, and its secrets (sealed apart from the record)."""

    oauth: OAuthClientInfo | None


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenSet:
    """OAuth tokens; the repr never shows them."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()

    def expires_within(self, now: datetime, seconds: float) -> bool:
        """True if the access token is expired or will be within ``seconds`` of ``now``."""
        if self.expires_at is None:
            return False
        return (self.expires_at - now).total_seconds() <= seconds
