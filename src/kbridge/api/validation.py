"""Input checks that run before a request is sent, so a bad value costs no rate-limit token.

Klaviyo rejects these with a 400 that often names the JSON pointer rather
than the argument the caller passed; checking locally lets the error name
the *parameter* (``email``, ``phone_number``, ``value_currency`` …).
Every failure is a :class:`ValidationError` (a ``ConfigurationError``:
fix the call, nothing was sent) carrying ``field``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kbridge.core import ConfigurationError
from kbridge.core.jsoncodec import dumps

__all__ = [
    "CAMPAIGN_CHANNELS",
    "MAX_PAYLOAD_BYTES",
    "ValidationError",
    "check_aware",
    "check_campaign_channel_filter",
    "check_choice",
    "check_currency",
    "check_email",
    "check_max_items",
    "check_payload_size",
    "check_phone",
    "iso",
]

#: Klaviyo refuses any single payload (a profile, an event) above 100 KB.
MAX_PAYLOAD_BYTES = 100 * 1024
CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")

# Pragmatic, not RFC 5322: one @, a dot-separated domain with a TLD, no spaces. The local
# part may hold characters beyond ASCII (RFC 6531: Klaviyo stores "josé@…"); which of them
# pass is _beyond_ascii's call. The domain stays ASCII (an IDN in its xn-- form).
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# ISO 4217 codes in circulation (active list); a typo like "USS" is caught here.
_ISO_4217_TEXT = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
    KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL"""
_ISO_4217 = frozenset(_ISO_4217_TEXT.split())


class ValidationError(ConfigurationError):
    """An input Klaviyo would reject; ``field`` names the parameter. Nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def check_email(value: str, field: str = "email") -> str:
    """``value`` stripped, if it looks like a deliverable address (``a@b.co``)."""
    text = value.strip()
    if not _EMAIL.match(text) or ".." in text or not _beyond_ascii(text.partition("@")[0]):
        raise ValidationError(field, f"{value!r} is not a valid email address")
    return text


def _beyond_ascii(local: str) -> bool:
    """Non-ASCII characters of a local part are letters, marks or digits: no invisible
    format characters, spaces of other scripts or symbols (which mail systems refuse)."""
    return all(c.isascii() or unicodedata.category(c)[0] in "LMN" for c in local)


def check_phone(value: str, field: str = "phone_number") -> str:
    """``value`` if it is in E.164 form: ``+``, country code, 7–15 digits, no spaces."""
    text = value.strip()
    if not _E164.match(text):
        raise ValidationError(
            field,
            f"{value!r} is not an E.164 phone number (like +15005550006: '+', country "
            "code and number, digits only)",
        )
    return text


def check_currency(value: str, field: str = "value_currency") -> str:
    """``value`` if it is an ISO 4217 currency code (``USD``, ``EUR``)."""
    if not _CURRENCY.match(value) or value not in _ISO_4217:
        raise ValidationError(field, f"{value!r} is not an ISO 4217 currency code (e.g. USD)")
    return value


def check_aware(value: datetime, field: str) -> datetime:
    """``value`` if it carries a timezone; a naive datetime is ambiguous by hours."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            field,
            f"{value.isoformat()} has no timezone; pass an aware datetime "
            "(e.g. datetime(..., tzinfo=UTC))",
        )
    return value


def iso(value: datetime, field: str) -> str:
    """An aware datetime as the ISO 8601 text Klaviyo takes."""
    return check_aware(value, field).isoformat()


def check_choice(value: str, choices: Iterable[str], field: str) -> str:
    """``value`` if it is one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ValidationError(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def check_max_items(values: Any, maximum: int, field: str) -> None:
    """Refuse more than ``maximum`` items where Klaviyo caps one request."""
    if len(values) > maximum:
        raise ValidationError(field, f"{len(values)} items; Klaviyo takes at most {maximum}")


def check_payload_size(
    payload: Mapping[str, Any] | Any, field: str, limit: int = MAX_PAYLOAD_BYTES
) -> None:
    """Refuse a payload whose JSON encoding exceeds ``limit`` bytes (Klaviyo: 100 KB)."""
    size = len(dumps(payload))
    if size > limit:
        raise ValidationError(
            field, f"{size} bytes of JSON; Klaviyo refuses payloads over {limit // 1024} KB"
        )


def check_campaign_channel_filter(filter_text: str | None) -> str:
    """Klaviyo's ``GET /api/campaigns`` requires ``equals(messages.channel,'…')`` in the filter."""
    if not filter_text or "messages.channel" not in filter_text:
        raise ValidationError(
            "filter",
            "listing campaigns needs a channel: add "
            "equals(messages.channel,'email') (or 'sms', 'mobile_push'), or give a channel "
            "(channel=… / --channel)",
        )
    return filter_text
