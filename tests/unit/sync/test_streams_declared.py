"""The sync's declaration (what `kbridge scopes --for sync` plans for) is what its streams call."""

from __future__ import annotations

import pytest

from kbridge.api.capabilities import SYNC
from kbridge.sync.streams import STREAMS

pytestmark = pytest.mark.unit


def test_every_stream_operation_is_declared_and_nothing_more() -> None:
    # get_accounts: the account id every row carries, read once per run
    called = {"get_accounts"}
    for stream in STREAMS:
        called.add(stream.operation_id)
        if stream.parent is not None:
            called.add(stream.parent.operation_id)
    assert called <= set(SYNC.operations), sorted(called - set(SYNC.operations))
    # a declared operation no stream calls would ask users' keys for a scope for nothing
    assert set(SYNC.operations) == called, sorted(set(SYNC.operations) - called)
