"""An action's parameters are read off the service method: one declaration, not two."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
from typer.testing import CliRunner

from kbridge.api import actions
from kbridge.api.actions import Action, Param, declare, docstring_args
from kbridge.api.resources import SERVICES
from kbridge.cli.actions import build_command

pytestmark = pytest.mark.unit


class Widgets:
    """A small service, as a contributor would write one."""

    async def create_widget(self, *, name: str, colour: str | None = None) -> None:
        """A widget.

        Args:
            name: what the widget is called
            colour: its paint
        """


class WidgetsWithSize(Widgets):
    """The same service after a contributor added ``size`` to the method."""

    async def create_widget(  # type: ignore[override]
        self, *, name: str, colour: str | None = None, size: int | None = None
    ) -> None:
        """A widget.

        Args:
            name: what the widget is called
            colour: its paint
            size: how many centimetres across,
                measured at the widest
        """


def _widget_action(service: type[Widgets]) -> Action:
    # the declaration is the same line for both versions of the service
    return declare(
        "widgets create",
        service.create_widget,
        "Create a widget",
        operations=("create_list",),
        service="widgets",
    )


def _help(action: Action) -> str:
    app = typer.Typer()
    app.command("create")(build_command(action))
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["create", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_parameter_added_to_the_service_method_becomes_an_option() -> None:
    before = _widget_action(Widgets)
    assert [p.name for p in before.params] == ["name", "colour"]
    assert "--size" not in _help(before)

    after = _widget_action(WidgetsWithSize)
    size = after.param("size")
    assert (size.type, size.required, size.cli_flag) == ("int", False, "--size")
    assert size.help == "how many centimetres across, measured at the widest"
    shown = _help(after)
    assert "--size" in shown
    assert "how many centimetres across, measured at the widest" in shown
    assert "what the widget is called (required)" in shown
    args, kwargs = after.arguments({"name": "w", "size": 30})
    assert args == ()
    assert kwargs == {"name": "w", "size": 30}
    inspect.signature(WidgetsWithSize.create_widget).bind(None, *args, **kwargs)


def test_types_required_and_choices_come_from_the_annotations() -> None:
    class Things:
        async def update_thing(
            self,
            thing_id: str,
            *,
            tags: Sequence[str],
            data: Mapping[str, Any] | None = None,
            when: datetime | None = None,
            mode: Literal["fast", "slow"] = "fast",
            path: str | Path | None = None,
        ) -> None:
            """Change a thing."""

    action = declare(
        "things update", Things.update_thing, "x", operations=("update_list",), service="x"
    )
    by_name = {p.name: p for p in action.params}
    assert by_name["id"] == Param("id", argument=True, required=True, help="the thing id")
    assert (by_name["tags"].type, by_name["tags"].required) == ("strs", True)
    assert by_name["data"].type == "json_object"
    assert by_name["when"].type == "datetime"
    assert (by_name["mode"].choices, by_name["mode"].default) == (("fast", "slow"), "fast")
    assert by_name["path"].type == "path"
    assert action.kind == "write"


def test_the_docstring_args_section_is_the_help() -> None:
    def documented(*, first: str, second: int) -> None:
        """Summary line.

        Args:
            first: the first thing
            second (int): the second,
                over two lines

        Returns:
            nothing
        """

    assert docstring_args(documented) == {
        "first": "the first thing",
        "second": "the second, over two lines",
    }


_SAMPLES: dict[str, Any] = {
    "str": "a@b.co",
    "strs": ["a@b.co"],
    "int": 1,
    "float": 1.5,
    "bool": True,
    "json": {},
    "json_object": {"k": "v"},
    "json_list": [{"conditions": []}],
    "datetime": datetime(2026, 1, 1, tzinfo=UTC),
    "path": Path("a.png"),
    "text_file": '{"metric": "M", "profile": {"email": "a@b.co"}}',
}
#: optional values without which an action refuses (one of several, or a mode's need)
_ALSO = {
    "timeframe": "last_30_days",
    "subject": "Hi",
    "from_email": "a@b.co",
    "url": "https://x.co/a.png",
    "profile_ids": ["p1"],
    "email": "a@b.co",
}


@pytest.mark.parametrize("cli_name", list(actions.registry()))
def test_each_action_calls_its_method_with_arguments_it_accepts(cli_name: str) -> None:
    action = actions.get(cli_name)
    values: dict[str, Any] = {}
    for p in action.params:
        if p.required or p.argument:
            values[p.name] = p.choices[0] if p.choices else _SAMPLES[p.type]
        elif p.name in _ALSO and not (p.name == "email" and "phone_number" in values):
            values[p.name] = _ALSO[p.name]
    if cli_name == "data-privacy request-deletion":
        values = {"email": "a@b.co"}
    args, kwargs = action.arguments(values)
    method = getattr(SERVICES[action.service], action._method_for(values))
    inspect.signature(method).bind(None, *args, **kwargs)


def test_the_image_upload_declares_both_operations_it_may_call() -> None:
    action = actions.get("images upload")
    assert action.operations == ("upload_image_from_url", "upload_image_from_file")
    assert action._method_for({"file": Path("a.png")}) == "upload_image_from_file"
    assert action._method_for({"url": "https://x.co/a.png"}) == "upload_image_from_url"
    args, kwargs = action.arguments({"file": Path("a.png"), "hidden": True})
    assert args == (Path("a.png"),)
    assert kwargs == {"hidden": True}
