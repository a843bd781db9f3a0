"""Warehouse consent → Klaviyo subscriptions, through bulk subscribe and unsubscribe jobs.

The consent column decides, row by row: a recorded yes subscribes (jobs of ≤1,000), a
recorded no unsubscribes (jobs of ≤100), and anything else — no value, or one that is
not clearly yes or no — is never sent: such rows are counted as
``skipped_no_consent``. Subscribing someone without recorded consent is the one
mistake a push must not make.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from kbridge.api import AsyncClient
from kbridge.api.capabilities import PUSH_SUBSCRIPTIONS
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

__all__ = ["PUSH_SUBSCRIPTIONS", "consent_of", "push_subscriptions"]

_SUBSCRIBE = ("bulk_subscribe_profiles", "profile-subscription-bulk-create-job", "SUBSCRIBED")
_UNSUBSCRIBE = ("bulk_unsubscribe_profiles", "profile-subscription-bulk-delete-job", "UNSUBSCRIBED")
_LIMITS = {_SUBSCRIBE: JobLimits(max_rows=1000), _UNSUBSCRIBE: JobLimits(max_rows=100)}
_YES = frozenset({"true", "t", "yes", "y", "1", "subscribed", "opt-in", "opted_in"})
_NO = frozenset({"false", "f", "no", "n", "0", "unsubscribed", "opt-out", "opted_out"})
_CHANNELS = {"email": "email", "phone_number": "sms"}


def consent_of(value: Any) -> bool | None:
    """True for a recorded yes, False for a recorded no, None when consent is not recorded."""
    if isinstance(value, bool):
        return value
    text = text_of(value).lower()
    return True if text in _YES else False if text in _NO else None


async def push_subscriptions(
    client: AsyncClient,
    rows: Iterable[Mapping[str, Any]],
    *,
    warehouse: Warehouse,
    consent_column: str,
    id_column: str = "email",
    list_id: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    account_id: str | None = None,
    clock: Clock | None = None,
    on_job: OnJob | None = None,
) -> PushSummary:
    """Subscribe the rows whose ``consent_column`` records a yes, unsubscribe the noes, and
    count the rest as ``skipped_no_consent``; marketing consent on the channel of
    ``id_column`` (``email`` → email, ``phone_number`` → SMS)."""
    channel = _CHANNELS.get(id_column)
    if channel is None:
        raise PushInputError("subscriptions need --id-column email or phone_number")
    clock = clock or SystemClock()
    with PUSH_SUBSCRIPTIONS.calls():
        account = account_id or await account_of(client)
        ledger = Ledger(warehouse, account, f"subscriptions:{channel}:{list_id or '-'}", clock)
        await ledger.prepare()
        sent_before = set() if full else await ledger.sent_hashes()
        summary = PushSummary()
        refused: list[tuple[str, str, str]] = []
        batches: dict[tuple[str, str, str], tuple[list[bytes], list[tuple[str, int]]]] = {
            _SUBSCRIBE: ([], []),
            _UNSUBSCRIBE: ([], []),
        }

        def body_for(kind: str) -> Any:
            def make(fragment: orjson.Fragment) -> dict[str, Any]:
                data: dict[str, Any] = {
                    "type": kind,
                    "attributes": {"profiles": {"data": fragment}},
                }
                if list_id:
                    data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
                return {"data": data}

            return make

        async def submit(which: tuple[str, str, str]) -> None:
            encoded, keys = batches[which]
            batches[which] = ([], [])
            summary.jobs += 1
            if dry_run:
                summary.sent += len(keys)
                return
            op, kind, _ = which
            sent, bad = await send_accepted(client, op, body_for(kind), encoded, keys, ledger, kind)
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
            consent = consent_of(row.get(consent_column))
            if consent is None:
                summary.skipped_no_consent += 1
                continue
            which = _SUBSCRIBE if consent else _UNSUBSCRIBE
            entry = {"marketing": {"consent": which[2]}}
            encoded = encode(
                {
                    "type": "profile",
                    "attributes": {id_column: identity, "subscriptions": {channel: entry}},
                }
            )
            digest = payload_hash(encoded)
            if digest in sent_before:
                summary.unchanged += 1
                continue
            pending, keys = batches[which]
            if len(pending) >= _LIMITS[which].max_rows:
                await submit(which)
                pending, keys = batches[which]
            pending.append(encoded)
            keys.append((identity, digest))
        for which in (_SUBSCRIBE, _UNSUBSCRIBE):
            if batches[which][0]:
                await submit(which)
        summary.errors = len(refused)
        if not dry_run:
            await ledger.record_errors("", refused)
        return summary
