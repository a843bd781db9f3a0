"""OAuth 2.0 for Klaviyo: authorization code + PKCE (S256), tokens that refresh themselves.

The flow (RFC 6749 §4.1 with RFC 7636)::

    pkce = Pkce.generate(); state = new_state()
    with LoopbackReceiver(state=state) as receiver:     # 127.0.0.1, a free port
        url = authorize_url(client, receiver.redirect_uri, scopes, state, pkce)
        <the user opens url, consents; Klaviyo redirects to the receiver>
        code = receiver.wait_for_code(state)            # other states ignored, denial reported
    tokens = await exchange_code(http, client, code, pkce.verifier, receiver.redirect_uri)

:class:`OAuthSession` then implements :class:`kbridge.api.TokenProvider`: it
refreshes shortly before expiry and when the client reports a 401, saves
rotated tokens to its :class:`TokenStorage` *before* using them (a crash after
the refresh finds the new refresh token on disk), and revokes on request.
Client authentication to the token and revoke endpoints is HTTP Basic, as
Klaviyo documents. Nothing here logs or repeats a token, code or secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from kbridge.api.errors import redact
from kbridge.connections.errors import (
    OAuthDeniedError,
    OAuthError,
    OAuthStateMismatchError,
    OAuthTokenError,
)
from kbridge.connections.model import TokenSet
from kbridge.core import Clock, SystemClock
from kbridge.core.jsoncodec import JSONDecodeError, loads

__all__ = [
    "KLAVIYO_AUTHORIZE_URL",
    "KLAVIYO_REVOKE_URL",
    "KLAVIYO_TOKEN_URL",
    "InMemoryTokenStorage",
    "LoopbackReceiver",
    "OAuthClient",
    "OAuthSession",
    "Pkce",
    "TokenStorage",
    "authorize_url",
    "check_callback",
    "exchange_code",
    "new_state",
    "refresh_grant",
    "revoke_token",
]

KLAVIYO_AUTHORIZE_URL = "https://www.klaviyo.com/oauth/authorize"
KLAVIYO_TOKEN_URL = "https://a.klaviyo.com/oauth/token"  # noqa: S105 (a URL)
KLAVIYO_REVOKE_URL = "https://a.klaviyo.com/oauth/revoke"
CALLBACK_PATH = "/callback"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """An OAuth app registration and where its three endpoints are.

    :meth:`at` points all three at one base URL (the emulator serves them at
    ``/oauth/authorize|token|revoke``); the default is Klaviyo's.
    """

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str = KLAVIYO_AUTHORIZE_URL
    token_url: str = KLAVIYO_TOKEN_URL
    revoke_url: str = KLAVIYO_REVOKE_URL

    @classmethod
    def at(cls, base_url: str, client_id: str, client_secret: str) -> OAuthClient:
        base = base_url.rstrip("/")
        return cls(
            client_id,
            client_secret,
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/token",
            revoke_url=f"{base}/oauth/revoke",
        )

    def basic_auth(self) -> str:
        """The ``Authorization`` header value for the token and revoke endpoints."""
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


# -- PKCE and state --------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE pair: the secret ``verifier`` and its S256 ``challenge`` (RFC 7636 §4)."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls) -> Pkce:
        verifier = _b64url(secrets.token_bytes(64))  # 86 characters, inside 43..128
        return cls(verifier, cls.challenge_for(verifier))

    @staticmethod
    def challenge_for(verifier: str) -> str:
        return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    """An unguessable ``state`` tying the redirect to this flow (CSRF protection)."""
    return secrets.token_urlsafe(32)


def authorize_url(
    client: OAuthClient, redirect_uri: str, scopes: tuple[str, ...], state: str, pkce: Pkce
) -> str:
    """The URL the user opens to consent (scopes space-separated, as Klaviyo expects)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge_method": pkce.method,
            "code_challenge": pkce.challenge,
        }
    )
    separator = "&" if "?" in client.authorize_url else "?"
    return f"{client.authorize_url}{separator}{query}"


def check_callback(params: Mapping[str, str], expected_state: str) -> str:
    """The authorization ``code`` from the redirect's query, after checking ``state``.

    State is checked first: an error redirect with someone else's state is
    not ours to report.
    """
    state = params.get("state")
    if state is None or not secrets.compare_digest(state, expected_state):
        raise OAuthStateMismatchError(
            "the authorization redirect carried a state that does not match this flow "
            "(a stale or forged redirect); nothing was saved — run the connect command again"
        )
    error = params.get("error")
    if error:
        description = params.get("error_description")
        if error == "access_denied":
            raise OAuthDeniedError(
                "consent was denied in Klaviyo (access_denied); nothing was saved", error=error
            )
        more = f": {description}" if description else ""
        raise OAuthDeniedError(
            f"Klaviyo refused the authorization ({error}{more}); nothing was saved", error=error
        )
    code = params.get("code")
    if not code:
        raise OAuthError("the authorization redirect carried no code; nothing was saved")
    return code


# -- the loopback redirect receiver -----------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if not self.server.deliver(params):
            # Anyone on this machine can reach the port: a request without our state
            # must not end the flow, or one stray request would abort the sign-in.
            self._answer(400, "kbridge: this is not the sign-in kbridge is waiting for; ignored.")
            return
        ok = "code" in params and "error" not in params
        self._answer(
            200,
            "kbridge: authorization received. You can close this tab."
            if ok
            else "kbridge: authorization failed. Return to the terminal for details.",
        )

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: str | None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.params: dict[str, str] | None = None
        self.arrived = threading.Event()
        self._expected = state
        self._lock = threading.Lock()

    def _ours(self, params: Mapping[str, str]) -> bool:
        if self._expected is None:
            return True  # not told yet: held until expect() judges it
        state = params.get("state")
        return state is not None and secrets.compare_digest(state, self._expected)

    def deliver(self, params: dict[str, str]) -> bool:
        """Keep ``params`` if they are the first redirect for our state; whether they were."""
        with self._lock:
            if self.arrived.is_set() or not self._ours(params):
                return False
            self.params = params
            self.arrived.set()
            return True

    def expect(self, state: str) -> None:
        """From now on only ``state`` counts; drop a redirect held for another one."""
        with self._lock:
            self._expected = state
            if self.params is not None and not self._ours(self.params):
                self.params = None
                self.arrived.clear()


class LoopbackReceiver:
    """An HTTP server on 127.0.0.1 that catches the OAuth redirect carrying ``state``.

    ``port=0`` picks a free port. Klaviyo (like the emulator) matches the
    redirect URI exactly against the app's registered ones, so an app
    registered with ``http://127.0.0.1:PORT/callback`` passes that ``port``.
    Requests whose ``state`` is not this flow's are answered 400 and ignored:
    they cannot end (or jam) the wait for the real redirect. ``state`` may be
    given later, to :meth:`wait_for_code`.
    """

    def __init__(self, port: int = 0, *, state: str | None = None) -> None:
        try:
            self._server = _ReceiverServer(port, state)
        except OSError as exc:
            raise OAuthError(
                f"cannot listen on 127.0.0.1:{port} for the OAuth redirect ({exc.strerror}); "
                "choose another --redirect-port"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="kbridge-oauth-redirect",
            daemon=True,
        )

    @property
    def redirect_uri(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}{CALLBACK_PATH}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str]:
        """The redirect's query parameters (blocks up to ``timeout`` seconds)."""
        if not self._server.arrived.wait(timeout):
            raise OAuthError(
                f"no authorization redirect arrived within {timeout:g}s; nothing was saved"
            )
        assert self._server.params is not None
        return dict(self._server.params)

    def wait_for_code(self, state: str, timeout: float = 300.0) -> str:
        """Wait for the redirect carrying ``state`` and return its code (denial reported)."""
        self._server.expect(state)
        return check_callback(self.wait(timeout), state)


# -- token endpoint calls ------------------------------------------------------------------------


def _token_error(response: httpx.Response, what: str) -> OAuthTokenError:
    error: str | None = None
    description: str | None = None
    try:
        body = loads(response.content) if response.content else None
    except JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), str) else None
        desc = body.get("error_description")
        description = desc if isinstance(desc, str) else None
    detail = error or f"HTTP {response.status_code}"
    if description:
        detail += f": {redact(description)}"  # a server could echo what it was sent
    hint = ""
    if error == "invalid_grant":
        hint = " — the grant was revoked or has expired; connect again with --oauth"
    elif error == "invalid_client":
        hint = " — check the client id and client secret"
    return OAuthTokenError(
        f"{what} failed ({detail}){hint}", error=error, status=response.status_code
    )


async def _post_form(
    http: httpx.AsyncClient, client: OAuthClient, url: str, form: Mapping[str, str], what: str
) -> httpx.Response:
    try:
        response = await http.post(
            url,
            data=dict(form),
            headers={"authorization": client.basic_auth(), "accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise OAuthError(f"{what} failed: cannot reach {url} ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise _token_error(response, what)
    return response


def _token_set(
    response: httpx.Response, now: datetime, *, previous: TokenSet | None = None
) -> TokenSet:
    try:
        body = loads(response.content)
    except JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise OAuthTokenError(
            "the token endpoint answered without an access_token", status=response.status_code
        )
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous.refresh_token if previous else None  # not rotated: keep the old one
    expires_in = body.get("expires_in")
    expires_at = (
        now + timedelta(seconds=float(expires_in))
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else None
    )
    scope = body.get("scope")
    if isinstance(scope, str) and scope.strip():
        scopes = tuple(sorted(scope.split()))
    else:
        scopes = previous.scopes if previous else ()
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=refresh,
        expires_at=expires_at,
        scopes=scopes,
    )


async def exchange_code(
    http: httpx.AsyncClient,
    client: OAuthClient,
    code: str,
    verifier: str,
    redirect_uri: str,
    *,
    now: datetime,
) -> TokenSet:
    """Trade an authorization code (and the PKCE verifier) for tokens."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    response = await _post_form(http, client, client.token_url, form, "the code exchange")
    return _token_set(response, now)


async def refresh_grant(
    http: httpx.AsyncClient, client: OAuthClient, tokens: TokenSet, *, now: datetime
) -> TokenSet:
    """New tokens from the refresh token (keeping it if the server does not rotate it)."""
    if not tokens.refresh_token:
        raise OAuthTokenError("the access token expired and there is no refresh token; reconnect")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    response = await _post_form(http, client, client.token_url, form, "the token refresh")
    return _token_set(response, now, previous=tokens)


async def revoke_token(
    http: httpx.AsyncClient, client: OAuthClient, token: str, *, hint: str = "refresh_token"
) -> None:
    """Revoke ``token`` (RFC 7009); revoking a refresh token ends the whole grant."""
    form = {"token": token, "token_type_hint": hint}
    await _post_form(http, client, client.revoke_url, form, "revoking the token")


# -- the session ----------------------------------------------------------------------------------


class TokenStorage(Protocol):
    """Where an :class:`OAuthSession` keeps its tokens (the connection store, memory, …).

    ``save`` must be durable and atomic when it returns: the session only uses
    rotated tokens after they are saved. A storage shared between processes
    should also offer ``exclusive()``, an async context manager the session
    holds around a refresh (load, refresh, save), so only one process spends a
    rotating refresh token and the others find its successor
    (:class:`~kbridge.connections.StoredTokens` locks a file beside the store).
    """

    async def load(self) -> TokenSet | None: ...

    async def save(self, tokens: TokenSet) -> None: ...

    async def clear(self) -> None: ...


class InMemoryTokenStorage:
    """Tokens in memory (tests, short scripts)."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self.tokens = tokens
        self.saves = 0

    async def load(self) -> TokenSet | None:
        return self.tokens

    async def save(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        self.saves += 1

    async def clear(self) -> None:
        self.tokens = None

    def __repr__(self) -> str:
        return f"InMemoryTokenStorage(has_tokens={self.tokens is not None})"


class OAuthSession:
    """A :class:`kbridge.api.TokenProvider` over stored OAuth tokens.

    ``token()`` refreshes when the access token is within ``margin`` seconds
    of expiry; ``refresh()`` (the client calls it once after a 401) always
    does — unless the storage already holds newer tokens another process
    refreshed, which it adopts. Concurrent callers share one refresh. Pass ``http`` to reuse an
    ``httpx.AsyncClient`` (or to inject a transport in tests).
    """

    def __init__(
        self,
        client: OAuthClient,
        storage: TokenStorage,
        *,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        margin: float = 60.0,
        installation_id: str | None = None,
    ) -> None:
        self._client = client
        self._storage = storage
        self._clock: Clock = clock or SystemClock()
        self._http = http
        self._margin = margin
        self._tokens: TokenSet | None = None
        self._lock = asyncio.Lock()
        self._generation = 0
        self.installation_id = installation_id

    async def _current(self) -> TokenSet:
        if self._tokens is None:
            self._tokens = await self._storage.load()
        if self._tokens is None:
            raise OAuthTokenError("no OAuth tokens are stored for this session; connect first")
        return self._tokens

    async def token(self) -> str:
        tokens = await self._current()
        if tokens.expires_within(self._clock.now(), self._margin):
            return await self.refresh()
        return tokens.access_token

    async def refresh(self) -> str:
        seen = self._generation
        async with self._lock:
            if self._generation != seen and self._tokens is not None:
                return self._tokens.access_token  # another task refreshed while we waited
            async with self._exclusive():
                return await self._refresh_exclusively()

    def _exclusive(self) -> contextlib.AbstractAsyncContextManager[object]:
        exclusive = getattr(self._storage, "exclusive", None)
        if exclusive is None:
            return contextlib.nullcontext()
        manager: contextlib.AbstractAsyncContextManager[object] = exclusive()
        return manager

    async def _refresh_exclusively(self) -> str:
        current = await self._current()
        stored = await self._storage.load()
        if (
            stored is not None
            and stored.access_token != current.access_token
            and not stored.expires_within(self._clock.now(), self._margin)
        ):
            # Another process sharing the storage already refreshed (and, with rotating
            # refresh tokens, spent the one we hold): adopt its tokens.
            return self._adopt(stored)
        # the stored refresh token is the newest: ours may have been spent since we loaded it
        base = stored if stored is not None else current
        try:
            fresh = await self._with_http(
                lambda http: refresh_grant(http, self._client, base, now=self._clock.now())
            )
        except OAuthTokenError as exc:
            # A process that does not take the lock (an older kbridge) may have won the
            # race: its rotated tokens are in the storage by now.
            if exc.error == "invalid_grant":
                after = await self._storage.load()
                if after is not None and after.refresh_token != base.refresh_token:
                    return self._adopt(after)
            raise
        await self._storage.save(fresh)  # durable before first use
        return self._adopt(fresh)

    def _adopt(self, tokens: TokenSet) -> str:
        self._tokens = tokens
        self._generation += 1
        return tokens.access_token

    async def revoke(self) -> None:
        """Revoke the grant (refresh token, else access token) and clear the storage."""
        tokens = await self._current()
        token, hint = (
            (tokens.refresh_token, "refresh_token")
            if tokens.refresh_token
            else (tokens.access_token, "access_token")
        )
        await self._with_http(lambda http: revoke_token(http, self._client, token, hint=hint))
        await self._storage.clear()
        self._tokens = None

    async def _with_http(self, call: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        if self._http is not None:
            return await call(self._http)
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await call(http)

    def with_tokens(self, tokens: TokenSet) -> None:
        """Prime the cache (e.g. right after the code exchange)."""
        self._tokens = replace(tokens)

    def __repr__(self) -> str:
        return f"OAuthSession(client_id={self._client.client_id!r}, tokens=***)"
