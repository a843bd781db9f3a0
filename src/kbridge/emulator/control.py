"""The control plane: ``/_emulator/…``, plain JSON, loopback clients only (or an admin token).

Tests and benchmarks drive the emulator through it::

    GET  /_emulator/stats    per-operation requests, statuses, 429s, latency p50/p95
                             (account 0 at the top level; every account in "accounts")
    DELETE /_emulator/stats  start counting afresh (a benchmark's next phase)
    POST /_emulator/keys     {"scopes": [...], "account"?: i} → 201
                             {"key": "pk_…", "scopes": [...], "account": i}
    POST /_emulator/tokens   {"scopes": [...], "installation_id"?, "expires_in"?} → 201
                             {"access_token", "installation_id", "scopes", "expires_at"}
                             (a bearer token without running the OAuth flow)
    GET  /_emulator/clock    {"now": …}
    POST /_emulator/clock    {"advance_seconds": N} → moves simulated time, runs due work
    POST /_emulator/reset    fresh accounts from their seeds (keys and tokens are kept)
    POST /_emulator/oauth-clients  {"redirect_uris": [...]} → 201 {"client_id", "client_secret",
                             "redirect_uris"}: an app that may run the /oauth/… flow
    GET  /_emulator/truth    the synthetic account's ground truth (``?account=i``)
    GET  /_emulator/faults   {"spec", "faults": {…}, "counts": {…}}: fault injection on /api/*
    POST /_emulator/faults   a JSON spec string, {"spec": …} or {"http500": 0.02, …};
                             "off" or null disables; the fault RNGs restart from the seed
    GET  /_emulator/outbox   {"messages": [...], "failures": [...], "verified_senders": [...]}
                             (``?campaign_id=`` narrows to one campaign)
    POST /_emulator/senders  {"email": …} → 201: campaigns may now send from that address
    GET  /_emulator/images/{id}.{ext}  an uploaded image's bytes (where its image_url points)

The plane mints full keys, so :class:`kbridge.emulator.http.gate.Gate`
stands in front of it: a non-loopback client gets 403 (unless the emulator
has an admin token, which every request must then carry), and so does a
foreign ``Origin``; a body must be JSON (415), and the ``Host`` must name the
emulator (421). A browser on another site can send none of these.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kbridge.core import dumps, loads
from kbridge.core.jsoncodec import JSONDecodeError
from kbridge.emulator.backend.outbox import Outbox

if TYPE_CHECKING:
    from kbridge.emulator.http.state import Accounts, EmulatorState

__all__ = ["PREFIX", "control_routes"]

PREFIX = "/_emulator"

Endpoint = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json")


def _guarded(endpoint: Endpoint) -> Endpoint:
    # who may call is the gate's decision (kbridge.emulator.http.gate), made before routing
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _BadRequest as exc:
            return _json({"error": str(exc)}, 400)

    return wrapper


async def _object_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = loads(raw)
    except JSONDecodeError:
        raise _BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _scopes(body: dict[str, Any]) -> list[str]:
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise _BadRequest('"scopes" must be a list of scope strings, e.g. ["profiles:read"]')
    return scopes


def _account_index(value: Any, count: int) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        raise _BadRequest(
            f'"account" must be an account number from 0 to {count - 1} '
            f"(the emulator serves {count} account{'s' if count != 1 else ''})"
        )
    return value


def _no_stats() -> dict[str, Any]:
    from kbridge.emulator.http.stats import Stats

    return Stats().snapshot()


def control_routes(state: EmulatorState, accounts: Accounts) -> list[BaseRoute]:
    """The ``/_emulator/…`` routes bound to one emulator's state (account 0) and its accounts.

    Clock, OAuth, faults, outbox and images concern account 0 (faults apply to
    every ``/api/*`` request); keys, stats, reset and truth reach every account.
    """
    every = accounts

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            for account in every.built():
                account.stats.clear()
            return Response(status_code=204)
        per_account = []
        for index in range(every.count):
            shown = every.get(index).stats.snapshot() if every.is_built(index) else _no_stats()
            per_account.append({"account": index, **shown})
        return _json(
            {**state.stats.snapshot(), "faults": state.faults.snapshot(), "accounts": per_account}
        )

    async def keys(request: Request) -> Response:
        body = await _object_body(request)
        scopes = _scopes(body)
        index = _account_index(body.get("account"), every.count)
        try:
            key = every.mint(index, scopes)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        return _json({"key": key, "scopes": sorted(set(scopes)), "account": index}, 201)

    async def tokens(request: Request) -> Response:
        from kbridge.emulator.http.auth import ALL_SCOPES

        body = await _object_body(request)
        scopes = _scopes(body)
        unknown = sorted(set(scopes) - ALL_SCOPES)
        if unknown:
            raise _BadRequest(f"unknown scope(s): {', '.join(unknown)}")
        installation_id = body.get("installation_id", "installation-1")
        if not isinstance(installation_id, str) or not installation_id:
            raise _BadRequest('"installation_id" must be a non-empty string')
        expires_in = body.get("expires_in")
        expires_at = None
        if expires_in is not None:
            if not isinstance(expires_in, int | float) or expires_in <= 0:
                raise _BadRequest('"expires_in" must be a positive number of seconds')
            expires_at = state.clock.now() + timedelta(seconds=expires_in)
        token = state.tokens.issue(scopes, installation_id=installation_id, expires_at=expires_at)
        return _json(
            {
                "access_token": token,
                "installation_id": installation_id,
                "scopes": sorted(set(scopes)),
                "expires_at": expires_at,
            },
            201,
        )

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _object_body(request)
            seconds = body.get("advance_seconds")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or seconds < 0
                or not math.isfinite(seconds)
            ):
                raise _BadRequest('"advance_seconds" must be a non-negative number')
            state.clock.advance(float(seconds))
            for account in every.built():
                account.backend.run_due()
        return _json({"now": state.clock.now()})

    async def oauth_clients(request: Request) -> Response:
        body = await _object_body(request)
        uris = body.get("redirect_uris")
        if not isinstance(uris, list):
            raise _BadRequest('"redirect_uris" must be a non-empty list of absolute URIs')
        try:
            client = state.oauth.register_client(uris)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        return _json(
            {
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "redirect_uris": list(client.redirect_uris),
            },
            201,
        )

    async def faults(request: Request) -> Response:
        from kbridge.emulator.http.faults import FaultSpecError, spec_from_json

        if request.method == "POST":
            # JSON only (the gate refuses other media types): a text body is what a
            # cross-site form can send
            raw = await request.body()
            try:
                try:
                    spec = spec_from_json(loads(raw) if raw.strip() else None)
                except JSONDecodeError:
                    raise _BadRequest("the body is not valid JSON") from None
            except FaultSpecError as exc:
                raise _BadRequest(f"invalid fault spec: {exc}") from None
            state.faults.configure(spec)
        snapshot = state.faults.snapshot()
        return _json(
            {
                "spec": snapshot["spec"],
                "faults": state.faults.spec.to_json(),
                "counts": snapshot["injected"],
                "requests": snapshot["requests"],
            }
        )

    async def reset(request: Request) -> Response:
        for account in every.built():
            account.reset()
        return _json({"reset": True, "account_id": state.backend.account_id})

    async def truth(request: Request) -> Response:
        index = _account_index(request.query_params.get("account"), every.count)
        return _json(every.get(index).backend.truth())

    def _outbox() -> Outbox:
        box = getattr(state.backend, "outbox", None)
        if not isinstance(box, Outbox):
            raise _BadRequest("this backend keeps no outbox")
        return box

    async def outbox(request: Request) -> Response:
        box = _outbox()
        campaign_id = request.query_params.get("campaign_id")
        failures = [f for f in box.failures if campaign_id in (None, f["campaign_id"])]
        return _json(
            {
                "messages": box.as_json(campaign_id),
                "failures": failures,
                "verified_senders": sorted(box.verified),
            }
        )

    async def senders(request: Request) -> Response:
        email = (await _object_body(request)).get("email")
        if not isinstance(email, str) or "@" not in email.strip():
            raise _BadRequest('"email" must be an email address, e.g. "store@example.com"')
        _outbox().verify(email)
        return _json({"email": email.strip().lower(), "verified": True}, 201)

    async def image(request: Request) -> Response:
        read = getattr(state.backend, "image_file", None)
        found = read(request.path_params["name"]) if callable(read) else None
        if found is None:
            return _json({"error": "the emulator holds no such image"}, 404)
        content, media_type = found
        return Response(content, media_type=media_type)

    return [
        Route(f"{PREFIX}/stats", _guarded(stats), methods=["GET", "DELETE"]),
        Route(f"{PREFIX}/keys", _guarded(keys), methods=["POST"]),
        Route(f"{PREFIX}/tokens", _guarded(tokens), methods=["POST"]),
        Route(f"{PREFIX}/clock", _guarded(clock), methods=["GET", "POST"]),
        Route(f"{PREFIX}/reset", _guarded(reset), methods=["POST"]),
        Route(f"{PREFIX}/oauth-clients", _guarded(oauth_clients), methods=["POST"]),
        Route(f"{PREFIX}/faults", _guarded(faults), methods=["GET", "POST"]),
        Route(f"{PREFIX}/truth", _guarded(truth), methods=["GET"]),
        Route(f"{PREFIX}/outbox", _guarded(outbox), methods=["GET"]),
        Route(f"{PREFIX}/senders", _guarded(senders), methods=["POST"]),
        Route(f"{PREFIX}/images/{{name}}", _guarded(image), methods=["GET"]),
    ]
