"""Session cookies, CSRF tokens and the sign-in throttle, on a clock moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kbridge.core import ManualClock
from kbridge.web.dashboard.sessions import SessionSigner, SignInThrottle

pytestmark = pytest.mark.unit

KEY = bytes(range(32))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


def test_a_session_survives_its_cookie_and_nothing_edited_does(clock: ManualClock) -> None:
    signer = SessionSigner(KEY, clock)
    session = signer.new("user-1")
    cookie = signer.dump(session)
    assert signer.load(cookie) == session
    body, mac = cookie.split(".")
    forged = SessionSigner(KEY, clock).dump(signer.new("user-2")).split(".")[0]
    assert signer.load(f"{forged}.{mac}") is None  # another body under this signature
    assert signer.load(f"{body}.{mac[:-2]}AA") is None
    assert SessionSigner(bytes(32), clock).load(cookie) is None  # another master key
    for junk in ("", ".", "a.b.c", "!!!.???"):
        assert signer.load(junk) is None


def test_a_session_expires_after_twelve_hours(clock: ManualClock) -> None:
    signer = SessionSigner(KEY, clock)
    cookie = signer.dump(signer.new("user-1"))
    clock.advance(timedelta(hours=11, minutes=59).total_seconds())
    assert signer.load(cookie) is not None
    clock.advance(120)
    assert signer.load(cookie) is None


def test_a_csrf_token_belongs_to_one_session(clock: ManualClock) -> None:
    signer = SessionSigner(KEY, clock)
    mine, theirs = signer.new("user-1"), signer.new("user-1")
    token = signer.csrf_token(mine)
    assert signer.csrf_ok(mine, token)
    assert not signer.csrf_ok(theirs, token)  # signing in again starts a new nonce
    assert not signer.csrf_ok(mine, "")
    assert not signer.csrf_ok(mine, None)
    assert not signer.csrf_ok(None, token)


def test_failed_sign_ins_wait_longer_each_time_and_a_success_clears_them(
    clock: ManualClock,
) -> None:
    throttle = SignInThrottle(clock, free=3, cap=8.0)
    for _ in range(2):
        throttle.failed("ana@example.com")
    assert throttle.wait("ana@example.com") == 0.0
    waits = []
    for _ in range(6):
        throttle.failed("ana@example.com")
        waits.append(throttle.wait("ana@example.com"))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert throttle.wait("bo@example.com") == 0.0  # one email's guesses slow only that email
    clock.advance(7.5)
    assert throttle.wait("ana@example.com") == pytest.approx(0.5)
    throttle.succeeded("ana@example.com")
    assert throttle.wait("ana@example.com") == 0.0
