"""Connections: the connection store, encrypted secrets, OAuth 2.0 + PKCE and scope planning.

May import: api, core, catalog.

    store = ConnectionStore(path)                       # SQLite; secrets AES-256-GCM sealed
    result = await connect_with_key(store, "shop", "pk_…", base_url=...)
    creds = open_credentials("shop", store=store)       # for --connection NAME
    async with creds.client() as client: ...

    plan_scopes(["sync", "privacy-delete"]).needs       # least scopes, each with its reasons
"""

from __future__ import annotations

from kbridge.connections.crypto import (
    MASTER_KEY_ENV,
    SecretBox,
    generate_master_key,
    load_or_create_key_file,
    parse_master_key,
)
from kbridge.connections.errors import (
    ConnectionConflictError,
    ConnectionNotFoundError,
    ConnectionsError,
    ConnectionStoreError,
    ConnectionTamperedError,
    OAuthDeniedError,
    OAuthError,
    OAuthStateMismatchError,
    OAuthTokenError,
    UnknownCapabilityError,
)
from kbridge.connections.model import (
    ConnectionKind,
    ConnectionRecord,
    OAuthClientInfo,
    Sender,
    TokenSet,
)
from kbridge.connections.oauth import (
    KLAVIYO_AUTHORIZE_URL,
    KLAVIYO_REVOKE_URL,
    KLAVIYO_TOKEN_URL,
    InMemoryTokenStorage,
    LoopbackReceiver,
    OAuthClient,
    OAuthSession,
    Pkce,
    TokenStorage,
    authorize_url,
    check_callback,
    exchange_code,
    new_state,
    refresh_grant,
    revoke_token,
)
from kbridge.connections.probe import (
    DEFAULT_PROBED,
    CapabilityStatus,
    ProbeReport,
    probe_capabilities,
)
from kbridge.connections.scopes import (
    CAPABILITY_OPERATIONS,
    CAPABILITY_SUMMARIES,
    ScopeNeed,
    ScopePlan,
    all_capabilities,
    capabilities_needing,
    capability_operations,
    explain_permission_error,
    missing_scopes,
    parse_capabilities,
    plan_scopes,
    probe_operation,
)
from kbridge.connections.service import (
    AccountInfo,
    ConnectionCredentials,
    ConnectResult,
    StoredTokens,
    check_connection,
    connect_with_key,
    connect_with_oauth,
    disconnect,
    open_credentials,
    verify_account,
)
from kbridge.connections.store import (
    KEY_FILE_NAME,
    STORE_FILE_NAME,
    ConnectionStore,
    ConnectionStoreProtocol,
    check_name,
    oauth_json,
    secrets_binding,
)

__all__ = [
    "CAPABILITY_OPERATIONS",
    "CAPABILITY_SUMMARIES",
    "DEFAULT_PROBED",
    "KEY_FILE_NAME",
    "KLAVIYO_AUTHORIZE_URL",
    "KLAVIYO_REVOKE_URL",
    "KLAVIYO_TOKEN_URL",
    "MASTER_KEY_ENV",
    "STORE_FILE_NAME",
    "AccountInfo",
    "CapabilityStatus",
    "ConnectResult",
    "ConnectionConflictError",
    "ConnectionCredentials",
    "ConnectionKind",
    "ConnectionNotFoundError",
    "ConnectionRecord",
    "ConnectionStore",
    "ConnectionStoreError",
    "ConnectionStoreProtocol",
    "ConnectionTamperedError",
    "ConnectionsError",
    "InMemoryTokenStorage",
    "LoopbackReceiver",
    "OAuthClient",
    "OAuthClientInfo",
    "OAuthDeniedError",
    "OAuthError",
    "OAuthSession",
    "OAuthStateMismatchError",
    "OAuthTokenError",
    "Pkce",
    "ProbeReport",
    "ScopeNeed",
    "ScopePlan",
    "SecretBox",
    "Sender",
    "StoredTokens",
    "TokenSet",
    "TokenStorage",
    "UnknownCapabilityError",
    "all_capabilities",
    "authorize_url",
    "capabilities_needing",
    "capability_operations",
    "check_callback",
    "check_connection",
    "check_name",
    "connect_with_key",
    "connect_with_oauth",
    "disconnect",
    "exchange_code",
    "explain_permission_error",
    "generate_master_key",
    "load_or_create_key_file",
    "missing_scopes",
    "new_state",
    "oauth_json",
    "open_credentials",
    "parse_capabilities",
    "parse_master_key",
    "plan_scopes",
    "probe_capabilities",
    "probe_operation",
    "refresh_grant",
    "revoke_token",
    "secrets_binding",
    "verify_account",
]
