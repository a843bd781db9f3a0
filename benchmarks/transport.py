"""The client's CPU to receive one page, by the wire under it.

The same ``links.next`` pages, read over loopback from the emulator (its own
process, ``--rate-limits off``) in turn by:

- httpx on its default transport (httpcore, h11, anyio);
- httpx on kbridge's :class:`~kbridge.api.transport.AsyncioTransport`;
- kbridge's whole client (``get_page_bytes``: pacing bookkeeping, retry, errors),
  which uses that transport by default;
- the floor: asyncio streams sending a fixed request and reading ``Content-Length``
  bytes, with no HTTP library at all.

CPU is this process's (``getrusage``), the median of ``--rounds`` passes over
the pages (the wires take turns in each round), per page and per record. The
floor stands where other tables put a ceiling: the least any Python client on
asyncio could spend.

Usage: python -m benchmarks.transport [--pages 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
from collections.abc import Awaitable, Callable

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.emulator import REVISION, ServerProcess, _next_link
from kbridge import catalog
from kbridge.api import AsyncClient, ClientConfig, LimiterConfig
from kbridge.api.transport import AsyncioTransport

console = Console(width=150)

#: what the sync asks for (kbridge.sync.streams), at each operation's largest page
PAGES = {
    "get_profiles": {"additional-fields[profile]": "subscriptions", "sort": "updated"},
    "get_events": {"sort": "datetime"},
}
RECORDS = {"get_profiles": "profiles", "get_events": "events"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _params(op_id: str) -> dict[str, str]:
    size = catalog.get(op_id).max_page_size
    return {**PAGES[op_id], **({"page[size]": str(size)} if size else {})}


async def _links(
    http: httpx.AsyncClient, path: str, params: dict[str, str], pages: int
) -> list[str]:
    """The first ``pages`` next-links of a walk (each a page the measured passes read)."""
    response = await http.get(path, params=params)
    links: list[str] = []
    link = _next_link(response.content)
    while link is not None and len(links) < pages:
        links.append(link)
        link = _next_link((await http.get(link)).content)
    return links


async def _raw_reader(base: str, headers: dict[str, str]) -> Callable[[str], Awaitable[bytes]]:
    """The floor: one keep-alive connection, a fixed request, ``Content-Length`` bytes read."""
    url = httpx.URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port, limit=1 << 22)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def read(link: str) -> bytes:
        target = httpx.URL(link).raw_path.decode()
        writer.write(
            f"GET {target} HTTP/1.1\r\nhost: {url.netloc.decode()}\r\n{lines}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return await reader.readexactly(length)

    return read


async def _measure(server: ServerProcess, pages: int, rounds: int) -> Table:
    base, key = server.base_url, server.api_key
    headers = {
        "authorization": f"Klaviyo-API-Key {key}",
        "revision": REVISION,
        "accept": "application/vnd.api+json",
    }
    table = Table(
        title=f"CPU to receive one page, by wire ({pages} pages, median of {rounds} passes; "
        "floor = asyncio streams, no HTTP library)"
    )
    for column in ("page", "KB", "wire", "CPU ms/page", "µs/record", "× floor"):
        table.add_column(column, justify="left" if column in ("page", "wire") else "right")
    config = ClientConfig(limiter=LimiterConfig(limit_factor=None))
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as default,
        httpx.AsyncClient(
            base_url=base, headers=headers, timeout=60, transport=AsyncioTransport()
        ) as ours,
        AsyncClient(key, base_url=base, config=config) as client,
    ):
        for op_id, record in RECORDS.items():
            op = catalog.get(op_id)
            params = _params(op_id)
            links = await _links(default, op.path, params, pages)
            size = len((await default.get(links[0])).content)
            raw = await _raw_reader(base, headers)

            async def via(http: httpx.AsyncClient, link: str) -> bytes:
                async with http.stream("GET", link) as response:
                    return b"".join([part async for part in response.aiter_bytes()])

            async def whole(
                link: str, op_id: str = op_id, params: dict[str, str] = params
            ) -> bytes:
                return await client.get_page_bytes(op_id, params=params, url=link)

            wires: list[tuple[str, Callable[[str], Awaitable[bytes]]]] = [
                ("httpx, default transport", lambda link: via(default, link)),
                ("httpx, kbridge transport", lambda link: via(ours, link)),
                ("kbridge client", whole),
                ("floor", raw),
            ]
            passes: dict[str, list[float]] = {name: [] for name, _ in wires}
            for _, read in wires:
                await read(links[0])  # warm: connection open, code paths run
            for _ in range(rounds):  # wires interleaved, so a drifting machine hits all alike
                for name, read in wires:
                    start = _cpu()
                    for link in links:
                        await read(link)
                    passes[name].append((_cpu() - start) / len(links))
            cost = {name: statistics.median(values) for name, values in passes.items()}
            for name, read in wires:
                if len(await read(links[0])) != size:
                    raise SystemExit(f"{name} read a different first page")
            per_page = op.max_page_size or 1
            for name, _ in wires:
                table.add_row(
                    f"{op_id} ({per_page} {record})",
                    f"{size / 1024:,.0f}",
                    name,
                    f"{cost[name] * 1e3:.2f}",
                    f"{cost[name] / per_page * 1e6:.1f}",
                    f"{cost[name] / cost['floor']:.1f}",
                )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    emulator_args = ["--profiles", "20000", "--events", "300000", "--rate-limits", "off"]
    with ServerProcess(emulator_args) as server:
        console.print(asyncio.run(_measure(server, args.pages, args.rounds)))


if __name__ == "__main__":
    main()
