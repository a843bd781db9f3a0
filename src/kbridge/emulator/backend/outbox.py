"""What the emulator "sent": every campaign email, and the senders allowed to send.

Klaviyo refuses to send from an address the account has not verified; the
emulator keeps the same rule so a client's misconfiguration shows up in
tests. The account's default sender (from the generated account's contact
information) starts verified; ``POST /_emulator/senders`` verifies more.
``GET /_emulator/outbox`` lists :class:`SentMessage` records in send order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kbridge.emulator.backend.ids import iso

__all__ = ["Outbox", "SentMessage"]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message delivered to one profile (the rendered content it received).

    For SMS, ``to`` is the phone number and ``body`` the text; email fields are empty.
    """

    campaign_id: str
    message_id: str
    profile_id: str
    to: str
    from_email: str
    from_label: str | None
    subject: str | None
    preview_text: str | None
    html: str | None
    sent_at: float
    channel: str = "email"
    #: the rendered text of an SMS
    body: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sent_at"] = iso(self.sent_at)
        return out


@dataclass
class Outbox:
    """Sent messages and verified sender addresses of one emulated account."""

    messages: list[SentMessage] = field(default_factory=list)
    verified: set[str] = field(default_factory=set)
    #: sends that did not happen: {campaign_id, status, reason, at}
    failures: list[dict[str, Any]] = field(default_factory=list)

    def verify(self, email: str) -> None:
        self.verified.add(email.strip().lower())

    def is_verified(self, email: str) -> bool:
        return email.strip().lower() in self.verified

    def record(self, message: SentMessage) -> None:
        self.messages.append(message)

    def as_json(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m.as_json()
            for m in self.messages
            if campaign_id is None or m.campaign_id == campaign_id
        ]
