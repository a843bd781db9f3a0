"""What the workflows share: API errors turned into workflow errors, scopes per workflow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from kbridge import catalog
from kbridge.api.errors import AuthenticationError, PermissionDeniedError
from kbridge.campaigns.errors import InvalidKeyError, MissingScopesError

__all__ = ["explained", "scopes_for"]


def scopes_for(operations: Iterable[str]) -> tuple[str, ...]:
    """Every scope the catalogue says ``operations`` need (what to grant a key up front)."""
    return tuple(sorted({s for op in operations for s in catalog.get(op).scopes}))


@contextmanager
def explained(step: str, operations: Iterable[str]) -> Iterator[None]:
    """Run a workflow step; a 401/403 becomes one actionable error naming key or scopes.

    ``operations`` is the whole workflow's, so a 403 on its first call already
    names every scope the key will need, not just the one that failed.
    """
    try:
        yield
    except AuthenticationError as exc:
        raise InvalidKeyError(exc.request_id) from None
    except PermissionDeniedError as exc:
        raise MissingScopesError(
            step, exc.required_scopes, scopes_for(operations), exc.request_id
        ) from None
