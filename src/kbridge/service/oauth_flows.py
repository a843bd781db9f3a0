"""OAuth connect flows between their start and their callback, kept in the app database.

The callback is a browser's redirect from Klaviyo: it carries no API token,
only ``state``. So the flow (whose workspace, which app, the PKCE verifier,
the client secret) is kept under the state's hash, sealed under the master
key, until the callback takes it, once. Kept in the database rather than in
memory, the callback may reach another ``kbridge serve`` process than the
start did.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.orm import sessionmaker

from kbridge.connections import SecretBox
from kbridge.core import Clock, SystemClock
from kbridge.core.jsoncodec import JSONDecodeError, dumps, loads
from kbridge.service.models import Meta

__all__ = ["OAuthFlows"]

_PREFIX = "oauth-flow:"


def _key(state: str) -> str:
    # the state itself is a bearer secret until used: only its hash names the row
    return _PREFIX + hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()[:48]


class OAuthFlows:
    """Flows started and not yet called back: :meth:`put` at the start, :meth:`take` once."""

    def __init__(self, engine: Engine, *, master_key: bytes, clock: Clock | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._box = SecretBox(master_key)
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return "OAuthFlows()"

    def put(self, state: str, flow: dict[str, Any], *, expires_at: datetime) -> None:
        """Keep ``flow`` (secrets included, sealed) until ``expires_at``."""
        key = _key(state)
        sealed = self._box.seal(
            dumps({**flow, "expires_at": expires_at.isoformat()}), aad=key.encode()
        )
        with self._sessions() as session, session.begin():
            session.add(Meta(key=key, value=sealed))

    def take(self, state: str) -> dict[str, Any] | None:
        """The flow started with ``state``, forgotten as it is returned; ``None`` if there is
        none, it was taken already, or it expired."""
        key = _key(state)
        with self._sessions() as session, session.begin():
            row = session.get(Meta, key, with_for_update=True)
            if row is None:
                return None
            sealed = bytes(row.value)
            done = session.execute(delete(Meta).where(Meta.key == key))
            if not getattr(done, "rowcount", 0):  # another callback took it first
                return None
        plain = self._box.open_or_none(sealed, aad=key.encode())
        if plain is None:
            return None
        try:
            flow = loads(plain)
        except JSONDecodeError:
            return None
        if not isinstance(flow, dict):
            return None
        if datetime.fromisoformat(str(flow.pop("expires_at"))) <= self._clock.now():
            return None
        return flow
