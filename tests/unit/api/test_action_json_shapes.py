"""JSON parameters say what shape they take; files must be UTF-8: one clear error each."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.api import actions
from kbridge.api.actions import Param, coerce, read_text_file
from kbridge.api.resources.profiles import profile_attributes
from kbridge.api.validation import ValidationError

pytestmark = pytest.mark.unit

OBJ = Param("properties", "json_object")
LIST = Param("condition_groups", "json_list")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("[1, 2]", "a list"), ('"paris"', "a string"), ("5", "a number"), ("null", "null")],
)
def test_an_object_parameter_refuses_other_json(raw: str, kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        coerce(OBJ, raw)
    assert str(info.value).startswith("properties: must be a JSON object")
    assert f"not {kind}" in str(info.value)


def test_shapes_that_fit_pass_through() -> None:
    assert coerce(OBJ, '{"tier": "gold"}') == {"tier": "gold"}
    assert coerce(LIST, '[{"conditions": []}]') == [{"conditions": []}]
    with pytest.raises(ValidationError, match="must be a JSON list"):
        coerce(LIST, "{}")


def test_every_object_valued_parameter_of_the_registry_declares_it() -> None:
    objects = {"location", "properties", "context", "definition"}
    for action in actions.registry().values():
        for p in action.params:
            if p.name in objects:
                assert p.type == "json_object", (action.cli_name, p.name)
            assert p.type != "json" or p.name not in objects


def test_a_file_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    page = tmp_path / "latin1.html"
    page.write_bytes("<p>Crème</p>".encode("latin-1"))
    with pytest.raises(ValidationError) as info:
        read_text_file(page, "html")
    assert str(info.value) == (
        f"html: {page} is not UTF-8 text (byte 0xe8 at offset 5); "
        "save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
    )
    with pytest.raises(ValidationError, match="is not UTF-8"):
        coerce(OBJ, f"@{page}")


def test_profile_attributes_refuse_what_is_not_a_mapping() -> None:
    with pytest.raises(ValidationError, match=r"^properties: must be a mapping"):
        profile_attributes(properties=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^location: must be a mapping"):
        profile_attributes(location="paris")  # type: ignore[arg-type]
