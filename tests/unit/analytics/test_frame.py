from __future__ import annotations

import pytest

from kbridge.analytics import Frame

pytestmark = pytest.mark.unit


def test_frame_reads_columns_and_records() -> None:
    f = Frame.of(["stage", "profiles"], [("new", 3), ("lapsed", 1)], title="stages")
    assert len(f) == 2
    assert f.column("profiles") == [3, 1]
    assert f.records()[1] == {"stage": "lapsed", "profiles": 1}
    assert f.to_dict()["title"] == "stages"


def test_frame_rejects_ragged_rows_and_names_unknown_columns() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 values for 2 columns"):
        Frame.of(["a", "b"], [(1, 2), (3,)])
    with pytest.raises(KeyError, match="columns: a, b"):
        Frame.of(["a", "b"], []).column("c")
