"""What the Klaviyo API (or the road to it) said, as one typed hierarchy.

Grouped by what the caller should do::

    KbridgeError                               (kbridge.core)
    ├── ConfigurationError                     fix the call; nothing was sent
    │   ├── InvalidCredentialsError            the key/token does not have the right shape
    │   └── FilterError                        a ``filter`` the operation cannot accept
    └── ApiError                               status, code, detail, source, request id, operation
        ├── fatal: fix the request, the data or the credentials
        │   ├── AuthenticationError            401: key/token missing, wrong or revoked
        │   ├── PermissionDeniedError          403: the key lacks a scope (names the ones needed)
        │   ├── NotFoundError                  404
        │   ├── ConflictError                  409, e.g. a duplicate (``duplicate_profile_id``)
        │   └── InvalidRequestError            400/405/410/415/422 and any other 4xx
        ├── retriable: the pipeline already retried; try again later
        │   ├── RateLimitedError               429 (``retry_after``)
        │   │   └── QuotaExhaustedError        a daily cap is spent (``resets_at``); never looped on
        │   ├── ServerError                    5xx
        │   ├── ChallengeError                 the CDN's HTML bot check (403), not Klaviyo's answer
        │   └── TransportError                 timeout / connection error (no status)
        └── UnexpectedResponseError            a success we cannot use (pagination loop, bad JSON)

Exactly one function, :func:`error_from_response`, turns an HTTP response into
one of these. Error text never carries a credential: anything in a server
message that looks like a key or bearer token is masked before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from kbridge.core import ConfigurationError, KbridgeError
from kbridge.core.jsoncodec import JSONDecodeError, loads

__all__ = [
    "WRITE_MAY_HAVE_HAPPENED",
    "ApiError",
    "AuthenticationError",
    "ChallengeError",
    "ConflictError",
    "ErrorDetails",
    "FilterError",
    "InvalidCredentialsError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "UnexpectedResponseError",
    "error_from_response",
    "is_challenge",
    "parse_retry_after",
    "redact",
    "request_id_from",
]

#: said of a write whose connection failed after it was sent (a retry could do it twice)
WRITE_MAY_HAVE_HAPPENED = "the request may have reached Klaviyo; check before retrying"

#: seconds of Klaviyo's steady (per-minute) window: a daily-capped operation's 429 asking
#: for a longer wait than this is its day's cap, not a throttle
STEADY_WINDOW = 60.0

_SECRET_PATTERNS = (
    re.compile(r"pk_[A-Za-z0-9]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(klaviyo-api-key\s+)\S+"),
)


def redact(text: str) -> str:
    """``text`` with anything shaped like a private key or bearer token masked."""
    text = _SECRET_PATTERNS[0].sub("pk_***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    return _SECRET_PATTERNS[2].sub(r"\1***", text)


class InvalidCredentialsError(ConfigurationError):
    """The key or token cannot be right (wrong shape); refused before any request."""


class FilterError(ConfigurationError):
    """A ``filter`` expression the operation would reject; names the field and operators."""

    def __init__(self, message: str, *, field: str | None = None, operation_id: str | None = None):
        super().__init__(message)
        self.field = field
        self.operation_id = operation_id


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """The parts of a Klaviyo error object every :class:`ApiError` carries."""

    status: int | None = None
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    source_pointer: str | None = None
    source_parameter: str | None = None
    request_id: str | None = None
    operation_id: str | None = None
    meta: Mapping[str, Any] | None = None


class ApiError(KbridgeError):
    """Klaviyo (or the network) refused or failed a request. ``str()`` is one line."""

    def __init__(self, details: ErrorDetails) -> None:
        self.details = details
        super().__init__(self._message())

    # Plain attributes, so callers can write ``err.status`` / ``err.code``.
    @property
    def status(self) -> int | None:
        return self.details.status

    @property
    def code(self) -> str | None:
        return self.details.code

    @property
    def title(self) -> str | None:
        return self.details.title

    @property
    def detail(self) -> str | None:
        return self.details.detail

    @property
    def source_pointer(self) -> str | None:
        return self.details.source_pointer

    @property
    def source_parameter(self) -> str | None:
        return self.details.source_parameter

    @property
    def request_id(self) -> str | None:
        return self.details.request_id

    @property
    def operation_id(self) -> str | None:
        return self.details.operation_id

    def _extra(self) -> list[str]:
        """Subclass-specific facts appended to the message."""
        return []

    @property
    def notes(self) -> tuple[str, ...]:
        """The subclass's facts in the message (the existing profile's id, when to retry,
        that a write may have happened): what a one-line summary must keep."""
        return tuple(self._extra())

    def _message(self) -> str:
        d = self.details
        head = " ".join(str(p) for p in (d.status, d.code) if p is not None) or "error"
        text = d.detail or d.title or "no detail given"
        parts = [f"{head}: {text}"]
        if d.source_pointer:
            parts.append(f"at {d.source_pointer}")
        if d.source_parameter:
            parts.append(f"parameter {d.source_parameter!r}")
        parts.extend(self._extra())
        if d.operation_id:
            parts.append(f"operation {d.operation_id}")
        if d.request_id:
            parts.append(f"request id {d.request_id}")
        return parts[0] + (f" ({'; '.join(parts[1:])})" if len(parts) > 1 else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Subclasses take extra keyword arguments, so rebuild from state, not from ``args``
        # (errors cross process boundaries in worker pools).
        return (_restore_error, (type(self), str(self), dict(self.__dict__)))


def _restore_error(cls: type[ApiError], message: str, state: dict[str, Any]) -> ApiError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class AuthenticationError(ApiError):
    """401: the key or token is missing, malformed, revoked or expired beyond refresh."""


class PermissionDeniedError(ApiError):
    """403: authenticated, but the key/installation lacks a scope this operation needs."""

    def __init__(self, details: ErrorDetails, *, required_scopes: tuple[str, ...] = ()) -> None:
        self.required_scopes = required_scopes
        super().__init__(details)

    def _extra(self) -> list[str]:
        if not self.required_scopes:
            return []
        return [f"this operation needs the scopes {', '.join(self.required_scopes)}"]


class NotFoundError(ApiError):
    """404: no such resource (or the pinned revision does not have this endpoint)."""


class ConflictError(ApiError):
    """409: conflicts with existing data; ``duplicate_profile_id`` when Klaviyo names one."""

    def __init__(self, details: ErrorDetails, *, duplicate_profile_id: str | None = None) -> None:
        self.duplicate_profile_id = duplicate_profile_id
        super().__init__(details)

    def _extra(self) -> list[str]:
        if self.duplicate_profile_id is None:
            return []
        return [f"existing profile {self.duplicate_profile_id}"]


class InvalidRequestError(ApiError):
    """400/422 (and other 4xx): the request itself is wrong; ``source_*`` says where."""


class RateLimitedError(ApiError):
    """429: throttled; ``retry_after`` seconds is what Klaviyo asked us to wait (if it said)."""

    def __init__(self, details: ErrorDetails, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(details)

    def _extra(self) -> list[str]:
        return [] if self.retry_after is None else [f"retry after {self.retry_after:g}s"]


class QuotaExhaustedError(RateLimitedError):
    """A daily cap is spent; waiting seconds will not help, so it is raised, not retried."""

    def __init__(
        self,
        details: ErrorDetails,
        *,
        resets_at: datetime,
        retry_after: float | None = None,
    ) -> None:
        self.resets_at = resets_at
        super().__init__(details, retry_after=retry_after)

    def _extra(self) -> list[str]:
        return [f"daily quota exhausted until {self.resets_at.isoformat(timespec='seconds')}"]


class ServerError(ApiError):
    """5xx: Klaviyo failed; idempotent requests were retried before this was raised."""


class ChallengeError(ApiError):
    """403 from the CDN in front of Klaviyo (an HTML bot check), not a JSON:API scope error.

    The request never reached Klaviyo, so it is retried with backoff whatever its
    method; ``attempts`` says how many were made before giving up. Often seen from
    serverless and datacenter addresses.
    """

    def __init__(self, details: ErrorDetails, *, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(details)

    def _extra(self) -> list[str]:
        tries = f"still there after {self.attempts} attempts; " if self.attempts > 1 else ""
        return [
            f"{tries}Klaviyo's CDN answered with a bot-check page instead of the API, which is "
            "not a permissions problem: retry later or from another network"
        ]


class TransportError(ApiError):
    """The request did not complete: connection refused/reset, DNS, TLS or a timeout.

    ``reached_server``: the request may have been sent before the failure;
    ``may_have_written``: and it was a write (POST, PATCH, PUT, DELETE), so Klaviyo
    may have applied it although no answer arrived — check before sending it again.
    """

    def __init__(
        self, details: ErrorDetails, *, reached_server: bool, may_have_written: bool = False
    ) -> None:
        self.reached_server = reached_server
        self.may_have_written = may_have_written and reached_server
        super().__init__(details)

    def _extra(self) -> list[str]:
        if not self.may_have_written:
            return []
        return [WRITE_MAY_HAVE_HAPPENED]


class UnexpectedResponseError(ApiError):
    """A response we cannot use even though the status said success."""


def request_id_from(headers: Mapping[str, str], body: Any = None) -> str | None:
    """The best request identifier: the error ``id`` in the body, else a tracing header.

    Klaviyo does not document a request-id header; its error objects carry an
    ``id`` and Cloudflare adds ``cf-ray``, which support can trace.
    """
    first = _first_error(body)
    if first is not None and isinstance(first.get("id"), str):
        return str(first["id"])
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("x-request-id", "cf-ray"):
        if lowered.get(name):
            return lowered[name]
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: an integer (Klaviyo's form) or an HTTP-date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None or when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def is_challenge(status: int, headers: Mapping[str, str], body: Any) -> bool:
    """Whether a 403 is the CDN's bot check rather than Klaviyo refusing a scope.

    Klaviyo's own 403 is JSON:API (``errors``); the CDN's says ``cf-mitigated:
    challenge`` or is an HTML page. A 403 with neither is taken as Klaviyo's, so
    a real permissions problem is never retried in a loop.
    """
    if status != 403:
        return False
    if (_header(headers, "cf-mitigated") or "").strip().lower() == "challenge":
        return True
    content_type = (_header(headers, "content-type") or "").lower()
    return "html" in content_type and _first_error(body) is None


def _first_error(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return errors[0]
    return None


def _decode(content: bytes) -> Any:
    try:
        return loads(content) if content else None
    except JSONDecodeError:
        return None


def _text_excerpt(content: bytes, limit: int = 200) -> str | None:
    text = content.decode("utf-8", errors="replace").strip()
    return " ".join(text[:limit].split()) or None


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(content: bytes) -> str | None:
    match = _TITLE.search(content[:4096])
    if match is None:
        return None
    return " ".join(match.group(1).decode("utf-8", errors="replace").split())[:80] or None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    operation_id: str | None = None,
    scopes: tuple[str, ...] = (),
    now: datetime | None = None,
    daily_capped: bool = False,
) -> ApiError:
    """The one place an HTTP error response becomes an exception.

    Takes the response's parts rather than the ``httpx.Response`` so that
    no request object (which holds the ``Authorization`` header) is ever
    reachable from an exception. Non-JSON bodies (a Cloudflare HTML page)
    still give the right class, with the first 200 characters as detail.
    ``daily_capped``: the operation has a daily cap (catalogue), so a 429 that
    asks to wait longer than the steady window is that cap spent — a
    :class:`QuotaExhaustedError` resetting at ``now`` plus the wait — rather
    than a throttle worth retrying.
    """
    body = _decode(content)
    first = _first_error(body)
    source = first.get("source") if first else None
    source = source if isinstance(source, dict) else {}
    meta = first.get("meta") if first else None
    meta = meta if isinstance(meta, dict) else {}
    if is_challenge(status, headers, body):
        title = _html_title(content)
        return ChallengeError(
            ErrorDetails(
                status=status,
                code="cdn_challenge",
                detail="bot-check page" + (f" ({title!r})" if title else ""),
                request_id=request_id_from(headers, body),
                operation_id=operation_id,
            )
        )
    detail = _str_or_none(first.get("detail")) if first else _text_excerpt(content)
    details = ErrorDetails(
        status=status,
        code=_str_or_none(first.get("code")) if first else None,
        title=redact(str(first["title"])) if first and first.get("title") else None,
        detail=redact(detail) if detail else None,
        source_pointer=_str_or_none(source.get("pointer")),
        source_parameter=_str_or_none(source.get("parameter")),
        request_id=request_id_from(headers, body),
        operation_id=operation_id,
        meta=meta,
    )
    return _classify(details, headers, now=now, scopes=scopes, daily_capped=daily_capped)


def _classify(
    details: ErrorDetails,
    headers: Mapping[str, str],
    *,
    now: datetime | None,
    scopes: tuple[str, ...],
    daily_capped: bool,
) -> ApiError:
    status = details.status or 0
    if status == 401:
        return AuthenticationError(details)
    if status == 403:
        return PermissionDeniedError(details, required_scopes=scopes)
    if status == 404:
        return NotFoundError(details)
    if status == 409:
        dup = (details.meta or {}).get("duplicate_profile_id")
        return ConflictError(details, duplicate_profile_id=_str_or_none(dup))
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"), now)
        if daily_capped and now is not None and (retry_after or 0) > STEADY_WINDOW:
            resets_at = now + timedelta(seconds=retry_after or 0)
            return QuotaExhaustedError(details, resets_at=resets_at, retry_after=retry_after)
        return RateLimitedError(details, retry_after=retry_after)
    if status >= 500:
        return ServerError(details)
    if 400 <= status < 500:
        return InvalidRequestError(details)
    return UnexpectedResponseError(details)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
