"""Shared fixtures: the emulator plugin (``emulator``, ``emulator_factory``,
``emulator_client``) and the anyio backend for async tests."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["kbridge.testing.plugin"]

# Hypothesis fails an example that takes over 200 ms, and a data generation it finds slow: on
# a loaded 2-core CI machine both are the machine's speed, not the code's behaviour (a test
# never passes or fails on time here). Examples stay as many and as random as before.
settings.register_profile("kbridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kbridge")


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
