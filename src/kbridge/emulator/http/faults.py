"""Fault injection on ``/api/*``: the failures a reliable client and sync must survive.

A spec is a comma-separated list, as given to ``kbridge emulator serve --faults``
or ``POST /_emulator/faults``::

    http500=0.02,http503=0.01@5s,timeout=0.01@2s,reset=0.01,truncate=0.005,
    challenge403=0.001,stall=0.001,http429=0.01@2s*3,latency=20ms±10ms

Each ``kind=RATE`` is the probability (0–1) that a request gets that fault:

==============  ===================================================================
kind            what the client sees                          backend touched?
==============  ===================================================================
http500         500 JSON:API error ``error``                   no
http503         503 JSON:API error; ``@N s`` adds Retry-After  no
http429         429 ``throttled``, as the rate limiter words   no
                it, with ``Retry-After`` (``@N s``, default
                1 s); ``*N`` makes each hit a burst of N
                consecutive 429s
challenge403    Cloudflare-style HTML 403, ``cf-mitigated:     no
                challenge``
reset           connection closed (RST) without a response     no
timeout         no answer for the hold (``@2s``; default 65 s), no
                then a 504 — longer than a client's read timeout
stall           no answer until the client gives up (capped at no
                the hold, default 1 h, then the connection
                is dropped)
truncate        the full ``Content-Length`` promised, half the yes: the request was
                body sent, connection closed                   applied, the answer lost
==============  ===================================================================

``latency=MEAN±JITTER`` (``20ms``, ``0.2s±50ms``; ``+-`` also accepted) delays
every request by a uniform draw in [mean − jitter, mean + jitter], before any
other fault.

Only truncate lets the backend run: a write that failed any other way left
no trace, and a truncated write is applied although its answer never
arrived. That split is what lets sync and idempotency tests prove they
neither lose nor duplicate anything.

Determinism: each kind has its own RNG seeded from the emulator's seed, and
every request arriving on ``/api/*`` draws once from every RNG, in arrival
order. So the n-th request's fate for one kind depends only on the seed and
n, not on the other kinds' rates. Setting a new spec re-seeds the RNGs.

Held requests (``timeout``, ``stall``) end at once when the server stops
(:meth:`FaultInjector.release`): their connection is dropped, so a stall
never keeps a test's emulator from shutting down.

``reset`` and ``truncate`` need the socket: under uvicorn they reach the
connection's transport; under another ASGI server (or an in-process test
transport) they raise ``ConnectionResetError`` inside the app instead.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from starlette.responses import HTMLResponse, Response

from kbridge.core import dumps
from kbridge.emulator.http.errors import JSONAPI_CONTENT_TYPE, error_document

__all__ = [
    "FAULT_KINDS",
    "FaultDecision",
    "FaultInjector",
    "FaultSpec",
    "FaultSpecError",
    "parse_faults",
    "spec_from_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: in priority order: when several kinds hit one request, the first one wins
FAULT_KINDS: tuple[str, ...] = (
    "reset",
    "stall",
    "timeout",
    "challenge403",
    "http429",
    "http503",
    "http500",
    "truncate",
)
_HOLD_DEFAULTS = {"timeout": 65.0, "stall": 3600.0}
_OFF = frozenset({"", "off", "none"})
_DURATION = r"(\d+(?:\.\d+)?)(ms|s)"
_DURATION_RE = re.compile(rf"^{_DURATION}$")
_LATENCY_RE = re.compile(rf"^{_DURATION}(?:\s*(?:±|\+-|\+/-)\s*{_DURATION})?$")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(?:@([^*]+))?(?:\*(\d+))?$")
#: how long to wait for the client's side of a connection we closed to be noticed
_CLOSE_WAIT = 1.0


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message names the offending part."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Rates per fault kind, holds, and latency; all zero means no faults."""

    http500: float = 0.0
    http503: float = 0.0
    http429: float = 0.0
    challenge403: float = 0.0
    reset: float = 0.0
    timeout: float = 0.0
    stall: float = 0.0
    truncate: float = 0.0
    #: seconds a ``timeout`` holds the request before answering 504
    timeout_hold: float = _HOLD_DEFAULTS["timeout"]
    #: seconds a ``stall`` waits for the client to give up before dropping the connection
    stall_hold: float = _HOLD_DEFAULTS["stall"]
    #: ``Retry-After`` seconds on an injected 503 (``None``: no header)
    retry_after: int | None = None
    #: ``Retry-After`` seconds on an injected 429 (Klaviyo always sends one)
    retry_after_429: int = 1
    #: consecutive 429s per hit: the hit and the next ``burst_429 - 1`` requests
    burst_429: int = 1
    latency_mean: float = 0.0
    latency_jitter: float = 0.0

    def rate(self, kind: str) -> float:
        value: float = getattr(self, kind)
        return value

    @property
    def active(self) -> bool:
        return self.latency_mean > 0 or any(self.rate(kind) > 0 for kind in FAULT_KINDS)

    def describe(self) -> str:
        """The canonical spec string (parses back to an equal spec); ``"off"`` when inactive."""
        parts = []
        for kind in FAULT_KINDS:
            rate = self.rate(kind)
            if rate <= 0:
                continue
            text = f"{kind}={rate:g}"
            if kind in _HOLD_DEFAULTS and getattr(self, f"{kind}_hold") != _HOLD_DEFAULTS[kind]:
                text += f"@{_format_duration(getattr(self, f'{kind}_hold'))}"
            if kind == "http503" and self.retry_after is not None:
                text += f"@{self.retry_after}s"
            if kind == "http429":
                if self.retry_after_429 != 1:
                    text += f"@{self.retry_after_429}s"
                if self.burst_429 != 1:
                    text += f"*{self.burst_429}"
            parts.append(text)
        if self.latency_mean > 0 or self.latency_jitter > 0:
            latency = _format_duration(self.latency_mean)
            if self.latency_jitter > 0:
                latency += f"±{_format_duration(self.latency_jitter)}"
            parts.append(f"latency={latency}")
        return ",".join(parts) or "off"

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _format_duration(seconds: float) -> str:
    millis = seconds * 1000
    if millis < 1000 and float(millis).is_integer():
        return f"{int(millis)}ms"
    return f"{seconds:g}s"


def _duration(text: str, *, where: str) -> float:
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise FaultSpecError(f"{where}: {text!r} is not a duration such as 20ms or 2s")
    return _seconds(match.group(1), match.group(2))


def _seconds(number: str, unit: str) -> float:
    value = float(number)
    return value / 1000 if unit == "ms" else value


def _rate(kind: str, text: str) -> tuple[float, str | None, str | None]:
    match = _RATE_RE.match(text.strip())
    if match is None:
        raise FaultSpecError(
            f"{kind}: {text!r} is not a rate between 0 and 1 (e.g. {kind}=0.01"
            + (f" or {kind}=0.01@2s)" if kind in (*_HOLD_DEFAULTS, "http503") else ")")
            + (" or http429=0.01@2s*3" if kind == "http429" else "")
        )
    rate = float(match.group(1))
    if not 0 <= rate <= 1:
        raise FaultSpecError(f"{kind}: the rate must be between 0 and 1, got {text!r}")
    return rate, match.group(2), match.group(3)


def parse_faults(text: str | None) -> FaultSpec:
    """Parse ``"http500=0.02,latency=20ms±10ms,…"``; ``None``, ``""`` or ``"off"`` → no faults."""
    if text is None or text.strip().lower() in _OFF:
        return FaultSpec()
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        kind = name.strip()
        if not sep or not value.strip():
            raise FaultSpecError(f"{part!r} must look like kind=value (e.g. http500=0.02)")
        if kind in seen:
            raise FaultSpecError(f"{kind} is given more than once")
        seen.add(kind)
        if kind == "latency":
            match = _LATENCY_RE.match(value.strip())
            if match is None:
                raise FaultSpecError(
                    f"latency: {value.strip()!r} is not MEAN or MEAN±JITTER (e.g. 20ms±10ms)"
                )
            values["latency_mean"] = _seconds(match.group(1), match.group(2))
            if match.group(3) is not None:
                values["latency_jitter"] = _seconds(match.group(3), match.group(4))
            continue
        if kind not in FAULT_KINDS:
            known = ", ".join((*FAULT_KINDS, "latency"))
            raise FaultSpecError(f"unknown fault {kind!r} (known: {known})")
        rate, suffix, burst = _rate(kind, value)
        values[kind] = rate
        if burst is not None:
            if kind != "http429":
                raise FaultSpecError(f"{kind}: only http429 takes a *N burst")
            if int(burst) < 1:
                raise FaultSpecError("http429: the burst after * must be at least 1")
            values["burst_429"] = int(burst)
        if suffix is None:
            continue
        if kind in _HOLD_DEFAULTS:
            hold = _duration(suffix, where=kind)
            if hold <= 0:
                raise FaultSpecError(f"{kind}: the hold after @ must be positive")
            values[f"{kind}_hold"] = hold
        elif kind == "http503":
            values["retry_after"] = math.ceil(_duration(suffix, where=kind))
        elif kind == "http429":
            values["retry_after_429"] = max(1, math.ceil(_duration(suffix, where=kind)))
        else:
            raise FaultSpecError(
                f"{kind}: only timeout, stall, http503 and http429 take an @ suffix"
            )
    return FaultSpec(**values)


def spec_from_json(value: object) -> FaultSpec:
    """A spec from JSON: ``null``, a spec string, ``{"spec": …}`` or ``{"http500": 0.02, …}``."""
    if value is None or isinstance(value, str):
        return parse_faults(value)
    if not isinstance(value, Mapping):
        raise FaultSpecError("faults must be a spec string or an object such as {'http500': 0.02}")
    if set(value) == {"spec"}:
        return spec_from_json(value["spec"])
    parts = []
    for kind, setting in value.items():
        if isinstance(setting, bool) or not isinstance(setting, int | float | str):
            raise FaultSpecError(
                f"{kind}: the value must be a number or a string such as '0.01@2s'"
            )
        parts.append(f"{kind}={setting}")
    return parse_faults(",".join(parts))


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What happens to one request: an optional fault kind after ``delay`` seconds."""

    kind: str | None
    delay: float = 0.0


class _Transport(Protocol):
    def abort(self) -> None: ...
    def close(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def _transport_of(send: Send) -> _Transport | None:
    """The connection's transport when ``send`` is uvicorn's (a bound method of its cycle)."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return None
    found: _Transport = transport
    return found


class FaultInjector:
    """Decides and applies faults for ``/api/*`` requests; counts what it injected."""

    def __init__(
        self,
        spec: FaultSpec,
        *,
        seed: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._seed = seed
        self._sleep = sleep
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._spec = spec
        self._rngs: dict[str, random.Random] = {}
        #: 429s still owed to the current burst
        self._burst_left = 0
        self._reseed()
        #: requests being held (timeout/stall), each with the event that ends its hold early
        self._holds: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._released = False

    def __repr__(self) -> str:
        return f"FaultInjector({self._spec.describe()!r})"

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    def configure(self, spec: FaultSpec) -> None:
        """Switch to ``spec``; the RNGs restart from the seed so a run is reproducible."""
        with self._lock:
            self._spec = spec
            self._reseed()

    def clear(self) -> None:
        """Forget the counts and restart the RNGs (an emulator reset)."""
        with self._lock:
            self._counts.clear()
            self._reseed()

    def release(self) -> None:
        """End every held request now and hold no more (the server is stopping).

        Thread-safe: the server's loop runs in another thread than the one stopping it.
        """
        with self._lock:
            self._released = True
            holds = list(self._holds)
        for loop, event in holds:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def _hold(self, receive: Receive, seconds: float) -> str:
        """Hold a request for up to ``seconds``: ``"answer"`` when the hold ran out,
        ``"gone"`` when the client gave up, ``"released"`` when the server is stopping."""
        release = asyncio.Event()
        entry = (asyncio.get_running_loop(), release)
        with self._lock:
            if self._released:
                return "released"
            self._holds.add(entry)
        try:
            return await _hold_until(receive, seconds, release)
        finally:
            with self._lock:
                self._holds.discard(entry)

    def _reseed(self) -> None:
        self._burst_left = 0
        self._rngs = {
            kind: random.Random(f"kbridge-emulator-faults:{self._seed}:{kind}")
            for kind in (*FAULT_KINDS, "latency")
        }

    def snapshot(self) -> dict[str, Any]:
        """Counts of injected faults per kind (``latency``: delayed requests) and the spec."""
        with self._lock:
            counts = {kind: self._counts.get(kind, 0) for kind in (*FAULT_KINDS, "latency")}
            return {
                "spec": self._spec.describe(),
                "requests": self._counts.get("requests", 0),
                "injected": counts,
            }

    def applies_to(self, path: str) -> bool:
        return path.startswith("/api/") and self._spec.active

    def decide(self) -> FaultDecision:
        """Draw once from every kind's RNG (arrival order); the first kind that hits wins."""
        with self._lock:
            spec = self._spec
            self._counts["requests"] += 1
            hits = [kind for kind in FAULT_KINDS if self._rngs[kind].random() < spec.rate(kind)]
            if self._burst_left > 0:
                # a burst's 429s come first, back to back, whatever else was drawn
                self._burst_left -= 1
                hits.insert(0, "http429")
            elif "http429" in hits:
                self._burst_left = spec.burst_429 - 1
            draw = self._rngs["latency"].random()
            delay = 0.0
            if spec.latency_mean > 0 or spec.latency_jitter > 0:
                delay = max(0.0, spec.latency_mean + spec.latency_jitter * (2 * draw - 1))
                if delay > 0:
                    self._counts["latency"] += 1
            kind = hits[0] if hits else None
            if kind is not None:
                self._counts[kind] += 1
            return FaultDecision(kind, delay)

    async def serve(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Handle one ``/api/*`` request: maybe delay, then fault or pass it to ``app``."""
        decision = self.decide()
        if decision.delay > 0:
            await self._sleep(decision.delay)
        spec = self._spec
        kind = decision.kind
        if kind is None:
            await app(scope, receive, send)
        elif kind == "truncate":
            await _truncate(scope, receive, send, app)
        elif kind == "reset":
            await _drop(receive, send, reset=True)
        elif kind == "timeout":
            held = await self._hold(receive, spec.timeout_hold)
            if held == "answer":
                await _canned(kind, spec)(scope, receive, send)
            elif held == "released":
                await _drop(receive, send, reset=True)
        elif kind == "stall":
            if await self._hold(receive, spec.stall_hold) != "gone":
                await _drop(receive, send, reset=True)
        else:
            await _canned(kind, spec)(scope, receive, send)


def _canned(kind: str, spec: FaultSpec) -> Response:
    """The answer a fault gives without touching the backend."""
    if kind == "challenge403":
        return HTMLResponse(
            _CHALLENGE_PAGE,
            status_code=403,
            headers={
                "cf-mitigated": "challenge",
                "server": "cloudflare",
                "cache-control": "private, max-age=0, no-store, no-cache, must-revalidate",
            },
        )
    headers: dict[str, str] = {}
    if kind == "http429":
        # worded as the rate limiter's own 429, so a client cannot tell them apart
        wait = spec.retry_after_429
        document = error_document(
            429,
            "throttled",
            f"Request was throttled. Expected available in {wait} seconds.",
            title="Request was throttled.",
        )
        return Response(
            dumps(document),
            status_code=429,
            media_type=JSONAPI_CONTENT_TYPE,
            headers={"Retry-After": str(wait)},
        )
    if kind == "http503":
        status, code, title = 503, "service_unavailable", "Service unavailable."
        detail = "The service is temporarily unavailable; try again later."
        if spec.retry_after is not None:
            headers["Retry-After"] = str(spec.retry_after)
    elif kind == "timeout":
        status, code, title = 504, "error", "Gateway timeout."
        detail = "The request took too long to process."
    else:
        status, code, title = 500, "error", "A server error occurred."
        detail = "An unexpected error occurred."
    document = error_document(
        status,
        code,
        f"{detail} (emulator fault injection: {kind})",
        title=title,
    )
    return Response(
        dumps(document), status_code=status, media_type=JSONAPI_CONTENT_TYPE, headers=headers
    )


_CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow"></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1>a.klaviyo.com</h1><h2>Verifying you are human. This may take a few seconds.</h2>
<noscript>Enable JavaScript and cookies to continue</noscript>
</div></div></body></html>
"""


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _hold_until(receive: Receive, seconds: float, release: asyncio.Event) -> str:
    """Wait for the client to go, ``release`` or ``seconds``, whichever comes first."""
    gone = asyncio.ensure_future(_wait_disconnect(receive))
    released = asyncio.ensure_future(release.wait())
    try:
        done, _ = await asyncio.wait(
            (gone, released), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
        released.cancel()
    if gone in done:
        return "gone"
    return "released" if released in done else "answer"


async def _hold(receive: Receive, seconds: float) -> bool:
    """Wait up to ``seconds`` without answering; True if the client gave up meanwhile."""
    try:
        await asyncio.wait_for(_wait_disconnect(receive), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _drop(receive: Receive, send: Send, *, reset: bool) -> None:
    """Close the connection with no (further) answer: RST for ``reset``, FIN otherwise."""
    transport = _transport_of(send)
    if transport is None:
        raise ConnectionResetError("emulator fault injection: connection dropped")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # linger 0: the kernel answers with RST instead of a graceful FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Let the server see the disconnect, so it does not complain about a missing response.
    await _hold(receive, _CLOSE_WAIT)


async def _truncate(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
    """Run the request for real, then send the promised length but only half the body."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, capture)
    body = b"".join(chunks)
    if start is None or not body:
        # nothing to cut (e.g. a 202/204): the write happened, the answer is lost
        await _drop(receive, send, reset=False)
        return
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send(_with_headers(start, headers))
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await _drop(receive, send, reset=False)


def _with_headers(message: Message, headers: list[tuple[bytes, bytes]]) -> Message:
    updated = dict(message)
    updated["headers"] = headers
    return updated
