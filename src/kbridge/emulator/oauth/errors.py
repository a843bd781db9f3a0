"""The OAuth 2.0 errors the emulator's authorization server answers (RFC 6749 §5.2).

Tree::

    OAuthError              an error answer: ``error`` code, ``error_description``, HTTP status
    └── AuthorizeError      an /oauth/authorize refusal; ``redirectable`` says whether it goes
                            back to the client's redirect URI (RFC 6749 §4.1.2.1) or, for an
                            unknown client or redirect URI, is shown to the user as a 400

Descriptions never contain a secret (client secret, code, token): a test log
or a client's exception text may carry them.
"""

from __future__ import annotations

__all__ = ["AuthorizeError", "OAuthError"]

#: RFC 6749 status per error code (invalid_client is 401 with a ``WWW-Authenticate`` header)
_STATUS = {"invalid_client": 401}


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": code, "error_description": description}``."""

    def __init__(self, error: str, description: str, *, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status if status is not None else _STATUS.get(error, 400)

    def payload(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthorizeError(OAuthError):
    """A refused authorization request; redirectable ones go back to the client with ``state``."""

    def __init__(self, error: str, description: str, *, redirectable: bool) -> None:
        super().__init__(error, description, status=400)
        self.redirectable = redirectable
