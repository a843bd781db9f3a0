"""The emulator's ASGI app: Klaviyo's HTTP surface over a :class:`Backend`.

One handler serves every ``/api/…`` and ``/client/…`` path. It checks, in
Klaviyo's order, and stops at the first failure (each a JSON:API error)::

    route (404/405) → auth (401) → revision (400/410) → scopes (403)
      → not emulated (501) → rate limit (429) → query (400) → body (413/415/400/409)
      → backend.run_due() + backend.dispatch(call) → JSON:API document

Before all of that, ``/api/*`` requests pass the fault injector
(:mod:`kbridge.emulator.http.faults`), which may delay, fail or cut them.

A request refused after the rate-limit check still counted against the
quota, as Klaviyo counts requests rather than successes; one refused by the
limiter consumed nothing. The backend is single-threaded: it is only ever
called from the event loop thread, never from a thread pool.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kbridge import catalog
from kbridge.catalog import Operation, UnknownOperationError
from kbridge.emulator.backend.call import Backend, Call
from kbridge.emulator.backend.errors import EmulatorBackendError
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.control import control_routes
from kbridge.emulator.http.auth import (
    InMemoryTokenStore,
    KeyStore,
    Principal,
    authenticate,
    authenticate_client,
    generate_private_key,
    require_scopes,
)
from kbridge.emulator.http.body import check_document, decode_body
from kbridge.emulator.http.errors import HttpProblem, backend_error_response, error_response
from kbridge.emulator.http.gate import Gate
from kbridge.emulator.http.jobrunner import JobRunner
from kbridge.emulator.http.jsonapi import RequestContext, render_outcome
from kbridge.emulator.http.params import parse_query
from kbridge.emulator.http.revision import resolve_revision
from kbridge.emulator.http.revisions import (
    adapt_outcome,
    adapt_request,
    implemented_revision,
    revised_fields,
)
from kbridge.emulator.http.state import Accounts, EmulatorState, new_rate_limiter
from kbridge.emulator.oauth import oauth_routes
from kbridge.emulator.query import InvalidCursorError
from kbridge.emulator.simclock import SimClock

__all__ = ["create_app"]

log = logging.getLogger("kbridge.emulator")
#: nginx's "client closed request": counted in the stats, answered to no one
_CLIENT_CLOSED = 499

_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
_UNMATCHED = "(unmatched)"


def _route(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    """The operation for ``method path``; 404 when no path matches, 405 for another method."""
    try:
        return catalog.match(method, path)
    except UnknownOperationError:
        pass
    allowed = []
    for other in _METHODS:
        if other == method:
            continue
        try:
            catalog.match(other, path)
        except UnknownOperationError:
            continue
        allowed.append(other)
    if allowed:
        raise HttpProblem(
            405,
            "method_not_allowed",
            f'Method "{method}" not allowed.',
            headers={"Allow": ", ".join(allowed)},
        )
    raise HttpProblem(404, "not_found", f"No API endpoint is served at {path[:200]}.")


def _throttled(retry_after: int, *, daily: bool) -> HttpProblem:
    if daily:
        detail = (
            "Request was throttled. The daily quota for this endpoint is exhausted. "
            f"Expected available in {retry_after} seconds."
        )
    else:
        detail = f"Request was throttled. Expected available in {retry_after} seconds."
    return HttpProblem(429, "throttled", detail, headers={"Retry-After": str(retry_after)})


def _not_emulated(operation: Operation) -> HttpProblem:
    return HttpProblem(
        501,
        "not_implemented",
        f"The emulator does not implement {operation.operation_id} "
        f"({operation.method} {operation.path}) yet.",
    )


class _Handler:
    """Turns one HTTP request into a backend call and its answer."""

    def __init__(self, accounts: Accounts, runner: JobRunner) -> None:
        self.accounts = accounts
        self.runner = runner

    async def __call__(self, request: Request) -> Response:
        # the key picks the account; its stats, limiter and data serve the whole request
        state = self.accounts.for_authorization(
            request.headers.get("authorization"), request.query_params.get("company_id")
        )
        started = state.clock.monotonic()
        operation_id = _UNMATCHED
        extra_headers: dict[str, str] = {}
        try:
            operation, path_params = _route(request.method, request.url.path)
            operation_id = operation.operation_id
            response = await self._handle(state, request, operation, path_params, extra_headers)
        except HttpProblem as problem:
            response = problem.response()
        except EmulatorBackendError as exc:
            response = backend_error_response(exc)
        except InvalidCursorError as exc:
            response = error_response(400, "invalid", str(exc), parameter="page[cursor]")
        except ClientDisconnect:
            # the client hung up (a killed worker, a timeout): nobody reads an answer now
            response = Response(status_code=_CLIENT_CLOSED)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.url.path)
            response = error_response(
                500, "error", "The emulator failed unexpectedly; see its log."
            )
        if response.status_code != 429:
            for name, value in extra_headers.items():
                response.headers.setdefault(name, value)
        state.stats.record(operation_id, response.status_code, state.clock.monotonic() - started)
        return response

    @staticmethod
    def _authenticate(state: EmulatorState, request: Request, operation: Operation) -> Principal:
        authorization = request.headers.get("authorization")
        if operation.auth == "public":
            return authenticate_client(
                authorization,
                request.query_params.get("company_id"),
                operation,
                account_id=state.backend.account_id,
            )
        return authenticate(
            authorization,
            keys=state.keys,
            tokens=state.tokens,
            account_id=state.backend.account_id,
            now=state.clock.now(),
        )

    async def _handle(
        self,
        state: EmulatorState,
        request: Request,
        operation: Operation,
        path_params: dict[str, str],
        extra_headers: dict[str, str],
    ) -> Response:
        principal = self._authenticate(state, request, operation)
        resolved = resolve_revision(
            request.headers.get("revision"),
            today=state.clock.now().date(),
            default=operation.revision,
            require=state.config.require_revision,
            fall_forward_opt_out=request.headers.get("x-klaviyo-revision-fall-forward-opt-out")
            == "1",
        )
        revision = implemented_revision(resolved, state.config.extra_revisions)
        require_scopes(principal, operation)
        if operation.operation_id not in state.backend.implemented:
            raise _not_emulated(operation)
        query_items = request.query_params.multi_items()
        decision = state.limiter.check(principal.bucket, operation, query_items)
        if not decision.allowed:
            raise _throttled(decision.retry_after or 1, daily=decision.daily_exhausted)
        extra_headers.update(decision.headers)
        checked, reshaped = revised_fields(revision, query_items)
        query = parse_query(operation, checked, allow_not=state.config.allow_not_filter)
        raw = await request.body()
        encoding = request.headers.get("content-encoding", "")
        body = decode_body(
            operation,
            raw,
            content_type=request.headers.get("content-type", ""),
            content_encoding=encoding,
        )
        call = Call(
            operation=operation,
            path_params=path_params,
            query=query,
            scopes=principal.scopes,
            revision=revision,
            # a 5 MB import is not serialised again to learn its size
            body_bytes=len(raw) if encoding.strip().lower() in ("", "identity") else None,
        )
        # A new bulk import reads no job: with the runner importing rows (served), the
        # rows of the jobs before it are left to it, so a push posting its next job at
        # the tier's pace does not wait for the last one. Every other request still
        # finds each job due by now complete (the same answers at the same times).
        reads = operation.operation_id != "bulk_import_profiles" or not self.runner.running
        state.backend.run_due(complete_imports=reads)
        run = state.backend.dispatch
        body = adapt_request(revision, operation, body, call, run)
        if body is not None:
            check_document(operation, body, path_params)
        outcome = adapt_outcome(revision, operation, run(replace(call, body=body)), run)
        ctx = RequestContext(
            base_url=state.config.public_base_url or str(request.base_url),
            path=request.url.path,
            query_items=query_items,
            raw_query=request.url.query,
            fields={**query.fields, **reshaped},
        )
        return render_outcome(outcome, operation, ctx)


def _default_backend(config: EmulatorConfig, clock: SimClock) -> Backend:
    from kbridge.emulator.backend import EmulatorBackend

    backend: Backend = EmulatorBackend(config, clock)
    return backend


def build_state(
    config: EmulatorConfig,
    *,
    backend: Backend | None = None,
    clock: SimClock | None = None,
    keys: KeyStore | None = None,
) -> EmulatorState:
    clock = clock or SimClock()
    return EmulatorState(
        config=config,
        clock=clock,
        backend=backend if backend is not None else _default_backend(config, clock),
        keys=keys or KeyStore(config.api_key or generate_private_key(config.seed)),
        tokens=InMemoryTokenStore(),
        limiter=new_rate_limiter(config, clock),
    )


class _EmulatorApp(Starlette):
    """Starlette behind the :class:`Gate`, with fault injection in front of ``/api/*``.

    Faults sit outside every middleware so that ``reset`` and ``truncate``
    reach the server's own ``send`` (and through it the connection); the gate
    is outside the faults, so a refused request never reaches an injected one.
    """

    gate: Gate | None = None
    runner: JobRunner | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = self.runner is not None and scope["type"] == "http"
        if counted and self.runner is not None:
            self.runner.request_started()
        try:
            if self.gate is None:
                await self._dispatch(scope, receive, send)
            else:
                await self.gate(scope, receive, send)
        finally:
            if counted and self.runner is not None:
                self.runner.request_ended()

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: EmulatorState = self.state.emulator
        if scope["type"] == "http" and state.faults.applies_to(scope["path"]):
            await state.faults.serve(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: EmulatorConfig,
    *,
    backend: Backend | None = None,
    clock: SimClock | None = None,
) -> Starlette:
    """The ASGI app; ``app.state.emulator`` is account 0's :class:`EmulatorState`.

    Without ``backend``, the seeded :class:`EmulatorBackend` is generated from
    ``config``; without ``clock``, simulated time starts at real time.
    ``app.state.accounts`` holds all ``config.accounts`` accounts: they share
    the simulated clock, and account ``i`` (generated from ``seed + i`` on its
    first use) has its own keys, limiter and stats.
    """
    state = build_state(config, backend=backend, clock=clock)

    def build_account(index: int, keys: KeyStore) -> EmulatorState:
        own = replace(config, seed=config.seed + index, api_key=None)
        return build_state(own, clock=state.clock, keys=keys)

    accounts = Accounts(state, config.accounts, build_account)
    runner = JobRunner(lambda: [account.backend for account in accounts.built()])
    handler = _Handler(accounts, runner)
    routes: list[Any] = [
        *control_routes(state, accounts),
        *oauth_routes(state.oauth, lambda: state.config.oauth_consent),
        # Every method reaches the handler, so unknown ones get Klaviyo's JSON 405.
        Route("/{path:path}", handler.__call__, methods=[*_METHODS, "HEAD", "OPTIONS"]),
    ]
    app = _EmulatorApp(routes=routes)
    app.state.emulator = state
    app.state.accounts = accounts
    # started by the server (kbridge.emulator.server) on its loop; in-process ASGI
    # callers leave job rows to run_due() as before
    app.runner = app.state.job_runner = runner
    app.gate = Gate(app._dispatch, config)
    return app
