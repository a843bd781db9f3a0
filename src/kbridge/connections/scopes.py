"""Capabilities → operations → the least set of scopes, computed, never hand-listed.

A *capability* is something kbridge does for you (``sync``, ``privacy-delete``,
``actions:profiles`` …). Each one is defined by the catalogue operations it
calls — the union of what its workflows declare in
:mod:`kbridge.api.capabilities`, where the client holds each workflow to its
declaration; the scopes it needs are the union of those operations' ``scopes`` in
:mod:`kbridge.catalog` (generated from Klaviyo's OpenAPI spec). So when
Klaviyo changes an operation's scopes, regenerating the catalogue changes
the plan, and nobody has to remember to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from kbridge import catalog
from kbridge.api.actions import registry
from kbridge.api.capabilities import CAPABILITIES
from kbridge.api.errors import PermissionDeniedError
from kbridge.catalog import Operation
from kbridge.connections.errors import UnknownCapabilityError

__all__ = [
    "ACTIONS_PREFIX",
    "CAPABILITY_OPERATIONS",
    "CAPABILITY_SUMMARIES",
    "ScopeNeed",
    "ScopePlan",
    "all_capabilities",
    "capabilities_needing",
    "capability_operations",
    "explain_permission_error",
    "missing_scopes",
    "parse_capabilities",
    "plan_scopes",
    "probe_operation",
    "scopes_named_in",
]

ACTIONS_PREFIX = "actions:"

#: What each fixed capability calls, computed from the workflows' declarations
#: (:mod:`kbridge.api.capabilities`); ``actions:<resource>`` is derived, see below.
CAPABILITY_OPERATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: cap.operations for name, cap in CAPABILITIES.items()}
)

CAPABILITY_SUMMARIES: Mapping[str, str] = MappingProxyType(
    {name: cap.summary for name, cap in CAPABILITIES.items()}
)


@cache
def _action_resources() -> dict[str, tuple[Operation, ...]]:
    """``actions:<resource>`` → every operation the action registry's actions on it spend.

    The registry (:func:`kbridge.api.actions.registry`) is what ``kbridge
    <resource> <action>`` runs, so its operations are exactly what the
    capability needs — no more.
    """
    resources: dict[str, dict[str, Operation]] = {}
    for action in registry().values():
        ops = resources.setdefault(action.resource, {})
        for op in action.catalog_operations:
            ops.setdefault(op.operation_id, op)
    return {name: tuple(ops.values()) for name, ops in sorted(resources.items())}


def all_capabilities() -> tuple[str, ...]:
    """Every capability name kbridge knows, fixed ones first."""
    actions = tuple(f"{ACTIONS_PREFIX}{name}" for name in _action_resources())
    return (*CAPABILITY_OPERATIONS, *actions)


def capability_operations(capability: str) -> tuple[Operation, ...]:
    """The catalogue operations ``capability`` calls."""
    if capability in CAPABILITY_OPERATIONS:
        return tuple(catalog.get(op_id) for op_id in CAPABILITY_OPERATIONS[capability])
    if capability.startswith(ACTIONS_PREFIX):
        resource = capability.removeprefix(ACTIONS_PREFIX)
        found = _action_resources().get(resource)
        if found is not None:
            return found
        known = ", ".join(_action_resources())
        raise UnknownCapabilityError(
            f"unknown action resource {resource!r} in {capability!r}; known: {known}"
        )
    raise UnknownCapabilityError(
        f"unknown capability {capability!r}; known: {', '.join(CAPABILITY_OPERATIONS)}, "
        f"or {ACTIONS_PREFIX}<resource> (e.g. actions:profiles)"
    )


def parse_capabilities(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"sync, privacy-delete"`` (or a list) → validated, de-duplicated capability names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in items:
        name = item.strip()
        if not name:
            continue
        capability_operations(name)  # validates
        if name not in names:
            names.append(name)
    if not names:
        raise UnknownCapabilityError(
            f"no capability given; choose from {', '.join(CAPABILITY_OPERATIONS)} "
            f"or {ACTIONS_PREFIX}<resource>"
        )
    return tuple(names)


@dataclass(frozen=True, slots=True)
class ScopeNeed:
    """One scope of a plan and why: the capabilities and operations that need it."""

    scope: str
    capabilities: tuple[str, ...]
    operations: tuple[str, ...]

    def reason(self, *, max_operations: int = 3) -> str:
        """One line: ``sync, privacy-delete (get_profiles, get_events, …)``."""
        shown = ", ".join(self.operations[:max_operations])
        more = len(self.operations) - max_operations
        if more > 0:
            shown += f" and {more} more"
        return f"{', '.join(self.capabilities)}: {shown}"


@dataclass(frozen=True, slots=True)
class ScopePlan:
    """The least scopes serving ``capabilities``, each with its reasons."""

    capabilities: tuple[str, ...]
    needs: tuple[ScopeNeed, ...]

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(need.scope for need in self.needs)

    def need(self, scope: str) -> ScopeNeed | None:
        for need in self.needs:
            if need.scope == scope:
                return need
        return None


def plan_scopes(capabilities: Iterable[str]) -> ScopePlan:
    """The union of the scopes of every operation the capabilities call, with reasons."""
    caps = parse_capabilities(list(capabilities))
    by_scope: dict[str, tuple[list[str], list[str]]] = {}
    for cap in caps:
        for op in capability_operations(cap):
            for scope in op.scopes:
                cap_list, op_list = by_scope.setdefault(scope, ([], []))
                if cap not in cap_list:
                    cap_list.append(cap)
                if op.operation_id not in op_list:
                    op_list.append(op.operation_id)
    needs = tuple(
        ScopeNeed(scope, tuple(cap_list), tuple(op_list))
        for scope, (cap_list, op_list) in sorted(by_scope.items())
    )
    return ScopePlan(caps, needs)


def capabilities_needing(operation_id: str) -> tuple[str, ...]:
    """The capabilities that call ``operation_id`` (for naming them in a 403)."""
    return tuple(
        cap
        for cap in all_capabilities()
        if any(op.operation_id == operation_id for op in capability_operations(cap))
    )


_MISSING = re.compile(r"[Mm]issing scopes?(?:\(s\))?[^:]*:\s*([A-Za-z0-9_:,\s-]+)")


def scopes_named_in(err: PermissionDeniedError) -> tuple[str, ...]:
    """The scopes a 403's detail names as missing ("Missing scope(s) for …: a, b"), if any."""
    match = _MISSING.search(err.detail or "")
    if not match:
        return ()
    return tuple(s.strip().rstrip(".") for s in match.group(1).split(",") if ":" in s)


def missing_scopes(err: PermissionDeniedError) -> tuple[str, ...]:
    """The scopes a 403 says are missing; else all the operation's scopes."""
    found = scopes_named_in(err)
    if found:
        return found
    if err.required_scopes:
        return tuple(err.required_scopes)
    if err.operation_id:
        try:
            return catalog.get(err.operation_id).scopes
        except catalog.UnknownOperationError:
            return ()
    return ()


def explain_permission_error(err: PermissionDeniedError, capability: str | None = None) -> str:
    """One line for a 403: the missing scope(s), the capability needing them, what to do."""
    scopes = missing_scopes(err)
    scope_text = ", ".join(scopes) if scopes else "a scope it needs"
    operation = err.operation_id or "this request"
    if capability is not None:
        caps: tuple[str, ...] = (capability,)
    elif err.operation_id:
        caps = capabilities_needing(err.operation_id)
    else:
        caps = ()
    needed_by = f"capability {' / '.join(caps)}" if caps else "kbridge"
    hint = caps[0] if caps else "CAPABILITY"
    return (
        f"the key lacks {scope_text}, which {needed_by} needs ({operation}); add it to the "
        f"key in Klaviyo (Settings → API keys) or see `kbridge scopes --for {hint}`"
    )


def probe_operation(scope: str) -> Operation | None:
    """The cheapest safe operation needing ``scope`` (ideally only it), to test a key with.

    Reads first (a GET list with ``page[size]=1``), then a GET by (bogus) id;
    for write scopes a POST/PATCH sent with an empty document, which Klaviyo
    refuses with 400 after checking scopes, so nothing changes. Never DELETE.
    """
    candidates = [
        op
        for op in catalog.all_operations()
        if op.auth == "private" and scope in op.scopes and op.method != "DELETE"
    ]
    if not candidates:
        return None

    def cost(op: Operation) -> tuple[int, int, int, int, str]:
        method_rank = {"GET": 0, "POST": 1, "PATCH": 2}.get(op.method, 3)
        # fewest other scopes first, so a 403 points at this scope and no other
        return (
            len(op.scopes),
            method_rank,
            len(op.path_params),
            -op.rate_limit.steady,
            op.operation_id,
        )

    return min(candidates, key=cost)
