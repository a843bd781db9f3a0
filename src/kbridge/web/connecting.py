"""Connecting a Klaviyo account by private key: what the REST API and the dashboard share.

Shape check → verify (``GET /api/accounts``) → probe what the key can do →
store it sealed. Every foreseeable refusal is an :class:`ApiProblem` naming
the field to fix (its message never repeats the key); the API answers it as
JSON, the dashboard shows it beside that field.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from kbridge.api import DEFAULT_BASE_URL, AsyncClient, ClientConfig, RetryPolicy
from kbridge.api.auth import PrivateKeyAuth
from kbridge.api.errors import (
    ApiError,
    AuthenticationError,
    InvalidCredentialsError,
    PermissionDeniedError,
    TransportError,
)
from kbridge.connections import (
    DEFAULT_PROBED,
    ConnectionNotFoundError,
    ConnectionRecord,
    ConnectionStoreError,
    check_name,
    probe_capabilities,
    verify_account,
)
from kbridge.connections.service import VERIFIED_SCOPES
from kbridge.core import ConfigurationError
from kbridge.service.connection_store import ConnectionSettings, SqlConnectionStore
from kbridge.web.params import check_rate_limits, check_warehouse, default_warehouse
from kbridge.web.problems import ApiProblem, invalid

__all__ = ["connect_by_key"]

#: someone waits on the answer: a few quick retries, not a sync's five minutes of them
_VERIFY_RETRY = RetryPolicy(max_attempts=3, total_deadline=30.0)


async def connect_by_key(
    store: SqlConnectionStore,
    *,
    data_dir: Path,
    name: str,
    api_key: str,
    base_url: str | None = None,
    rate_limits: str | None = None,
    warehouse: str | None = None,
    rotate: bool = False,
) -> tuple[ConnectionRecord, ConnectionSettings]:
    """Verify ``api_key``, probe its scopes, then store the connection ``name`` sealed.

    ``rotate=False``: a new connection (409 if the name is taken). ``rotate=True``:
    replace the key of the existing connection ``name`` in place (404 if there is
    none; 422 on ``api_key`` if the new key is for another account), keeping its
    base URL, rate limits and warehouse unless given. Nothing is stored on refusal.
    """
    try:
        name = check_name(name)
    except ConnectionStoreError as exc:
        raise invalid("name", str(exc)) from None
    existing: ConnectionRecord | None = None
    if rotate:
        try:
            existing = await anyio.to_thread.run_sync(store.get, name)
        except ConnectionNotFoundError:
            raise ApiProblem(404, "no such connection in this workspace") from None
    base_url = (base_url or (existing.base_url if existing else DEFAULT_BASE_URL)).rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise invalid("base_url", "give an http(s):// URL")
    checked_limits = check_rate_limits(rate_limits) if rate_limits is not None else None
    if warehouse is not None:
        warehouse = check_warehouse(warehouse)
    elif existing is None:
        warehouse = default_warehouse(data_dir, store.workspace_id, name)
    api_key = api_key.strip()
    try:
        PrivateKeyAuth(api_key)
    except InvalidCredentialsError as exc:  # the message never repeats the key
        raise invalid("api_key", str(exc)) from None
    if not rotate and await anyio.to_thread.run_sync(store.exists, name):
        raise ApiProblem(
            409, f"name: a connection called {name!r} already exists here", field="name"
        )
    try:
        config = ClientConfig(retry=_VERIFY_RETRY)
        async with AsyncClient(api_key, base_url=base_url, config=config) as client:
            account = await verify_account(client)
            report = await probe_capabilities(client, DEFAULT_PROBED, known_granted=VERIFIED_SCOPES)
    except AuthenticationError:
        raise invalid("api_key", "Klaviyo refused this key (wrong or revoked)") from None
    except PermissionDeniedError:
        raise invalid(
            "api_key", "the key may not read the account: it needs accounts:read"
        ) from None
    except TransportError:
        raise invalid("base_url", f"could not reach {base_url}") from None
    except ConfigurationError as exc:
        raise invalid("base_url", str(exc)) from None
    except ApiError as exc:
        raise ApiProblem(502, f"Klaviyo could not verify the key now ({exc}); try again") from None
    if existing is not None and existing.account_id != account.id:
        raise invalid(
            "api_key",
            f"this key is for another account ({account.id}, not {existing.account_id})",
        )
    if warehouse is not None and warehouse.startswith("duckdb:"):
        Path(warehouse.removeprefix("duckdb:///")).parent.mkdir(
            mode=0o700, parents=True, exist_ok=True
        )

    def save() -> tuple[ConnectionRecord, ConnectionSettings]:
        record = store.upsert(
            name,
            kind="api_key",
            base_url=base_url,
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=report.granted,
            secrets={"api_key": api_key},
            rate_limits=checked_limits if checked_limits is not None or rotate else "spec",
            warehouse=warehouse,
        )
        return record, store.settings(name)

    try:
        return await anyio.to_thread.run_sync(save)
    except ConnectionStoreError as exc:  # another request created the name meanwhile
        raise ApiProblem(409, f"name: {exc}", field="name") from None
