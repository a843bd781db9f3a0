"""Sign-in sessions, CSRF tokens and the slowing of repeated failed sign-ins.

A session is a cookie the server signed (HMAC-SHA256 under a key derived from
the master key): the user id, a random nonce and an expiry. Nothing secret is
in it, and an edited one fails its signature. Every form carries a CSRF token,
the HMAC of the session's nonce, which a page of another site cannot read; a
POST without the right one is refused. Signing in starts a new nonce, so a
nonce planted before sign-in is worthless after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kbridge.core import Clock
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads

__all__ = ["COOKIE_NAME", "Session", "SessionSigner", "SignInThrottle"]

COOKIE_NAME = "kbridge_session"
SESSION_LIFETIME = timedelta(hours=12)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A visitor's session: ``user_id`` is None before sign-in."""

    user_id: str | None
    nonce: str = field(repr=False)
    expires: datetime


class SessionSigner:
    """Makes and checks session cookies and CSRF tokens under one key."""

    def __init__(self, master_key: bytes, clock: Clock) -> None:
        self._key = hmac.new(master_key, b"kbridge:dashboard-session", hashlib.sha256).digest()
        self._clock = clock

    def __repr__(self) -> str:
        return "SessionSigner(…)"

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + data, hashlib.sha256).digest()

    def new(self, user_id: str | None) -> Session:
        """A fresh session (a new nonce) for ``user_id``."""
        return Session(user_id, secrets.token_urlsafe(18), self._clock.now() + SESSION_LIFETIME)

    def dump(self, session: Session) -> str:
        """The cookie value of ``session``."""
        body = dumps(
            {"u": session.user_id, "n": session.nonce, "e": int(session.expires.timestamp())}
        )
        return f"{_b64(body)}.{_b64(self._mac(b'cookie', body))}"

    def load(self, cookie: str | None) -> Session | None:
        """The session in ``cookie`` if its signature holds and it has not expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body_text, mac_text = cookie.split(".")
        try:
            body = _unb64(body_text)
            mac = _unb64(mac_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(b"cookie", body)):
            return None
        try:
            data = loads(body)
            expires = datetime.fromtimestamp(int(data["e"]), tz=self._clock.now().tzinfo)
            user_id, nonce = data["u"], str(data["n"])
        except (JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if expires <= self._clock.now():
            return None
        return Session(user_id if isinstance(user_id, str) else None, nonce, expires)

    def csrf_token(self, session: Session) -> str:
        """The token every form of this session carries."""
        return _b64(self._mac(b"csrf", session.nonce.encode("ascii")))

    def csrf_ok(self, session: Session | None, token: object) -> bool:
        """Whether ``token`` is this session's CSRF token."""
        if session is None or not isinstance(token, str) or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(session))


class SignInThrottle:
    """Slows guessing: after ``free`` failures for an email, each further try must wait.

    The wait doubles with every failure (1 s, 2 s, 4 s … at most ``cap``) and a
    success clears it. Kept per email in this process's memory, by the injected
    clock; an attempt inside the wait is refused without checking the password,
    so a guesser gains nothing by hammering.
    """

    def __init__(self, clock: Clock, *, free: int = 3, cap: float = 900.0) -> None:
        self._clock = clock
        self._free = free
        self._cap = cap
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, email: str) -> float:
        """Seconds until ``email`` may try again (0: now)."""
        with self._lock:
            count, until = self._failures.get(email, (0, 0.0))
        return max(0.0, until - self._clock.monotonic()) if count >= self._free else 0.0

    def failed(self, email: str) -> None:
        with self._lock:
            count, _ = self._failures.get(email, (0, 0.0))
            count += 1
            delay = min(self._cap, 2.0 ** (count - self._free)) if count >= self._free else 0.0
            self._failures[email] = (count, self._clock.monotonic() + delay)
            if len(self._failures) > 100_000:  # a flood of made-up emails cannot grow it forever
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(email, None)
