"""``kbridge raw METHOD PATH``: any Klaviyo request, still paced, retried and authenticated.

The connector platforms' "raw request" action: for endpoints no typed
action covers. ``--query k=v`` (repeatable), ``--data '{…}'`` or
``--data @file.json``, ``--retries N --backoff exponential|constant``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer

from kbridge.api import AsyncClient, RetryPolicy
from kbridge.api.validation import ValidationError
from kbridge.cli.actions import _debug_logging
from kbridge.cli.credentials import resolve_credentials
from kbridge.cli.output import describe_error, emit, fail, resolve_format
from kbridge.core.errors import KbridgeError
from kbridge.core.jsoncodec import JSONDecodeError, loads

__all__ = ["parse_data", "parse_query", "raw", "retry_policy"]

BACKOFFS = ("exponential", "constant")


def parse_query(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", "k2=v2"]`` → ``{"k": "v", "k2": "v2"}``; a repeated key keeps every value."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError("--query", f"{item!r}: write key=value")
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def parse_data(data: str | None) -> Any:
    """The JSON body from ``--data`` text or ``@file``."""
    if data is None:
        return None
    text = data
    if data.startswith("@"):
        try:
            with open(data[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValidationError("--data", f"cannot read {data[1:]}: {exc.strerror}") from None
    try:
        return loads(text)
    except JSONDecodeError:
        raise ValidationError("--data", "is not valid JSON") from None


def retry_policy(retries: int | None, backoff: str) -> RetryPolicy | None:
    """A policy with ``retries`` extra attempts; constant backoff keeps the delay flat."""
    if backoff not in BACKOFFS:
        raise ValidationError("--backoff", f"{backoff!r} is not one of {', '.join(BACKOFFS)}")
    if retries is None and backoff == "exponential":
        return None
    base = RetryPolicy()
    attempts = base.max_attempts if retries is None else retries + 1
    if backoff == "constant":
        return RetryPolicy(max_attempts=attempts, base=base.base, cap=base.base)
    return RetryPolicy(max_attempts=attempts)


def raw(
    method: Annotated[str, typer.Argument(help="GET, POST, PATCH, PUT or DELETE")],
    path: Annotated[str, typer.Argument(help="e.g. /api/accounts")],
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", help="key=value (repeatable)")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="JSON body, or @file.json")
    ] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", min=0, help="retries after the first attempt")
    ] = None,
    backoff: Annotated[
        str, typer.Option("--backoff", help="exponential (default) or constant")
    ] = "exponential",
    api_key: Annotated[str | None, typer.Option("--api-key", help="else KLAVIYO_API_KEY")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="else KLAVIYO_BASE_URL")
    ] = None,
    connection: Annotated[str | None, typer.Option("--connection")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="json or jsonl")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="request ids and details")] = False,
) -> None:
    """Send any request to the Klaviyo API (paced by the operation's rate limits)."""
    try:
        params = parse_query(query)
        body = parse_data(data)
        policy = retry_policy(retries, backoff)
        creds = resolve_credentials(api_key, base_url, connection, os.environ)
        fmt = resolve_format(output)
        if fmt == "table":
            fmt = "json"

        async def send() -> Any:
            async with AsyncClient(**creds.client_kwargs()) as client:
                response = await client.raw(
                    method, path, params=params or None, json=body, retry=policy
                )
                return response.body

        with _debug_logging(debug):
            result = asyncio.run(send())
        if result is not None:
            emit(result, fmt)
    except KbridgeError as exc:
        fail(describe_error(exc, action=f"raw {method.upper()} {path}", debug=debug))
