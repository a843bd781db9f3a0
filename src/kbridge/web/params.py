"""What a request means beyond its types: job parameters, rate limits, warehouse URLs.

Each check raises :class:`~kbridge.web.problems.ApiProblem` (422) naming the
field, with the same words the CLI uses for the same mistake.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from kbridge.api.ratelimit import parse_limit_factor
from kbridge.core import ConfigurationError, KbridgeError
from kbridge.service.jobs import default_warehouse_url
from kbridge.sync import select_streams
from kbridge.warehouse import duckdb_path
from kbridge.web.campaign_params import CAMPAIGN_KINDS, check_campaign_params
from kbridge.web.problems import invalid

__all__ = [
    "SYNC_PARAMS",
    "check_job_params",
    "check_rate_limits",
    "check_warehouse",
    "default_warehouse",
    "redact_url",
]

#: what a sync job takes, as `kbridge sync`'s options of the same names
SYNC_PARAMS = ("streams", "start_date", "full_refresh")


def check_rate_limits(text: str) -> str:
    """``spec``, ``off`` or a positive factor, normalised (``"0.50"`` → ``"0.5"``)."""
    try:
        factor = parse_limit_factor(text)
    except ConfigurationError as exc:
        raise invalid("rate_limits", str(exc)) from None
    if factor is None:
        return "off"
    return "spec" if text.strip().lower() == "spec" else repr(factor)


def check_warehouse(url: str) -> str:
    """A PostgreSQL URL, or a DuckDB file given by absolute path (a service has no "here")."""
    if url.startswith(("postgresql://", "postgres://")):
        return url
    try:
        path = duckdb_path(url)
    except KbridgeError as exc:
        raise invalid("warehouse", str(exc)) from None
    if path is None or "?" in url:
        raise invalid("warehouse", "give duckdb:////absolute/file.duckdb or postgresql://…")
    if not path.startswith("/"):
        raise invalid(
            "warehouse", "a DuckDB file needs an absolute path: duckdb:////absolute/file.duckdb"
        )
    return url if url.startswith("duckdb:") else f"duckdb:///{path}"


def default_warehouse(data_dir: Path, workspace_id: str, name: str) -> str:
    """The DuckDB file named after the connection, one directory per workspace (where the
    worker writes when a connection names none)."""
    return default_warehouse_url(data_dir, workspace_id, name)


def redact_url(url: str) -> str:
    """``url`` with its password, if any, masked (responses and logs never carry it)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, host = rest.rsplit("@", 1)
    if ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def check_job_params(
    kind: str, params: dict[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The job's ``params`` checked and normalised; a 422 naming ``params.<key>`` if wrong.

    Sync's and campaigns' are known here (``now``: a campaign's ``send_at`` must follow
    it); other kinds' params are their job's to check.
    """
    if kind in CAMPAIGN_KINDS:
        return check_campaign_params(kind, params, now=now)
    if kind != "sync":
        return dict(params)
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if key not in SYNC_PARAMS:
            raise invalid(f"params.{key}", f"not a sync parameter; known: {', '.join(SYNC_PARAMS)}")
        if key == "streams":
            checked[key] = _streams(value)
        elif key == "start_date":
            checked[key] = _start_date(value)
        elif not isinstance(value, bool):
            raise invalid(f"params.{key}", "must be true or false")
        else:
            checked[key] = value
    return checked


def _streams(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("params.streams", 'must be a list of stream names, e.g. ["profiles"]')
    try:
        chosen = select_streams(value)
    except KbridgeError as exc:
        raise invalid("params.streams", str(exc)) from None
    if not chosen:
        raise invalid("params.streams", "names no stream")
    return [stream.name for stream in chosen]


def _start_date(value: object) -> str:
    if not isinstance(value, str):
        raise invalid("params.start_date", "must be an ISO date-time like 2024-01-01T00:00:00Z")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(
            "params.start_date", f"{value!r} is not an ISO date-time like 2024-01-01T00:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise invalid("params.start_date", "give a timezone, e.g. 2024-01-01T00:00:00Z")
    return when.isoformat()
