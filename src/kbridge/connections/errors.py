"""What can go wrong with a connection, grouped by what the user should do::

    KbridgeError                              (kbridge.core)
    └── ConnectionsError                      anything in kbridge.connections
        ├── ConnectionStoreError              the store cannot be opened or decrypted
        │   │                                 (wrong KBRIDGE_MASTER_KEY, loose key-file mode)
        │   └── ConnectionTamperedError       a connection's stored details no longer match
        │                                     its sealed secrets: connect again
        ├── ConnectionNotFoundError           no connection of that name: list them
        ├── ConnectionConflictError           e.g. a rotated key belongs to another account
        ├── UnknownCapabilityError            a capability name kbridge does not know
        └── OAuthError                        the OAuth flow or a token call failed
            ├── OAuthStateMismatchError       the redirect's ``state`` is not ours: aborted
            ├── OAuthDeniedError              the user (or Klaviyo) refused consent
            └── OAuthTokenError               the token/revoke endpoint refused (``error`` code)

Messages never contain a key, token or client secret.
"""

from __future__ import annotations

from kbridge.core import KbridgeError

__all__ = [
    "ConnectionConflictError",
    "ConnectionNotFoundError",
    "ConnectionStoreError",
    "ConnectionTamperedError",
    "ConnectionsError",
    "OAuthDeniedError",
    "OAuthError",
    "OAuthStateMismatchError",
    "OAuthTokenError",
    "UnknownCapabilityError",
]


class ConnectionsError(KbridgeError):
    """Root of the connections layer's errors."""


class ConnectionStoreError(ConnectionsError):
    """The connection store is unusable as it is: wrong master key, unsafe key file, bad file."""


class ConnectionTamperedError(ConnectionStoreError):
    """A connection's stored details (where its secrets go) changed outside kbridge.

    Its secrets are sealed together with those details, so they are refused
    rather than sent wherever the file now points.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"connection {name!r}: its stored details (base URL, account, endpoints) were "
            "changed outside kbridge, so its secrets are not used; connect again "
            f"(`kbridge connect {name} …`), or forget it with `kbridge disconnect {name} --force`"
        )


class ConnectionNotFoundError(ConnectionsError):
    """No connection has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"no connection named {name!r}; see `kbridge connections list`, "
            f"or create it with `kbridge connect {name} --api-key pk_…`"
        )


class ConnectionConflictError(ConnectionsError):
    """The request contradicts the saved connection (e.g. a new key for another account)."""


class UnknownCapabilityError(ConnectionsError):
    """A capability name that is not one of kbridge's."""


class OAuthError(ConnectionsError):
    """The OAuth flow or an OAuth endpoint failed; nothing was saved."""


class OAuthStateMismatchError(OAuthError):
    """The redirect carried a ``state`` we did not send (a forged or stale redirect)."""


class OAuthDeniedError(OAuthError):
    """Consent was refused (``error=access_denied``) or the redirect carried another error."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        self.error = error
        super().__init__(message)


class OAuthTokenError(OAuthError):
    """The token or revoke endpoint answered with an error (``invalid_grant``, …)."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        self.error = error
        self.status = status
        super().__init__(message)
