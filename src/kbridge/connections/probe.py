"""Which capabilities can a credential actually serve? Ask Klaviyo, cheaply.

One call per scope (the cheapest safe operation needing it, see
:func:`kbridge.connections.scopes.probe_operation`), paced by the client's
rate limiter like any other request. A 403 means the scope is missing (the
error usually names every missing scope, so later probes are skipped); any
other answer that got past the scope check — 2xx, 400 for the deliberately
empty write document, 404 for the placeholder id, the emulator's 501 for an
operation it does not serve — means the scope is granted. Throttling and
outages leave a scope *unknown* rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kbridge import catalog
from kbridge.api import AsyncClient
from kbridge.api.errors import (
    ApiError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from kbridge.connections.scopes import (
    CAPABILITY_OPERATIONS,
    plan_scopes,
    probe_operation,
    scopes_named_in,
)
from kbridge.core import ConfigurationError

__all__ = ["DEFAULT_PROBED", "CapabilityStatus", "ProbeReport", "probe_capabilities"]

#: what `connect` probes by default: every fixed capability (actions:<resource> on request)
DEFAULT_PROBED: tuple[str, ...] = tuple(CAPABILITY_OPERATIONS)
_PLACEHOLDER_ID = "kbridge-scope-probe"


@dataclass(frozen=True, slots=True)
class CapabilityStatus:
    """One capability's verdict: the scopes it lacks, and those the probe could not settle."""

    capability: str
    missing: tuple[str, ...]
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unknown


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """Granted/missing/unknown scopes and, per capability, what is lacking."""

    granted: tuple[str, ...]
    missing: tuple[str, ...]
    unknown: tuple[str, ...]
    capabilities: tuple[CapabilityStatus, ...]

    @property
    def served(self) -> tuple[str, ...]:
        """The capabilities the credential can serve in full."""
        return tuple(status.capability for status in self.capabilities if status.ok)


def op_scopes(operation_id: str) -> tuple[str, ...]:
    return catalog.get(operation_id).scopes


def _probe_kwargs(scope: str) -> tuple[str, dict[str, Any]] | None:
    op = probe_operation(scope)
    if op is None:
        return None
    kwargs: dict[str, Any] = {}
    if op.path_params:
        kwargs["path_params"] = dict.fromkeys(op.path_params, _PLACEHOLDER_ID)
    if op.method == "GET" and op.page_size_param:
        kwargs["params"] = {"page[size]": 1}
    if op.method in {"POST", "PATCH"}:
        kwargs["json"] = {"data": {}}  # refused with 400 after the scope check: changes nothing
    return op.operation_id, kwargs


async def probe_capabilities(
    client: AsyncClient,
    capabilities: Iterable[str] = DEFAULT_PROBED,
    *,
    known_granted: Iterable[str] = (),
) -> ProbeReport:
    """Probe every scope ``capabilities`` need; :class:`AuthenticationError` if the key is dead.

    ``known_granted``: scopes a call that just succeeded proves (the
    verification's ``accounts:read``), so they cost no second request.
    """
    plan = plan_scopes(capabilities)
    granted: set[str] = set(known_granted) & set(plan.scopes)
    missing: set[str] = set()
    unknown: set[str] = set()
    for scope in plan.scopes:
        if scope in granted or scope in missing:
            continue
        probe = _probe_kwargs(scope)
        if probe is None:
            unknown.add(scope)
            continue
        operation_id, kwargs = probe
        try:
            await client.request(operation_id, **kwargs)
        except AuthenticationError:
            raise
        except PermissionDeniedError as err:
            named = set(scopes_named_in(err))
            if named:
                missing.update(named - granted)  # a scope already seen working stays granted
                if scope not in named:  # the scope is fine; another one of the operation is not
                    granted.add(scope)
            elif op_scopes(operation_id) == (scope,):
                missing.add(scope)
            else:
                unknown.add(scope)  # several scopes and no names: cannot tell which one
            continue
        except (RateLimitedError, TransportError, ConfigurationError):
            unknown.add(scope)
            continue
        except ServerError as err:
            if err.status != 501:  # 501: the emulator checked scopes, then declined to serve
                unknown.add(scope)
                continue
        except ApiError:
            pass  # 400/404/409/…: past the scope check, so the scope is there
        granted.add(scope)
    unknown -= granted | missing
    statuses = tuple(
        CapabilityStatus(
            capability=cap,
            missing=tuple(s for s in plan_scopes([cap]).scopes if s in missing),
            unknown=tuple(s for s in plan_scopes([cap]).scopes if s in unknown),
        )
        for cap in plan.capabilities
    )
    return ProbeReport(
        granted=tuple(sorted(granted)),
        missing=tuple(sorted(missing & set(plan.scopes))),
        unknown=tuple(sorted(unknown)),
        capabilities=statuses,
    )
