"""One process of the OAuth refresh-lock tests, on a connection in the app database.

``python oauth_refresher.py use DB_URL WORKSPACE MASTER_KEY_HEX NAME``: opens the
connection's credentials, prints ``ready``, waits for a line on stdin (so both
processes meet the expired token together), reads one page of profiles, and
prints ``refreshes N`` (token requests this process sent).

``python oauth_refresher.py hold DB_URL WORKSPACE MASTER_KEY_HEX NAME AT``: takes the
connection's refresh lock on a clock fixed at ``AT``, prints ``held`` and waits to
be killed, never releasing it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime

import httpx

from kbridge.connections import open_credentials
from kbridge.core import ManualClock
from kbridge.service.connection_store import SqlConnectionStore
from kbridge.service.db import open_engine


async def use(store: SqlConnectionStore, name: str) -> int:
    refreshes = 0

    async def count(request: httpx.Request) -> None:
        nonlocal refreshes
        if request.url.path.endswith("/oauth/token"):
            refreshes += 1

    async with httpx.AsyncClient(timeout=30.0, event_hooks={"request": [count]}) as http:
        credentials = open_credentials(name, store=store, http=http)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async with credentials.client() as api:
            page = await api.get_document("get_profiles", params={"page[size]": 1})
            assert page.resources
    return refreshes


def main(verb: str, url: str, workspace: str, key_hex: str, name: str, *rest: str) -> None:
    engine = open_engine(url)
    clock = ManualClock(datetime.fromisoformat(rest[0])) if verb == "hold" else None
    store = SqlConnectionStore(engine, workspace, master_key=bytes.fromhex(key_hex), clock=clock)
    if verb == "use":
        print("refreshes", asyncio.run(use(store, name)), flush=True)
        return
    assert store.try_refresh_lock(name) is not None
    print("held", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(*sys.argv[1:])
