"""The gate in front of every route: who may be answered, and how much is read.

A browser will send a request to loopback for any page on any site, and a
host name rebound to 127.0.0.1 makes its requests look same-origin. The
control plane mints full-access keys, so before any route runs:

- the ``Host`` header must name the address the connection reached (its
  loopback names ``127.0.0.1``, ``localhost``, ``[::1]`` with the bound port,
  the literal local address, or the configured public base URL) — a rebound
  name gets 421 everywhere;
- on ``/_emulator/…``: with an admin token configured, ``Authorization:
  Bearer <token>`` is required (and a client beyond loopback is then
  allowed); without one, only loopback clients are answered; an ``Origin``
  other than the emulator's own is refused; a request with a body (or a
  ``Content-Type``) must be JSON, which no cross-site form or no-cors fetch
  can send;
- bodies are read as they stream and capped (``/api/*``: Klaviyo's 5 MB and
  room for multipart framing; the OAuth and control planes take small forms):
  a ``Content-Length`` over the cap is refused before a byte is read, a
  streamed body as soon as it passes the cap, and a body that stops arriving
  gets 408 after ``body_timeout`` seconds. Either way the connection is
  closed rather than drained.

What passes is buffered (at most the cap) and replayed to the app, so no
handler can read more than the cap, whatever it does.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections import deque
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbridge.core import dumps
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.body import MAX_BODY_BYTES, MULTIPART_FRAMING
from kbridge.emulator.http.errors import HttpProblem

__all__ = ["ADMIN_PREFIX", "SMALL_BODY_BYTES", "Gate", "body_cap", "split_host"]

ADMIN_PREFIX = "/_emulator"
#: the OAuth forms and the control plane's JSON are a few hundred bytes
SMALL_BODY_BYTES = 64 * 1024
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def split_host(value: str, *, default_port: int = 80) -> tuple[str, int] | None:
    """``name[:port]`` / ``[v6][:port]`` → (lower-cased name, port); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        if ":" in port:
            return None  # an unbracketed IPv6 literal is not a valid Host
        rest = f":{port}" if colon else ""
    if not name:
        return None
    if not rest:
        return name, default_port
    if rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6:
        return name, int(rest[1:])
    return None


def body_cap(path: str) -> int:
    """The most body bytes a request to ``path`` may carry."""
    if path.startswith((ADMIN_PREFIX, "/oauth")):
        return SMALL_BODY_BYTES
    # a 5 MB file and its form framing exceed 5 MB; decode_body judges the exact limit
    return MAX_BODY_BYTES + MULTIPART_FRAMING


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class _Refusal(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _admin_error(status: int, message: str, **headers: str) -> _Refusal:
    return _Refusal(
        Response(
            dumps({"error": message}),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )
    )


class Gate:
    """ASGI middleware applying the checks above to ``app``."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig) -> None:
        self.app = app
        self._token = config.admin_token
        self._body_timeout = config.body_timeout
        public = urlsplit(config.public_base_url) if config.public_base_url else None
        self._public: tuple[str, int] | None = None
        if public is not None and public.hostname:
            default = 443 if public.scheme == "https" else 80
            self._public = (public.hostname.lower(), public.port or default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = _headers(scope)
            self._check_host(scope, headers)
            if scope["path"] == ADMIN_PREFIX or scope["path"].startswith(f"{ADMIN_PREFIX}/"):
                self._check_admin(scope, headers)
            replay = await self._read_body(scope, headers, receive)
        except _Refusal as refusal:
            # the body (if any) stays unread: hang up rather than drain it
            refusal.response.headers["connection"] = "close"
            await refusal.response(scope, receive, send)
            return
        await self.app(scope, replay, send)

    # -- Host and Origin --------------------------------------------------

    def _served(self, scope: Scope, name: str, port: int) -> bool:
        if self._public is not None and (name, port) == self._public:
            return True
        server = scope.get("server")
        if not server:
            return name in _LOOPBACK_NAMES
        local_host, local_port = str(server[0]).lower(), server[1]
        if local_port is not None and port != local_port:
            return False
        return name in _LOOPBACK_NAMES or name == local_host

    def _check_host(self, scope: Scope, headers: dict[str, str]) -> None:
        raw = headers.get("host")
        parsed = split_host(raw) if raw is not None else None
        if parsed is None or not self._served(scope, *parsed):
            # the name is not echoed: it is the attacker's
            problem = HttpProblem(
                421,
                "misdirected_request",
                "The Host header does not name this emulator; use the address it listens on "
                "(e.g. 127.0.0.1:<port>).",
                title="Misdirected request.",
            )
            raise _Refusal(problem.response())

    def _check_admin(self, scope: Scope, headers: dict[str, str]) -> None:
        if self._token is not None:
            scheme, _, given = headers.get("authorization", "").strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self._token.encode()
            ):
                raise _admin_error(
                    401,
                    "the control plane needs the admin token: Authorization: Bearer <token>",
                    **{"www-authenticate": 'Bearer realm="kbridge-emulator"'},
                )
        else:
            client = scope.get("client")
            if not client or not _is_loopback(str(client[0])):
                raise _admin_error(403, "the control plane answers loopback clients only")
        origin = headers.get("origin")
        if origin is not None and not self._own_origin(scope, origin):
            raise _admin_error(403, "the control plane refuses requests from other origins")
        if scope["method"] not in _BODYLESS:
            content_type = headers.get("content-type")
            has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
            if (content_type is not None or has_body) and not _is_json(content_type or ""):
                raise _admin_error(
                    415, "the control plane takes JSON bodies (Content-Type: application/json)"
                )

    def _own_origin(self, scope: Scope, origin: str) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file://) or garbage
        parsed = split_host(parts.netloc, default_port=443 if parts.scheme == "https" else 80)
        return parsed is not None and self._served(scope, *parsed)

    # -- bodies -----------------------------------------------------------

    async def _read_body(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Receive:
        cap = body_cap(scope["path"])
        declared = headers.get("content-length")
        if "transfer-encoding" not in headers and declared in (None, "0"):
            return receive  # no body: the common GET needs no buffering (nor a timer)
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise _Refusal(_too_large(cap))
        pending: deque[Message] = deque()
        total = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                pending.clear()
                raise _Refusal(_timed_out()) from None
            pending.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > cap:
                pending.clear()
                raise _Refusal(_too_large(cap))
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if pending:
                return pending.popleft()
            return await receive()

        return replay


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _timed_out() -> Response:
    return HttpProblem(
        408,
        "request_timeout",
        "The request body did not arrive in time.",
        title="Request timeout.",
    ).response()


def _too_large(cap: int) -> Response:
    shown = f"{cap // (1024 * 1024)} MB" if cap >= 1024 * 1024 else f"{cap // 1024} KB"
    return HttpProblem(
        413, "request_too_large", f"The request body exceeds the {shown} limit."
    ).response()
