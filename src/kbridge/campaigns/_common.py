"""What the workflows share: API errors turned into workflow errors, scopes per workflow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from kbridge import catalog
from kbridge.api.capabilities import Workflow
from kbridge.api.errors import AuthenticationError, PermissionDeniedError
from kbridge.campaigns.errors import InvalidKeyError, MissingScopesError

__all__ = ["explained", "scopes_for"]


def scopes_for(operations: Iterable[str]) -> tuple[str, ...]:
    """Every scope the catalogue says ``operations`` need (what to grant a key up front)."""
    return tuple(sorted({s for op in operations for s in catalog.get(op).scopes}))


@contextmanager
def explained(step: str, workflow: Workflow) -> Iterator[None]:
    """Run a step of ``workflow``; a 401/403 becomes one actionable error naming key or scopes.

    The step runs as ``workflow`` (the client refuses operations it does not
    declare), and a 403 on its first call already names every scope the whole
    workflow will need, not just the one that failed.
    """
    operations = workflow.operations
    try:
        with workflow.calls():
            yield
    except AuthenticationError as exc:
        raise InvalidKeyError(exc.request_id) from None
    except PermissionDeniedError as exc:
        raise MissingScopesError(
            step, exc.required_scopes, scopes_for(operations), exc.request_id
        ) from None
