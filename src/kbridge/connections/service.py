"""Connecting, rotating, testing and disconnecting — the verbs the CLI (and you) call.

Every credential is verified against Klaviyo before it is saved
(``GET /api/accounts``, Klaviyo's "test my key" call), and probed for the
capabilities it can serve. Nothing is saved when verification fails, when an
OAuth redirect is forged or consent denied, or when a rotated key belongs to
another account.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
import httpx

from kbridge import catalog
from kbridge.api import DEFAULT_BASE_URL, AsyncClient, StaticTokenProvider, TokenProvider
from kbridge.api.auth import PrivateKeyAuth
from kbridge.api.capabilities import CONNECT
from kbridge.connections.errors import (
    ConnectionConflictError,
    ConnectionsError,
    ConnectionTamperedError,
    OAuthError,
)
from kbridge.connections.model import (
    ConnectionRecord,
    OAuthClientInfo,
    Sender,
    TokenSet,
)
from kbridge.connections.oauth import (
    InMemoryTokenStorage,
    LoopbackReceiver,
    OAuthClient,
    OAuthSession,
    Pkce,
    TokenStorage,
    authorize_url,
    exchange_code,
    new_state,
)
from kbridge.connections.probe import DEFAULT_PROBED, ProbeReport, probe_capabilities
from kbridge.connections.scopes import all_capabilities
from kbridge.connections.store import ConnectionStore, RefreshLock, RefreshLockingStore, check_name
from kbridge.core import Clock, SystemClock

__all__ = [
    "AccountInfo",
    "ConnectResult",
    "ConnectionCredentials",
    "StoredTokens",
    "check_connection",
    "connect_with_key",
    "connect_with_oauth",
    "disconnect",
    "open_credentials",
    "same_account",
    "same_account_warning",
    "verify_account",
]


#: the scopes a successful verification proves (GET /api/accounts)
VERIFIED_SCOPES: tuple[str, ...] = catalog.get("get_accounts").scopes


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What ``GET /api/accounts`` says about the account a credential opens."""

    id: str
    name: str | None
    sender: Sender


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """A saved connection, what the probe found, and whether an existing one was rotated.

    ``same_account``: the other connections of the same Klaviyo account, when this one is new
    (see :func:`same_account_warning`).
    """

    record: ConnectionRecord
    report: ProbeReport
    rotated: bool
    same_account: tuple[str, ...] = ()


def same_account(records: Iterable[ConnectionRecord], record: ConnectionRecord) -> tuple[str, ...]:
    """The names of the connections in ``records``, other than ``record``, of its Klaviyo
    account (same account id at the same base URL)."""
    return tuple(
        sorted(
            r.name
            for r in records
            if r.name != record.name
            and r.account_id == record.account_id
            and r.base_url == record.base_url
        )
    )


def same_account_warning(record: ConnectionRecord, others: Sequence[str]) -> str | None:
    """One line telling that ``others`` already cover ``record``'s account, or ``None``.

    Connecting an account twice may be meant (keys of different scopes), so it is allowed;
    but each connection keeps its own sync state and warehouse, so the two sync and push
    the same account separately (the service's rate budget is per account id; separate
    CLI processes pace on their own anyway).
    """
    if not others:
        return None
    named = ", ".join(repr(n) for n in others)
    which = (
        f"connection {named} already covers"
        if len(others) == 1
        else (f"connections {named} already cover")
    )
    return (
        f"warning: {which} Klaviyo account {record.account_id}; {record.name!r} keeps its own "
        "sync state and warehouse, so the two sync and push that account separately"
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionCredentials:
    """Everything needed to build a client for a saved connection; secrets stay out of reprs.

    Exactly one of ``api_key`` and ``token_provider`` is set.
    """

    name: str
    connection_id: str
    base_url: str
    account_id: str
    api_key: str | None = field(default=None, repr=False)
    token_provider: TokenProvider | None = field(default=None, repr=False)

    def client(self, **kwargs: Any) -> AsyncClient:
        """An :class:`AsyncClient` for this connection (``kwargs`` as for AsyncClient)."""
        return AsyncClient(
            self.api_key,
            token_provider=self.token_provider,
            installation_id=self.account_id if self.token_provider is not None else None,
            base_url=self.base_url,
            **kwargs,
        )


@CONNECT.runs
async def verify_account(client: AsyncClient) -> AccountInfo:
    """The account behind ``client``'s credential (raises the API error if it is refused)."""
    document = await client.get_document("get_accounts")
    if not document.resources:
        raise ConnectionsError("GET /api/accounts returned no account for this credential")
    account = document.resources[0]
    if not account.id:
        raise ConnectionsError("GET /api/accounts returned an account without an id")
    contact = account.attributes.get("contact_information") or {}
    return AccountInfo(
        id=account.id,
        name=contact.get("organization_name"),
        sender=Sender(
            name=contact.get("default_sender_name"),
            email=contact.get("default_sender_email"),
        ),
    )


def _check_rotation(
    store: ConnectionStore, name: str, account: AccountInfo, kind: str
) -> ConnectionRecord | None:
    """The existing connection if this is a rotation; refuse a swap to another account."""
    if not store.exists(name):
        return None
    old = store.get(name)
    if old.account_id != account.id:
        raise ConnectionConflictError(
            f"connection {name!r} is for account {old.account_id}, but the new credential "
            f"opens account {account.id}; use another connection name (nothing was changed)"
        )
    if old.kind != kind:
        raise ConnectionConflictError(
            f"connection {name!r} uses {old.kind.replace('_', ' ')}; run "
            f"`kbridge disconnect {name}` first to switch it to {kind.replace('_', ' ')}"
        )
    return old


async def connect_with_key(
    store: ConnectionStore,
    name: str,
    api_key: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    capabilities: Iterable[str] = DEFAULT_PROBED,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> ConnectResult:
    """Check the key's shape, verify it, probe it, save it (or rotate it in place)."""
    check_name(name)
    PrivateKeyAuth(api_key)  # shape check with a helpful message, before any request
    async with AsyncClient(api_key, base_url=base_url, transport=transport, clock=clock) as client:
        account = await verify_account(client)
        old = _check_rotation(store, name, account, "api_key")
        report = await probe_capabilities(client, capabilities, known_granted=VERIFIED_SCOPES)
    record = await anyio.to_thread.run_sync(
        lambda: store.upsert(
            name,
            kind="api_key",
            base_url=base_url,
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=report.granted,
            secrets={"api_key": api_key.strip()},
        )
    )
    return await _connected(store, record, report, rotated=old is not None)


async def connect_with_oauth(
    store: ConnectionStore,
    name: str,
    oauth_client: OAuthClient,
    *,
    scopes: tuple[str, ...],
    open_url: Callable[[str], object],
    base_url: str = DEFAULT_BASE_URL,
    capabilities: Iterable[str] = DEFAULT_PROBED,
    redirect_port: int = 0,
    redirect_wait: float = 300.0,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> ConnectResult:
    """Run the authorization-code flow with PKCE through a loopback redirect, then save.

    ``open_url`` shows the authorize URL to the user (the CLI opens a browser
    and prints it; tests follow it with httpx). It runs in a worker thread.
    The redirect URI is ``http://127.0.0.1:<redirect_port>/callback``; the
    app must have it registered (``0`` picks a free port, for servers that
    accept any loopback port).
    """
    check_name(name)
    if not scopes:
        raise OAuthError("no scopes requested; pass --scopes or --for CAPABILITIES")
    wall: Clock = clock or SystemClock()
    pkce = Pkce.generate()
    state = new_state()
    with LoopbackReceiver(redirect_port, state=state) as receiver:
        url = authorize_url(oauth_client, receiver.redirect_uri, scopes, state, pkce)
        await anyio.to_thread.run_sync(open_url, url)
        code = await anyio.to_thread.run_sync(receiver.wait_for_code, state, redirect_wait)
        redirect_uri = receiver.redirect_uri
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
        tokens = await exchange_code(
            http, oauth_client, code, pkce.verifier, redirect_uri, now=wall.now()
        )
    provider = StaticTokenProvider(tokens.access_token)
    async with AsyncClient(
        token_provider=provider, base_url=base_url, transport=transport, clock=clock
    ) as client:
        account = await verify_account(client)
        old = _check_rotation(store, name, account, "oauth")
        report = await probe_capabilities(client, capabilities, known_granted=VERIFIED_SCOPES)
    info = OAuthClientInfo(
        client_id=oauth_client.client_id,
        token_url=oauth_client.token_url,
        revoke_url=oauth_client.revoke_url,
        installation_id=account.id,
    )
    secrets = {"client_secret": oauth_client.client_secret, **_token_secrets(tokens)}
    replaced = None
    if old is not None:  # keep the old grant's tokens in memory to revoke once replaced
        # A tampered row's tokens are not sent anywhere, not even to be revoked.
        with contextlib.suppress(ConnectionTamperedError):
            old_tokens = await StoredTokens(store, name).load()
            replaced = _oauth_session(
                store, old, clock=clock, http=None, storage=InMemoryTokenStorage(old_tokens)
            )
    record = await anyio.to_thread.run_sync(
        lambda: store.upsert(
            name,
            kind="oauth",
            base_url=base_url,
            account_id=account.id,
            account_name=account.name,
            sender=account.sender,
            capabilities=report.served,
            scopes=tokens.scopes or report.granted,
            secrets=secrets,
            oauth=info,
        )
    )
    if replaced is not None:
        await _revoke_quietly(replaced)
    return await _connected(store, record, report, rotated=old is not None)


async def _connected(
    store: ConnectionStore, record: ConnectionRecord, report: ProbeReport, *, rotated: bool
) -> ConnectResult:
    others: tuple[str, ...] = ()
    if not rotated:  # a rotation keeps the connection it was; only a new one is told
        records = await anyio.to_thread.run_sync(store.list)
        others = same_account(records, record)
    return ConnectResult(record, report, rotated=rotated, same_account=others)


async def _revoke_quietly(session: OAuthSession) -> None:
    """End a grant a re-authorisation replaced; it is already forgotten, so failures are moot."""
    with contextlib.suppress(OAuthError):
        await session.revoke()


def _token_secrets(tokens: TokenSet) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
        "scopes": list(tokens.scopes),
    }


#: how often a refresh waiting for another process's looks again, and for how long at most
_LOCK_POLL = 0.02
_LOCK_PATIENCE = 120.0


class StoredTokens:
    """:class:`~kbridge.connections.oauth.TokenStorage` in a connection store.

    ``save`` rewrites the sealed secrets in one transaction, so a crash
    leaves either the old or the new refresh token, never neither.
    :meth:`exclusive` is held around a refresh: Klaviyo rotates refresh tokens,
    so two processes refreshing with the same one leave one of them with a
    spent token (``invalid_grant``); the second now waits, then finds the new
    tokens in the store. The lock is the store's: a file lock beside the CLI's
    file, a row in the service's app database.
    """

    def __init__(self, store: RefreshLockingStore, name: str) -> None:
        self._store = store
        self._name = name

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the store's refresh lock (waiting, without blocking the event loop)."""
        lock: RefreshLock | None = None
        for _ in range(int(_LOCK_PATIENCE / _LOCK_POLL)):
            lock = await anyio.to_thread.run_sync(self._store.try_refresh_lock, self._name)
            if lock is not None:
                break
            await anyio.sleep(_LOCK_POLL)
        if lock is None:
            hint = self._store.refresh_lock_hint(self._name)
            raise OAuthError(
                f"another kbridge process has been refreshing the tokens of {self._name!r} "
                f"for {_LOCK_PATIENCE:g}s; is one stuck? ({hint})"
            )
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(lock.release)

    async def load(self) -> TokenSet | None:
        secrets = await anyio.to_thread.run_sync(self._store.secrets, self._name)
        access = secrets.get("access_token")
        if not access:
            return None
        expires = secrets.get("expires_at")
        return TokenSet(
            access_token=access,
            refresh_token=secrets.get("refresh_token"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            scopes=tuple(secrets.get("scopes") or ()),
        )

    async def save(self, tokens: TokenSet) -> None:
        changes = _token_secrets(tokens)
        await anyio.to_thread.run_sync(self._store.update_secrets, self._name, changes)

    async def clear(self) -> None:
        changes = {"access_token": None, "refresh_token": None, "expires_at": None}
        await anyio.to_thread.run_sync(self._store.update_secrets, self._name, changes)

    def __repr__(self) -> str:
        return f"StoredTokens(name={self._name!r})"


def _oauth_session(
    store: RefreshLockingStore,
    record: ConnectionRecord,
    *,
    clock: Clock | None,
    http: httpx.AsyncClient | None,
    storage: TokenStorage | None = None,
) -> OAuthSession:
    # the endpoints come from the record read with (and verified against) the secrets
    record, secrets = store.load(record.name)
    assert record.oauth is not None
    client = OAuthClient(
        record.oauth.client_id,
        secrets.get("client_secret") or "",
        token_url=record.oauth.token_url,
        revoke_url=record.oauth.revoke_url,
    )
    return OAuthSession(
        client,
        storage or StoredTokens(store, record.name),
        clock=clock,
        http=http,
        installation_id=record.oauth.installation_id or record.account_id,
    )


def open_credentials(
    name: str,
    *,
    store: RefreshLockingStore,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
) -> ConnectionCredentials:
    """The credentials of the saved connection ``name``, ready for ``AsyncClient``.

    For OAuth connections ``token_provider`` is an :class:`OAuthSession` that
    refreshes (and persists rotated tokens) by itself, one process at a time
    per the store's refresh lock (the CLI's file store, the service's
    ``SqlConnectionStore``).
    """
    record, secrets = store.load(name)  # one read: the base URL is the one the key is bound to
    if record.kind == "oauth":
        return ConnectionCredentials(
            name=name,
            connection_id=record.id,
            base_url=record.base_url,
            account_id=record.account_id,
            token_provider=_oauth_session(store, record, clock=clock, http=http),
        )
    api_key = secrets.get("api_key")
    if not api_key:
        raise ConnectionsError(f"connection {name!r} has no stored key; connect it again")
    return ConnectionCredentials(
        name=name,
        connection_id=record.id,
        base_url=record.base_url,
        account_id=record.account_id,
        api_key=api_key,
    )


async def check_connection(
    store: ConnectionStore,
    name: str,
    *,
    capabilities: Iterable[str] = DEFAULT_PROBED,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> ProbeReport:
    """Probe what the saved connection can serve now, and record it."""
    http = httpx.AsyncClient(transport=transport, timeout=30.0)
    try:
        credentials = open_credentials(name, store=store, clock=clock, http=http)
        async with credentials.client(transport=transport, clock=clock) as client:
            await verify_account(client)
            report = await probe_capabilities(client, capabilities, known_granted=VERIFIED_SCOPES)
    finally:
        await http.aclose()
    record = store.get(name)
    probed_caps = {status.capability for status in report.capabilities}
    probed_scopes = set(report.granted) | set(report.missing)
    # A partial probe (``--for``) updates what it looked at and keeps the rest.
    kept = [cap for cap in record.capabilities if cap not in probed_caps]
    capabilities = _in_canonical_order([*kept, *report.served])
    scopes = tuple(
        sorted({s for s in record.scopes if s not in probed_scopes} | set(report.granted))
    )
    await anyio.to_thread.run_sync(
        lambda: store.update_capabilities(name, capabilities=capabilities, scopes=scopes)
    )
    return report


def _in_canonical_order(capabilities: Iterable[str]) -> tuple[str, ...]:
    order = {cap: index for index, cap in enumerate(all_capabilities())}
    return tuple(sorted(set(capabilities), key=lambda cap: (order.get(cap, len(order)), cap)))


async def disconnect(
    store: ConnectionStore,
    name: str,
    *,
    force: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> ConnectionRecord:
    """Forget ``name`` and its secrets; OAuth grants are revoked first.

    If revocation fails the connection is kept (so it can be retried) unless
    ``force``. A private key cannot be revoked through the API: the CLI says
    to delete it in Klaviyo.
    """
    record = store.get(name)
    if record.kind == "oauth":
        async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
            try:
                session = _oauth_session(store, record, clock=clock, http=http)
                await session.revoke()
            except ConnectionTamperedError:
                if not force:
                    raise  # its message names --force; the tokens go to no altered endpoint
            except OAuthError as exc:
                if not force:
                    raise OAuthError(
                        f"{exc}; the connection is kept — retry, or pass --force to forget it "
                        "anyway (then revoke the app in Klaviyo's settings)"
                    ) from None
    await anyio.to_thread.run_sync(store.delete, name)
    return record
