"""error_from_response: one mapping from an HTTP response to the error tree."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from kbridge.api import (
    ApiError,
    AuthenticationError,
    ChallengeError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
    error_from_response,
)
from kbridge.api.errors import parse_retry_after, redact
from kbridge.core import KbridgeError, dumps

pytestmark = pytest.mark.unit


def body(status: int, code: str = "x", **extra: object) -> bytes:
    item = {"id": "e-1", "status": status, "code": code, "title": "T.", "detail": "D."}
    item.update(extra)
    return dumps({"errors": [item]})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, InvalidRequestError),
        (409, ConflictError),
        (410, InvalidRequestError),
        (415, InvalidRequestError),
        (422, InvalidRequestError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (524, ServerError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[ApiError]) -> None:
    err = error_from_response(status, {}, body(status), operation_id="get_profiles")
    assert type(err) is cls
    assert isinstance(err, KbridgeError)
    assert (err.status, err.code, err.detail, err.request_id) == (status, "x", "D.", "e-1")
    assert err.operation_id == "get_profiles"


def test_message_is_one_line_with_the_facts() -> None:
    err = error_from_response(
        400,
        {},
        body(
            400,
            "invalid",
            detail="'profiless' is not an allowed include",
            source={"parameter": "include"},
        ),
        operation_id="get_events",
    )
    text = str(err)
    assert "\n" not in text
    assert text.startswith("400 invalid: 'profiless' is not an allowed include")
    assert "parameter 'include'" in text
    assert "operation get_events" in text
    assert "request id e-1" in text
    assert err.source_parameter == "include"


def test_invalid_request_carries_the_source_pointer() -> None:
    err = error_from_response(422, {}, body(422, source={"pointer": "/data/attributes/email"}))
    assert isinstance(err, InvalidRequestError)
    assert err.source_pointer == "/data/attributes/email"
    assert "at /data/attributes/email" in str(err)


def test_permission_denied_names_scopes() -> None:
    err = error_from_response(403, {}, body(403), scopes=("lists:write", "profiles:write"))
    assert isinstance(err, PermissionDeniedError)
    assert err.required_scopes == ("lists:write", "profiles:write")
    assert "lists:write, profiles:write" in str(err)


def test_conflict_carries_duplicate_profile_id() -> None:
    err = error_from_response(
        409, {}, body(409, "duplicate_profile", meta={"duplicate_profile_id": "01J"})
    )
    assert isinstance(err, ConflictError)
    assert err.duplicate_profile_id == "01J"
    plain = error_from_response(409, {}, body(409))
    assert isinstance(plain, ConflictError)
    assert plain.duplicate_profile_id is None


def test_rate_limited_reads_retry_after_seconds_and_http_date() -> None:
    err = error_from_response(429, {"Retry-After": "12"}, body(429, "throttled"))
    assert isinstance(err, RateLimitedError)
    assert err.retry_after == 12
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    dated = error_from_response(429, {"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}, b"", now=now)
    assert isinstance(dated, RateLimitedError)
    assert dated.retry_after == 30
    missing = error_from_response(429, {}, b"")
    assert isinstance(missing, RateLimitedError)
    assert missing.retry_after is None


def test_a_daily_capped_429_waiting_past_the_minute_is_quota_exhausted() -> None:
    now = datetime(2026, 1, 1, 23, tzinfo=UTC)
    err = error_from_response(429, {"Retry-After": "3600"}, body(429), now=now, daily_capped=True)
    assert isinstance(err, QuotaExhaustedError)
    assert isinstance(err, RateLimitedError)
    assert err.resets_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert "2026-01-02" in str(err)
    # the same answer from an operation without a daily cap, or a short wait: a throttle
    for headers, capped in (({"Retry-After": "3600"}, False), ({"Retry-After": "60"}, True)):
        throttled = error_from_response(429, headers, body(429), now=now, daily_capped=capped)
        assert type(throttled) is RateLimitedError


def test_non_json_error_still_gets_the_right_class_and_a_short_detail() -> None:
    html = b"<html>\n<body>  Sorry, you have been blocked " + b"z" * 400 + b"</body></html>"
    err = error_from_response(403, {"cf-ray": "abc-SJC"}, html, scopes=("profiles:read",))
    assert isinstance(err, PermissionDeniedError)
    assert err.detail is not None
    assert err.detail.startswith("<html> <body> Sorry, you have been blocked")
    assert len(err.detail) <= 200
    assert err.request_id == "abc-SJC"
    empty = error_from_response(502, {}, b"")
    assert isinstance(empty, ServerError)
    assert str(empty) == "502: no detail given"


def test_parse_retry_after_rejects_garbage() -> None:
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


def test_redact_masks_keys_and_tokens() -> None:
    text = "key pk_abcDEF123456789012345 and Bearer abc.def-ghi and Klaviyo-API-Key whatever"
    masked = redact(text)
    assert "abcDEF" not in masked
    assert "abc.def" not in masked
    assert "whatever" not in masked


def _roundtrip(err: ApiError) -> ApiError:
    restored: ApiError = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes)
    return restored


def test_errors_survive_pickling_with_their_facts() -> None:
    resets = datetime(2026, 1, 2, tzinfo=UTC)
    original = error_from_response(
        429,
        {"Retry-After": "90"},
        body(429, "throttled"),
        operation_id="x",
        now=resets - timedelta(seconds=90),
        daily_capped=True,
    )
    copy = _roundtrip(original)
    assert isinstance(copy, QuotaExhaustedError)
    assert str(copy) == str(original)
    assert (copy.retry_after, copy.resets_at, copy.status, copy.code) == (
        90,
        resets,
        429,
        "throttled",
    )
    conflict = _roundtrip(
        error_from_response(409, {}, body(409, meta={"duplicate_profile_id": "D"}))
    )
    assert isinstance(conflict, ConflictError)
    assert conflict.duplicate_profile_id == "D"


# -- a CDN challenge is told apart from a scope 403 by content type and body ----------------

_SCOPE_403 = (
    b'{"errors":[{"id":"e1","status":403,"code":"permission_denied",'
    b'"title":"You do not have permission to perform this action.",'
    b'"detail":"This API key is missing required scopes."}]}'
)
_CHALLENGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>"
)


@pytest.mark.parametrize(
    ("headers", "content", "challenged"),
    [
        ({"content-type": "application/vnd.api+json"}, _SCOPE_403, False),
        ({"content-type": "text/html; charset=UTF-8"}, _CHALLENGE, True),
        ({"content-type": "text/html", "cf-mitigated": "challenge"}, b"", True),
        ({"cf-mitigated": "challenge", "content-type": "application/json"}, _SCOPE_403, True),
        # HTML that still carries JSON:API errors cannot be HTML at all: trust the body
        ({"content-type": "text/html"}, _SCOPE_403, False),
        ({}, b"", False),  # nothing says challenge: a real 403 must never be looped on
    ],
)
def test_a_403_is_a_challenge_only_when_the_cdn_says_so(
    headers: dict[str, str], content: bytes, challenged: bool
) -> None:
    err = error_from_response(403, headers, content, scopes=("profiles:read",))
    assert isinstance(err, ChallengeError) is challenged
    assert isinstance(err, PermissionDeniedError) is not challenged


def test_a_challenge_names_the_page_and_a_500_with_html_stays_a_server_error() -> None:
    err = error_from_response(403, {"content-type": "text/html"}, _CHALLENGE)
    assert err.code == "cdn_challenge"
    assert "Just a moment..." in str(err)
    assert "not a permissions problem" in str(err)
    html500 = error_from_response(500, {"content-type": "text/html"}, _CHALLENGE)
    assert not isinstance(html500, ChallengeError)
