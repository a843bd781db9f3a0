"""Sync: declarative streams, pure state functions, time windows and the engine.

May import: api, warehouse, connections, core, catalog.

    async with AsyncClient(api_key) as client:
        options = SyncOptions("duckdb:///kbridge.duckdb", streams=["profiles"])
        result = await kbridge.sync.run(client, options)
"""

from __future__ import annotations

from kbridge.sync.engine import (
    Callbacks,
    ProgressCallback,
    ReportProgressCallback,
    StreamDoneCallback,
    StreamResult,
    SyncOptions,
    SyncResult,
    run,
)
from kbridge.sync.errors import SyncError, UnknownStreamError
from kbridge.sync.streams import STREAMS, Stream, get_stream, select_streams
from kbridge.sync.windows import ReportProgress

__all__ = [
    "STREAMS",
    "Callbacks",
    "ProgressCallback",
    "ReportProgress",
    "ReportProgressCallback",
    "Stream",
    "StreamDoneCallback",
    "StreamResult",
    "SyncError",
    "SyncOptions",
    "SyncResult",
    "UnknownStreamError",
    "get_stream",
    "run",
    "select_streams",
]
