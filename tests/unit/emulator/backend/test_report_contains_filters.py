"""Report body filters with ``contains-any``/``contains-all``: Klaviyo's spec allows
``contains-any`` on the scalar attributes (campaign_id, send_channel …); the backend
parsed them but answered 400 "operator not supported" when evaluating."""

from __future__ import annotations

from typing import Any

import pytest

from kbridge.emulator.backend import EmulatorBackend
from tests.unit.emulator.backend.conftest import Caller
from tests.unit.emulator.backend.test_reporting import T0, put, report, setup  # noqa: F401

pytestmark = pytest.mark.unit


def test_contains_any_on_campaign_id_keeps_the_listed_campaigns(
    empty: EmulatorBackend,
    ecall: Caller,
    setup: dict[str, Any],  # noqa: F811
) -> None:
    a, b, _ = setup["seqs"]
    put(empty, "Received Email", a, T0, **{"$message": setup["mid"]})
    put(empty, "Received Email", b, T0, **{"$message": setup["mid2"]})
    group = ["campaign_id", "campaign_message_id"]
    both = f'contains-any(campaign_id,["{setup["cid"]}","{setup["cid2"]}"])'
    rows = report(ecall, empty, ["recipients"], filter=both, group_by=group)
    assert sorted(r["groupings"]["campaign_id"] for r in rows) == sorted(
        [setup["cid"], setup["cid2"]]
    )
    one = f'contains-any(campaign_id,["{setup["cid2"]}","nope"])'
    rows = report(ecall, empty, ["recipients"], filter=one, group_by=group)
    assert [(r["groupings"]["campaign_id"], r["statistics"]["recipients"]) for r in rows] == [
        (setup["cid2"], 1)
    ]
    none = 'contains-any(send_channel,["sms"])'
    assert report(ecall, empty, ["recipients"], filter=none, group_by=group) == []
