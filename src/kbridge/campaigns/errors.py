"""What goes wrong when publishing, said so that an integrator knows what to do next.

The API's own errors (:mod:`kbridge.api.errors`) say what Klaviyo answered;
these say what it means for the workflow. Grouped by what the caller should do::

    KbridgeError                                (kbridge.core)
    └── PublishError                            a campaign/template/flow workflow failed
        ├── InvalidKeyError                     401: the key or token is wrong or revoked
        ├── MissingScopesError                  403: names the scopes to grant
        ├── SenderNotVerifiedError              the from address is not a verified sender
        ├── AudienceEmptyError                  nobody in the audience can receive it
        ├── SendTimeInPastError                 --send-at is not in the future
        ├── SendFailedError                     Klaviyo cancelled the send for another reason
        └── DefinitionError                     a flow definition file that cannot be used

Messages never carry the key (the API errors they wrap are already redacted).
"""

from __future__ import annotations

from collections.abc import Sequence

from kbridge.core import KbridgeError

__all__ = [
    "AudienceEmptyError",
    "DefinitionError",
    "InvalidKeyError",
    "MissingScopesError",
    "PublishError",
    "SendFailedError",
    "SendTimeInPastError",
    "SenderNotVerifiedError",
]


class PublishError(KbridgeError):
    """A publishing workflow could not do what was asked; ``str()`` says what to change."""


class InvalidKeyError(PublishError):
    """Klaviyo refused the credentials (401)."""

    def __init__(self, request_id: str | None = None) -> None:
        self.request_id = request_id
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(
            "Klaviyo refused the API key: it is wrong or has been revoked. Create a private key "
            "in Klaviyo (Settings > API keys) or reconnect with `kbridge connect`" + rid
        )


class MissingScopesError(PublishError):
    """The key lacks scopes (403); ``missing`` what Klaviyo named, ``needed`` the workflow's set."""

    def __init__(
        self, step: str, missing: Sequence[str], needed: Sequence[str], request_id: str | None
    ) -> None:
        self.step = step
        self.missing = tuple(missing)
        self.needed = tuple(needed)
        self.request_id = request_id
        lacks = " ".join(self.missing) or "a scope"
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(
            f"the API key lacks the scope {lacks} needed to {step}; give the key these scopes: "
            f"{' '.join(self.needed)}" + rid
        )


class SenderNotVerifiedError(PublishError):
    """Klaviyo cancelled the send because the from address is not a verified sender."""

    def __init__(self, campaign_id: str, from_email: str) -> None:
        self.campaign_id = campaign_id
        self.from_email = from_email
        super().__init__(
            f"campaign {campaign_id} was cancelled: the sender {from_email} is not verified. "
            "In Klaviyo, add and verify it (Settings > Domains and senders, or use an address "
            "on a verified sending domain), then publish again"
        )


class AudienceEmptyError(PublishError):
    """Nobody in the included lists/segments (minus the excluded ones) can receive the message."""

    def __init__(self, audience: Sequence[str], campaign_id: str | None = None) -> None:
        self.audience = tuple(audience)
        self.campaign_id = campaign_id
        which = f"campaign {campaign_id}: " if campaign_id else ""
        super().__init__(
            f"{which}the audience ({', '.join(self.audience)}) has no profile that can receive "
            "this email (none, or none with an email address and marketing consent); check the "
            "list/segment ids and --exclude"
        )


class SendTimeInPastError(PublishError):
    """``send_at`` is not after now (Klaviyo would send at once, or refuse)."""

    def __init__(self, send_at: str, now: str | None) -> None:
        self.send_at = send_at
        self.now = now
        when = f"now is {now}" if now else "by Klaviyo's clock"
        super().__init__(
            f"--send-at {send_at} is in the past ({when}); give a future time, or 'now'"
        )


class SendFailedError(PublishError):
    """Klaviyo cancelled the send for a reason not covered above (its status says which)."""

    def __init__(self, campaign_id: str, status: str) -> None:
        self.campaign_id = campaign_id
        self.status = status
        super().__init__(f"campaign {campaign_id} did not send: Klaviyo says {status!r}")


class DefinitionError(PublishError):
    """A flow definition (or template context) file that cannot be used; names the field."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")
