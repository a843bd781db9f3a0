"""Shared fixtures: the emulator plugin (``emulator``, ``emulator_factory``,
``emulator_client``) and the anyio backend for async tests."""

from __future__ import annotations

import pytest

pytest_plugins = ["kbridge.testing.plugin"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_TIERS = frozenset({"unit", "contract", "integration", "e2e"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test without a tier marker: `-m unit` must select every unit test."""
    unmarked = sorted(
        {
            item.nodeid.split("::")[0]
            for item in items
            if not _TIERS & {m.name for m in item.iter_markers()}
        }
    )
    if unmarked:
        raise pytest.UsageError(
            "tests without a tier marker (pytestmark = pytest.mark.unit|contract|integration|e2e): "
            + ", ".join(unmarked)
        )
