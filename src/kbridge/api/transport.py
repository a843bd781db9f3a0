"""The client's HTTP/1.1 transport: httpx's models over asyncio's own protocol machinery.

httpx stays the client's interface (requests, responses, URLs, decoding, timeouts,
``MockTransport`` in tests). Only the wire is ours: httpcore + h11 + anyio spend over
twice this transport's CPU receiving a 216 KB page of 100 profiles over loopback
(``python -m benchmarks.transport`` prints the figures; docs/benchmarks.md keeps the
last run's, and what the change took off a sync).

What it does, and what it leaves to httpx's default transport:

- HTTP/1.1 (and 1.0 responses), ``http`` and ``https`` (asyncio's TLS with httpx's
  certificate defaults), keep-alive pooling per origin, ``Content-Length``,
  ``chunked`` and read-until-close bodies, 1xx responses skipped.
- httpx's per-phase timeouts (``request.extensions["timeout"]``) and exception
  types, so that callers can tell a request that never left (``ConnectError``,
  ``ConnectTimeout``, ``PoolTimeout``) from one that may have been received
  (``ReadTimeout``, ``ReadError``, ``WriteError``, ``RemoteProtocolError``).
- No proxies, HTTP/2 or Unix sockets: :func:`default_transport` returns ``None``
  (httpx's own transport) whenever the environment names a proxy for the host.
  Like the rest of the client (its rate limiter's locks), it runs on asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

__all__ = ["AsyncioTransport", "default_transport"]

#: the most a response's status line and headers may take
MAX_HEAD_BYTES = 64 * 1024
#: a chunk-size line (hex digits and extensions) longer than this is malformed
MAX_CHUNK_LINE = 4 * 1024
#: bytes buffered ahead of the reader before the socket stops being read
HIGH_WATER = 4 << 20
_NO_BODY_STATUS = frozenset({204, 304})
_CRLF = b"\r\n"
#: a body this large is written after its head rather than joined to it (one copy less)
_WRITTEN_APART = 256 * 1024
_HEX = b"0123456789abcdefABCDEF"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(rb"[\r\n\0]")


class _Expired(Exception):
    """A phase's timeout ran out (raised into the waiting coroutine)."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: a receive buffer with one waiter, and write flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        #: why the connection ended, when it was not a clean close
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close our side too: HTTP/1.1 has no half-closed use

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = self.lost = True
        self.error = exc
        self._wake_reader()
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    # -- used by the transport -------------------------------------------------------
    @property
    def reusable(self) -> bool:
        """Idle and still open, with nothing unsolicited received."""
        return (
            not self.eof
            and not self.buffer
            and self.transport is not None
            and (not self.transport.is_closing())
        )

    async def fill(self, within: float | None) -> None:
        """Wait until more bytes (or the end) arrive; raises ``_Expired`` after ``within`` s."""
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        waiter = self._reader = self.loop.create_future()
        timer = self.loop.call_later(within, _expire, waiter) if within is not None else None
        try:
            await waiter
        finally:
            self._reader = None
            if timer is not None:
                timer.cancel()

    def consume(self, count: int) -> bytes:
        """Remove and return the first ``count`` buffered bytes (one copy: slicing the
        bytearray first would make two, ~15 times the CPU for a 1 MB page)."""
        with memoryview(self.buffer) as view:
            data = bytes(view[:count])
        del self.buffer[:count]
        return data

    async def write(self, data: bytes, within: float | None) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection was closed before the request was written")
        self.transport.write(data)
        while self._writing_paused and not self.lost:
            waiter = self._writer = self.loop.create_future()
            timer = self.loop.call_later(within, _expire, waiter) if within is not None else None
            try:
                await waiter
            except _Expired:
                raise httpx.WriteTimeout("timed out writing the request") from None
            finally:
                self._writer = None
                if timer is not None:
                    timer.cancel()
        if self.lost:
            raise httpx.WriteError(f"the connection was lost while writing: {self.error}")

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):  # its event loop is already closed
                self.transport.abort()


def _read_failure(conn: _Connection, what: str) -> httpx.TransportError:
    """The error for a connection that ended while we waited to read ``what``."""
    if conn.error is not None:
        return httpx.ReadError(f"{conn.error} while reading {what}")
    return httpx.RemoteProtocolError(f"server disconnected before sending {what}")


async def _fill(conn: _Connection, within: float | None, what: str) -> None:
    if conn.eof:
        raise _read_failure(conn, what)
    try:
        await conn.fill(within)
    except _Expired:
        raise httpx.ReadTimeout(f"timed out reading {what}") from None


def _parse_head(head: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    """(version, status, reason, headers) of a response head without its final CRLFCRLF."""
    lines = head.split(_CRLF)
    parts = lines[0].split(b" ", 2)
    version = parts[0]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts) < 2:
        raise httpx.RemoteProtocolError(f"malformed status line: {lines[0][:80]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"malformed status code: {code[:20]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip(b" \t")))
    return version, int(code), parts[2] if len(parts) > 2 else b"", headers


def _request_line(request: httpx.Request) -> bytes:
    method = request.method.encode("ascii", "replace")
    if not _TOKEN.fullmatch(method):
        raise httpx.LocalProtocolError(f"illegal method {request.method[:20]!r}")
    return b"%s %s HTTP/1.1\r\n" % (method, request.url.raw_path)


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """The comma-separated, lower-cased values of every ``name`` header."""
    return [
        token.strip().lower()
        for key, value in headers
        if key.lower() == name
        for token in value.split(b",")
        if token.strip()
    ]


class _Exchange:
    """One request and its response on one connection, from writing to releasing."""

    def __init__(
        self,
        owner: AsyncioTransport,
        key: tuple[str, str, int],
        conn: _Connection,
        slots: asyncio.Semaphore,
    ) -> None:
        self.owner, self.key, self.conn, self.slots = owner, key, conn, slots
        self.done = False

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> None:
        head = [_request_line(request)]
        for name, value in request.headers.raw:
            if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
                # what h11 refuses too: a line break would smuggle a header or a request
                raise httpx.LocalProtocolError(f"illegal header {name[:40]!r}: {value[:40]!r}")
            head.append(b"%s: %s\r\n" % (name, value))
        head.append(_CRLF)
        write = timeouts.get("write")
        chunked = b"chunked" in _tokens(list(request.headers.raw), b"transfer-encoding")
        try:
            body = request.content  # bytes bodies: the common case, one write with the head
        except httpx.RequestNotRead:
            await self.conn.write(b"".join(head), write)
            async for part in request.stream:  # type: ignore[union-attr]
                if chunked and part:
                    part = b"%x\r\n%s\r\n" % (len(part), part)
                if part:
                    await self.conn.write(part, write)
            if chunked:
                await self.conn.write(b"0\r\n\r\n", write)
            return
        if chunked and body:
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        elif chunked:
            body = b"0\r\n\r\n"
        if len(body) >= _WRITTEN_APART:
            # a large body (a 5 MB bulk import) is not copied once more to join its head
            await self.conn.write(b"".join(head), write)
            await self.conn.write(body, write)
            return
        head.append(body)
        await self.conn.write(b"".join(head), write)

    async def receive(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        conn, read = self.conn, timeouts.get("read")
        while True:
            searched = 0
            while (end := conn.buffer.find(b"\r\n\r\n", max(searched - 3, 0))) < 0:
                if len(conn.buffer) > MAX_HEAD_BYTES:
                    raise httpx.RemoteProtocolError("response head exceeds 64 KB")
                searched = len(conn.buffer)
                await _fill(conn, read, "a response")
            if end > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response head exceeds 64 KB")
            version, status, reason, headers = _parse_head(conn.consume(end + 4)[:-4])
            if status == 101:
                raise httpx.RemoteProtocolError("unexpected protocol switch (101)")
            if status >= 200:
                break  # 1xx: informational, another head follows
        connection = _tokens(headers, b"connection")
        keep_alive = (
            b"close" not in connection
            and (version == b"HTTP/1.1" or b"keep-alive" in connection)
            and b"close" not in _tokens(list(request.headers.raw), b"connection")
        )
        transfer = _tokens(headers, b"transfer-encoding")
        if request.method == "HEAD" or status in _NO_BODY_STATUS:
            body: AsyncIterator[bytes] = _empty()
            length: int | None = 0
        elif transfer:
            if transfer[-1] != b"chunked":
                keep_alive = False
                body = self._until_close(read)
            else:
                body = self._chunked(read)
            if any(key.lower() == b"content-length" for key, _ in headers):
                keep_alive = False  # RFC 9112 6.3: both framings sent; never reuse
            length = None
        else:
            length = _content_length(headers)
            if length is None:
                keep_alive = False
                body = self._until_close(read)
            else:
                body = self._sized(length, read)
        return httpx.Response(
            status,
            headers=headers,
            stream=_Body(self, body, keep_alive),
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _sized(self, length: int, read: float | None) -> AsyncIterator[bytes]:
        conn, remaining = self.conn, length
        while remaining:
            want = min(remaining, HIGH_WATER)
            while len(conn.buffer) < want:
                await _fill(conn, read, "the response body")
            part = conn.consume(min(remaining, len(conn.buffer)))
            remaining -= len(part)
            yield part

    async def _until_close(self, read: float | None) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            if conn.buffer:
                yield conn.consume(len(conn.buffer))
            elif conn.eof:
                if conn.error is not None:
                    raise httpx.ReadError(f"{conn.error} while reading the response body")
                return
            else:
                try:
                    await conn.fill(read)
                except _Expired:
                    raise httpx.ReadTimeout("timed out reading the response body") from None

    async def _line(self, read: float | None, what: str) -> bytes:
        conn, searched = self.conn, 0
        while (end := conn.buffer.find(_CRLF, max(searched - 1, 0))) < 0:
            if len(conn.buffer) > MAX_CHUNK_LINE:
                raise httpx.RemoteProtocolError(f"{what} line is too long")
            searched = len(conn.buffer)
            await _fill(conn, read, what)
        if end > MAX_CHUNK_LINE:
            raise httpx.RemoteProtocolError(f"{what} line is too long")
        return conn.consume(end + 2)[:-2]

    async def _chunked(self, read: float | None) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            size_text = (await self._line(read, "a chunk size")).split(b";", 1)[0].strip()
            if not size_text or size_text.strip(_HEX) or len(size_text) > 16:
                raise httpx.RemoteProtocolError(f"malformed chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                while await self._line(read, "a trailer"):
                    pass  # trailers: read and dropped
                return
            remaining = size
            while remaining:
                while not conn.buffer:
                    await _fill(conn, read, "a chunk")
                part = conn.consume(min(remaining, len(conn.buffer)))
                remaining -= len(part)
                yield part
            if await self._line(read, "a chunk's end"):
                raise httpx.RemoteProtocolError("a chunk is longer than its size")

    def release(self, reuse: bool) -> None:
        if self.done:
            return
        self.done = True
        self.slots.release()
        self.owner._release(self.key, self.conn, reuse)


_NOTHING: tuple[bytes, ...] = ()


async def _empty() -> AsyncIterator[bytes]:
    for part in _NOTHING:
        yield part


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    values = {value.strip() for key, value in headers if key.lower() == b"content-length"}
    values = {v for value in values for v in (p.strip() for p in value.split(b","))}
    if not values:
        return None
    if len(values) > 1 or not all(v.isdigit() for v in values):
        raise httpx.RemoteProtocolError(f"malformed Content-Length: {sorted(values)[:3]!r}")
    return int(values.pop())


class _Body(httpx.AsyncByteStream):
    """A response body; closing it returns the connection to the pool, or closes it."""

    def __init__(self, exchange: _Exchange, parts: AsyncIterator[bytes], keep_alive: bool) -> None:
        self._exchange, self._parts, self._keep_alive = exchange, parts, keep_alive
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._parts:
                yield part
            self._complete = True
        except BaseException:
            self._exchange.release(False)
            raise

    async def aclose(self) -> None:
        self._exchange.release(self._complete and self._keep_alive)


class AsyncioTransport(httpx.AsyncBaseTransport):
    """An httpx transport for HTTP/1.1 over asyncio (see the module's doc)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        if max_connections < 1 or max_keepalive_connections < 0 or keepalive_expiry < 0:
            raise ValueError("connection limits must be positive")
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive_connections
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- httpx.AsyncBaseTransport ------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if not url.host:
            raise httpx.UnsupportedProtocol(f"the URL {url} has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.scheme, url.host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        slots = self._slots
        assert slots is not None
        if slots.locked():  # every slot taken: wait, within the pool timeout
            try:
                await asyncio.wait_for(slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                raise httpx.PoolTimeout("no connection became free in time") from None
        else:
            await slots.acquire()  # returns at once, without wait_for's task
        try:
            conn = self._pooled(key) or await self._connect(key, timeouts.get("connect"))
        except BaseException:
            slots.release()
            raise
        exchange = _Exchange(self, key, conn, slots)
        try:
            await exchange.send(request, timeouts)
            return await exchange.receive(request, timeouts)
        except BaseException:
            exchange.release(False)
            raise

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    # -- the pool -------------------------------------------------------------------------
    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections belong to one event loop; a new loop starts a new pool."""
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        self._loop = loop
        self._slots = asyncio.Semaphore(self._max_connections)

    def _pooled(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < self._keepalive_expiry:
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, str, int], conn: _Connection, reuse: bool) -> None:
        idle = self._idle.setdefault(key, [])
        if reuse and conn.reusable and not self._closed and len(idle) < self._max_keepalive:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, key: tuple[str, str, int], within: float | None) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if scheme == "https" else None
        conn = _Connection(loop)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                ),
                within,
            )
        except TimeoutError:
            conn.close()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.CertificateError) as exc:  # refused, unreachable, DNS, TLS
            conn.close()
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if isinstance(self._verify, ssl.SSLContext):
                self._ssl = self._verify  # the caller's, used as given
            else:
                self._ssl = httpx.create_ssl_context(verify=self._verify)
                self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl


def _proxied(url: httpx.URL, proxies: dict[str, str]) -> bool:
    if not any(proxies.get(scheme) for scheme in (url.scheme, "all")):
        return False
    return not urllib.request.proxy_bypass(url.host or "")


def default_transport(
    base_url: str, *, proxies: Iterable[tuple[str, str]] | None = None, **options: Any
) -> AsyncioTransport | None:
    """The client's transport for ``base_url``: ours, or ``None`` (httpx's) behind a proxy.

    ``proxies`` defaults to the environment's (``HTTPS_PROXY``, ``ALL_PROXY``…, as
    :func:`urllib.request.getproxies` reads them, with ``NO_PROXY`` honoured).
    """
    found = dict(proxies) if proxies is not None else urllib.request.getproxies()
    if _proxied(httpx.URL(base_url), {key.lower(): value for key, value in found.items()}):
        return None
    return AsyncioTransport(**options)
