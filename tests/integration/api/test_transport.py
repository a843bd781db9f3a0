"""kbridge's HTTP/1.1 transport against scripted servers on loopback.

Each ``Wire`` answers the requests it receives with scripted replies, written in
the fragments given (flushed one by one, with the socket's Nagle delay off), and
records what arrived and on how many connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import ipaddress
import itertools
import socket
import ssl
import struct
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbridge.api import AsyncClient
from kbridge.api.transport import HIGH_WATER, AsyncioTransport, default_transport

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CLOSE = b"<close>"  # end the connection instead of (or after) replying
HANG = b"<hang>"  # keep the connection open and say nothing
RESET = b"<reset>"  # abort with a TCP reset
TIMEOUT = httpx.Timeout(5.0)


def ok(body: bytes = b"", *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(*chunks: bytes) -> bytes:
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + framed + b"0\r\nx-t: 1\r\n\r\n"
    )


class Wire:
    """A loopback HTTP/1.1 server with scripted replies (see the module's doc)."""

    def __init__(self, *replies: bytes | list[bytes], tls: ssl.SSLContext | None = None) -> None:
        self.replies: deque[list[bytes]] = deque(r if isinstance(r, list) else [r] for r in replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = asyncio.Event()  # set each time the server has closed a connection
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head + await _request_body(reader, head))
                for part in self.replies.popleft():
                    if part == CLOSE:
                        return
                    if part == HANG:
                        await asyncio.sleep(3600)
                    if part == RESET:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        writer.transport.abort()
                        return
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.001)  # let each fragment leave on its own
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return  # the client left, or the test ended (a cancelled handler would be logged)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self.closed.set()


async def turns(n: int) -> None:
    """Let the event loop run ``n`` rounds: ordering, never a wall-clock wait."""
    for _ in range(n):
        await asyncio.sleep(0)


async def _request_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if size == 0:
                return body
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


async def get(http: httpx.AsyncClient, path: str = "/", **kwargs: Any) -> httpx.Response:
    return await http.get(path, **kwargs)


def client(wire: Wire, **options: Any) -> httpx.AsyncClient:
    transport = AsyncioTransport(**options)
    return httpx.AsyncClient(base_url=wire.url, transport=transport, timeout=TIMEOUT)


# -- bodies ------------------------------------------------------------------------------


@st.composite
def framed_replies(draw: st.DrawFn) -> tuple[str, bytes, list[bytes]]:
    body = draw(st.binary(max_size=3000))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        raw = ok(body)
    elif framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        edges = [0, *cuts, len(body)]
        raw = chunked(*(body[a:b] for a, b in itertools.pairwise(edges)))
    else:
        raw = b"HTTP/1.0 200 OK\r\n\r\n" + body
    splits = sorted(set(draw(st.lists(st.integers(1, max(len(raw) - 1, 1)), max_size=6))))
    edges = [0, *splits, len(raw)]
    fragments = [raw[a:b] for a, b in itertools.pairwise(edges) if raw[a:b]]
    return framing, body, fragments + ([CLOSE] if framing == "close" else [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(framed_replies())
def test_bodies_arrive_whole_whatever_the_framing_and_fragments(
    case: tuple[str, bytes, list[bytes]],
) -> None:
    framing, body, fragments = case

    async def scenario() -> None:
        async with Wire(fragments, ok(b"again")) as wire, client(wire) as http:
            first = await get(http)
            assert first.status_code == 200
            assert first.content == body
            second = await get(http)
            assert second.content == b"again"
            # a framed body leaves the connection reusable; a read-until-close one cannot
            assert wire.connections == (2 if framing == "close" else 1)

    asyncio.run(scenario())


async def test_a_body_larger_than_the_read_buffer_arrives_whole() -> None:
    body = bytes(range(256)) * 40_000  # 10 MB: reading pauses and resumes
    async with Wire(ok(body)) as wire, client(wire) as http:
        async with http.stream("GET", "/") as response:
            parts = [part async for part in response.aiter_raw()]
        assert b"".join(parts) == body
        # at most the high-water mark plus one socket read is ever held at once
        assert len(parts) > 1
        assert max(len(p) for p in parts) <= HIGH_WATER + (256 << 10)


async def test_head_204_and_304_carry_no_body_and_keep_the_connection() -> None:
    head_reply = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"
    replies = [head_reply, b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\n\r\n"]
    async with Wire(*replies, ok(b"done")) as wire, client(wire) as http:
        assert (await http.head("/")).content == b""
        assert (await get(http)).status_code == 204
        assert (await get(http)).status_code == 304
        assert (await get(http)).content == b"done"
        assert wire.connections == 1


async def test_compressed_bodies_reach_httpx_raw_and_are_decoded_there() -> None:
    body = b'{"data": []}' * 500
    packed = gzip.compress(body)
    sized = ok(packed, b"content-encoding: gzip")
    framed = chunked(packed[:100], packed[100:]).replace(
        b"transfer-encoding", b"content-encoding: gzip\r\ntransfer-encoding"
    )
    async with Wire(sized, sized, framed, framed) as wire, client(wire) as http:
        for _ in range(2):  # Content-Length, then chunked framing
            async with http.stream("GET", "/") as response:
                raw = b"".join([part async for part in response.aiter_raw()])
            assert raw == packed  # the transport hands the bytes on as they came
            assert (await get(http)).content == body  # and httpx decodes them
        assert wire.connections == 1


async def test_informational_responses_are_skipped() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + ok(
        b"x"
    )
    async with Wire(reply) as wire, client(wire) as http:
        response = await get(http)
        assert (response.status_code, response.content) == (200, b"x")
        assert "link" not in response.headers


async def test_status_reason_version_and_repeated_headers_reach_httpx() -> None:
    headers = b"retry-after:  7 \r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 0\r\n\r\n"
    reply = b"HTTP/1.1 429 Slow Down\r\n" + headers
    async with Wire(reply) as wire, client(wire) as http:
        response = await get(http)
        assert response.status_code == 429
        assert response.reason_phrase == "Slow Down"
        assert response.http_version == "HTTP/1.1"
        assert response.headers["retry-after"] == "7"
        assert response.headers.get_list("x-a") == ["1", "2"]


async def test_connection_close_and_http_1_0_are_not_reused() -> None:
    replies = [
        ok(b"a", b"connection: close"),
        b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb",
        b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: keep-alive\r\n\r\nc",
        ok(b"d"),
    ]
    async with Wire(*replies) as wire, client(wire) as http:
        assert [(await get(http)).content for _ in range(4)] == [b"a", b"b", b"c", b"d"]
        assert wire.connections == 3  # "c" kept its connection alive for "d"


async def test_a_request_asking_to_close_and_a_doubly_framed_reply_end_the_connection() -> None:
    both = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
    replies = [ok(b"a"), both + b"2\r\nbb\r\n0\r\n\r\n", ok(b"c")]
    async with Wire(*replies) as wire, client(wire) as http:
        assert (await get(http, headers={"connection": "close"})).content == b"a"
        assert (await get(http)).content == b"bb"  # chunked wins over the length (RFC 9112)
        assert (await get(http)).content == b"c"
        assert wire.connections == 3


# -- requests ------------------------------------------------------------------------------


async def test_request_bodies_arrive_exactly_as_sent() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b""
        yield b"1}"

    async with Wire(ok(), ok(), ok()) as wire, client(wire) as http:
        await http.post("/one", content=b'{"x": "\xc3\xa9"}', headers={"x-k": "v"})
        await http.post("/two", content=parts())
        await http.request("DELETE", "/three?a=b%20c")
    one, two, three = wire.requests
    assert one.startswith(b"POST /one HTTP/1.1\r\n")
    assert b"\r\nx-k: v\r\n" in one
    assert b"\r\ncontent-length: 11\r\n" in one.lower()
    assert one.endswith(b'\r\n\r\n{"x": "\xc3\xa9"}')
    assert b"\r\ntransfer-encoding: chunked\r\n" in two.lower()
    assert two.endswith(b'{"a":1}')
    assert three.startswith(b"DELETE /three?a=b%20c HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in one.lower()


@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", {"x-a": "1\r\nx-b: 2"}), ("GET", {"x-a\n": "1"}), ("GET", {"x": "\0"}), ("GE T", {})],
)
async def test_a_line_break_in_a_header_or_method_is_refused_unsent(
    method: str, headers: dict[str, str]
) -> None:
    async with Wire(ok(b"a")) as wire, client(wire) as http:
        with pytest.raises(httpx.LocalProtocolError):
            await http.request(method, "/", headers=headers)
        assert (await get(http)).content == b"a"
    assert len(wire.requests) == 1


async def test_a_large_upload_waits_for_the_socket_and_arrives_whole() -> None:
    body = bytes(range(256)) * 80_000  # 20 MB: more than the socket buffers, so writing pauses
    async with Wire(ok(b"got it")) as wire, client(wire) as http:
        response = await http.post("/upload", content=body)
        assert response.content == b"got it"
    assert wire.requests[0].endswith(b"\r\n\r\n" + body)


async def test_an_upload_the_server_does_not_read_is_a_write_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []
    never = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepts, never reads: the client's socket buffers fill
        await never.wait()

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post(f"http://127.0.0.1:{port}/", content=b"x" * 50_000_000,
                                timeout=httpx.Timeout(10.0, write=0.3))  # fmt: skip
    finally:
        never.set()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# -- failures --------------------------------------------------------------------------------

S = b"HTTP/1.1 200 OK\r\n"  # a status line
TE = b"transfer-encoding: chunked\r\n\r\n"
PROTOCOL, TIMEOUT_ = httpx.RemoteProtocolError, httpx.ReadTimeout
FAILURES: list[tuple[str, list[bytes], type[httpx.TransportError]]] = [
    ("no response", [CLOSE], PROTOCOL),
    ("reset", [RESET], httpx.ReadError),
    ("cut body", [S + b"content-length: 10\r\n\r\nabc", CLOSE], PROTOCOL),
    ("cut chunk", [S + TE + b"5\r\nab", CLOSE], PROTOCOL),
    ("cut head", [S + b"content-le", CLOSE], PROTOCOL),
    ("bad status", [b"HTTP/2 200 OK\r\n\r\n"], PROTOCOL),
    ("bad code", [b"HTTP/1.1 2x0 OK\r\n\r\n"], PROTOCOL),
    ("folded header", [S + b"a: 1\r\n b\r\n\r\n"], PROTOCOL),
    ("space before colon", [S + b"a : 1\r\n\r\n"], PROTOCOL),
    ("two lengths", [S + b"content-length: 1\r\ncontent-length: 2\r\n\r\nab"], PROTOCOL),
    ("bad length", [S + b"content-length: -1\r\n\r\n"], PROTOCOL),
    ("bad chunk size", [S + TE + b"zz\r\n"], PROTOCOL),
    ("chunk overrun", [S + TE + b"1\r\nabc\r\n"], PROTOCOL),
    ("huge head", [S + b"x-pad: " + b"p" * 70_000], PROTOCOL),
    ("switch", [b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], PROTOCOL),
    ("silence", [HANG], TIMEOUT_),
    ("silence mid-body", [S + b"content-length: 5\r\n\r\nab", HANG], TIMEOUT_),
]


@pytest.mark.parametrize(
    ("script", "error"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
async def test_failures_raise_the_httpx_error_that_says_what_happened(
    script: list[bytes], error: type[httpx.TransportError]
) -> None:
    async with Wire(script, ok(b"after")) as wire, client(wire) as http:
        with pytest.raises(error):
            await get(http, timeout=httpx.Timeout(5.0, read=0.3))
        # the failed connection is never reused: the next request gets a fresh one
        assert (await get(http)).content == b"after"
        assert wire.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/")


async def test_an_unsupported_scheme_is_refused_before_connecting() -> None:
    transport = AsyncioTransport()
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))


# -- the pool --------------------------------------------------------------------------------


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with Wire([ok(b"a"), CLOSE], ok(b"b")) as wire, client(wire) as http:
        assert (await get(http)).content == b"a"
        await wire.closed.wait()
        await turns(5)  # the loop reads the FIN that loopback has already delivered
        assert (await get(http)).content == b"b"
        assert wire.connections == 2


async def test_idle_connections_expire() -> None:
    async with Wire(ok(b"a"), ok(b"b")) as wire, client(wire, keepalive_expiry=0.0) as http:
        await get(http)
        await get(http)
        assert wire.connections == 2


async def test_an_abandoned_body_closes_its_connection() -> None:
    body = b"z" * 3_000_000
    async with Wire(ok(body), ok(b"next")) as wire, client(wire) as http:
        async with http.stream("GET", "/") as response:
            async for _ in response.aiter_raw():
                break
        assert (await get(http)).content == b"next"
        assert wire.connections == 2


async def test_a_cancelled_request_frees_its_slot_and_connection() -> None:
    async with Wire([HANG], ok(b"b")) as wire, client(wire, max_connections=1) as http:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(get(http), 0.3)
        assert (await get(http)).content == b"b"
        assert wire.connections == 2


async def test_a_full_pool_waits_then_times_out() -> None:
    async with Wire(ok(b"a"), ok(b"b")) as wire, client(wire, max_connections=1) as http:
        async with http.stream("GET", "/") as held:
            with pytest.raises(httpx.PoolTimeout):
                await get(http, timeout=httpx.Timeout(5.0, pool=0.2))
            waiting = asyncio.ensure_future(get(http))
            await turns(20)
            assert not waiting.done()
            await held.aread()
        assert (await waiting).content == b"b"
        assert wire.connections == 1


def test_a_transport_moves_to_a_new_event_loop_with_a_fresh_pool() -> None:
    transport = AsyncioTransport()

    async def once() -> tuple[bytes, int]:
        async with Wire(ok(b"a")) as wire:
            http = httpx.AsyncClient(base_url=wire.url, transport=transport)
            return (await get(http)).content, wire.connections  # left idle in the pool

    assert asyncio.run(once()) == (b"a", 1)
    assert asyncio.run(once()) == (b"a", 1)  # the first loop's connection is dropped, not used


async def test_closing_the_transport_closes_idle_connections() -> None:
    async with Wire(ok(b"a")) as wire:
        transport = AsyncioTransport()
        async with httpx.AsyncClient(base_url=wire.url, transport=transport) as http:
            await get(http)
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", wire.url))


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kbridge test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


async def test_https_verifies_the_server_against_the_given_authority(
    certificate: tuple[Path, Path],
) -> None:
    tls = _server_tls(certificate)
    async with Wire(ok(b"secret"), ok(b"again"), tls=tls) as wire:
        trusted = AsyncioTransport(verify=ssl.create_default_context(cafile=certificate[0]))
        async with httpx.AsyncClient(base_url=wire.url, transport=trusted) as http:
            assert (await get(http)).content == b"secret"
            assert (await get(http)).content == b"again"
        assert wire.connections == 1
        assert wire.requests[0].startswith(b"GET / HTTP/1.1\r\n")
    async with (
        Wire(ok(b"never"), tls=tls) as wire,
        httpx.AsyncClient(base_url=wire.url, transport=AsyncioTransport()) as http,
    ):
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await get(http)  # the default authorities do not know this certificate


# -- when it is used ---------------------------------------------------------------------------


def test_a_proxy_for_the_host_leaves_the_wire_to_httpx() -> None:
    base = "https://a.klaviyo.com"
    assert isinstance(default_transport(base, proxies=[]), AsyncioTransport)
    assert default_transport(base, proxies=[("https", "http://proxy:3128")]) is None
    assert default_transport(base, proxies=[("ALL", "http://proxy:3128")]) is None
    assert isinstance(default_transport(base, proxies=[("http", "http://p:1")]), AsyncioTransport)


async def test_the_client_goes_through_an_environment_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "pk_" + "a" * 34
    body = b'{"data": []}'
    reply = ok(body, b"content-type: application/vnd.api+json")
    async with Wire(reply) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with AsyncClient(key, base_url="http://klaviyo.invalid") as api:
            await api.request("get_accounts")
    # the proxy received the absolute-form request meant for the origin
    assert proxy.requests[0].startswith(b"GET http://klaviyo.invalid/api/accounts")
