"""Warehouse rows → Klaviyo events through bulk event jobs (≤1,000 events, < 5 MB each).

Every event carries a ``unique_id`` — the row's own (``unique_id_column``) or one
derived from its payload — so an event sent twice (a rerun with ``--full``, a push
resumed after a crash between Klaviyo's 202 and the warehouse commit) is recorded once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from kbridge.api import AsyncClient
from kbridge.api.capabilities import PUSH_EVENTS
from kbridge.core import Clock, SystemClock
from kbridge.push._engine import (
    JobLimits,
    Ledger,
    OnJob,
    PushInputError,
    PushSummary,
    account_of,
    encode,
    payload_hash,
    send_accepted,
    text_of,
)
from kbridge.warehouse import Warehouse

__all__ = ["EVENT_LIMITS", "PUSH_EVENTS", "push_events"]

EVENT_LIMITS = JobLimits(max_rows=1000)
_KIND = "event-bulk-create-job"
_IDENTITIES = ("email", "phone_number", "external_id")


def _body(fragment: orjson.Fragment) -> dict[str, Any]:
    return {"data": {"type": _KIND, "attributes": {"events-bulk-create": {"data": fragment}}}}


async def push_events(
    client: AsyncClient,
    rows: Iterable[Mapping[str, Any]],
    *,
    warehouse: Warehouse,
    metric: str,
    id_column: str = "email",
    time_column: str | None = None,
    value_column: str | None = None,
    unique_id_column: str | None = None,
    properties: Sequence[str] | None = None,
    full: bool = False,
    dry_run: bool = False,
    account_id: str | None = None,
    limits: JobLimits = EVENT_LIMITS,
    clock: Clock | None = None,
    on_job: OnJob | None = None,
) -> PushSummary:
    """Record one ``metric`` event per row for the profile ``id_column`` names; the counts.

    ``properties`` are the event's properties (default: every column not used otherwise).
    Rows already sent (same payload) are skipped unless ``full``.
    """
    if id_column not in _IDENTITIES:
        raise PushInputError(f"--id-column must be one of {', '.join(_IDENTITIES)}")
    if not metric.strip():
        raise PushInputError("--metric names no metric")
    clock = clock or SystemClock()
    used = {id_column, time_column, value_column, unique_id_column}
    with PUSH_EVENTS.calls():
        account = account_id or await account_of(client)
        ledger = Ledger(warehouse, account, f"events:{metric}", clock)
        await ledger.prepare()
        sent_before = set() if full else await ledger.sent_hashes()
        summary = PushSummary()
        envelope = len(orjson.dumps(_body(orjson.Fragment(b"[]"))))
        batch: list[bytes] = []
        keys: list[tuple[str, int]] = []
        size = 0
        refused: list[tuple[str, str, str]] = []

        async def submit() -> None:
            nonlocal batch, keys, size
            rows_, keys_ = batch, keys
            batch, keys, size = [], [], 0
            summary.jobs += 1
            if dry_run:
                summary.sent += len(keys_)
                return
            sent, bad = await send_accepted(
                client, "bulk_create_events", _body, rows_, keys_, ledger, _KIND
            )
            summary.sent += sent
            refused.extend(bad)
            if on_job is not None:
                on_job(None, sent)

        for row in rows:
            summary.rows += 1
            identity = text_of(row.get(id_column))
            if not identity:
                refused.append(("", id_column, f"no {id_column}"))
                continue
            cols = properties if properties is not None else [c for c in row if c not in used]
            event: dict[str, Any] = {
                "properties": {c: row.get(c) for c in cols},
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
            }
            if time_column is not None and row.get(time_column) is not None:
                event["time"] = row.get(time_column)
            if value_column is not None and row.get(value_column) is not None:
                event["value"] = float(row[value_column])
            given = text_of(row.get(unique_id_column)) if unique_id_column else ""
            # without a unique id of its own, the payload names the event: a resend is a repeat
            event["unique_id"] = (
                given or hashlib.blake2b(encode([identity, event]), digest_size=16).hexdigest()
            )
            item = {
                "type": "event-bulk-create",
                "attributes": {
                    "profile": {"data": {"type": "profile", "attributes": {id_column: identity}}},
                    "events": {"data": [{"type": "event", "attributes": event}]},
                },
            }
            encoded = encode(item)
            if len(encoded) > limits.max_row_bytes:
                refused.append(
                    (identity, "event", f"payload of {len(encoded)} bytes exceeds 100 KB")
                )
                continue
            digest = payload_hash(encoded)
            if digest in sent_before:
                summary.unchanged += 1
                continue
            if batch and (
                len(batch) >= limits.max_rows
                or envelope + size + len(encoded) + 1 > limits.max_bytes
            ):
                await submit()
            batch.append(encoded)
            keys.append((str(event["unique_id"]), digest))
            size += len(encoded) + 1
        if batch:
            await submit()
        summary.errors = len(refused)
        if not dry_run:
            await ledger.record_errors("", refused)
        return summary
