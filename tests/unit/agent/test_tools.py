"""The agent's tools are generated from the action registry, with truthful hints and safe values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kbridge.agent.tools import (
    CLI_ONLY_RESOURCES,
    GUARDED_ACTIONS,
    action_tools,
    tool_name,
    values_for,
)
from kbridge.agent.workflows import workflow_tools
from kbridge.api.actions import get, registry
from kbridge.api.validation import CAMPAIGN_CHANNELS, ValidationError

pytestmark = pytest.mark.unit

TOOLS = {t.name: t for t in action_tools()}


def test_every_action_but_the_guarded_ones_is_a_tool_with_its_parameters() -> None:
    for action in registry().values():
        name = tool_name(action)
        if action.cli_name in GUARDED_ACTIONS or action.resource in CLI_ONLY_RESOURCES:
            assert name not in TOOLS
            continue
        tool = TOOLS[name]
        assert tool.description == action.summary
        assert tool.scopes == action.scopes
        required = {p.name for p in action.params if p.required and p.type != "path"}
        assert set(tool.required) == required, name
        assert set(tool.required) <= set(tool.properties)


def test_a_parameter_added_to_a_service_method_becomes_a_tool_argument() -> None:
    # profiles update takes the typed attributes of ProfilesService.update_profile
    props = TOOLS["profiles_update"].properties
    assert props["location"]["type"] == "object"
    assert props["first_name"] == {"type": "string"}
    assert TOOLS["campaigns_list"].properties["channel"]["enum"] == list(CAMPAIGN_CHANNELS)


@pytest.mark.parametrize(
    ("name", "read_only", "destructive", "idempotent"),
    [
        ("profiles_list", True, False, True),
        ("templates_render", True, False, True),
        ("reporting_campaign_values", True, False, True),
        ("profiles_create", False, False, False),
        ("profiles_upsert", False, True, True),
        ("lists_add_profiles", False, False, True),
        ("lists_remove_profiles", False, True, True),
        ("lists_delete", False, True, True),
        ("events_create", False, False, False),
        ("subscriptions_unsubscribe", False, True, True),
    ],
)
def test_hints_are_read_off_the_operations(
    name: str, read_only: bool, destructive: bool, idempotent: bool
) -> None:
    tool = TOOLS[name]
    assert (tool.read_only, tool.destructive, tool.idempotent) == (
        read_only,
        destructive,
        idempotent,
    )


def test_no_agent_value_is_read_from_this_machine_s_disk() -> None:
    update = get("profiles update")
    with pytest.raises(ValidationError, match="valid JSON"):
        values_for(update, {"id": "x", "properties": "@/etc/hostname"})
    template = get("templates create")
    values = values_for(template, {"name": "t", "html": "/etc/hostname"})
    assert values["html"] == "/etc/hostname"  # the text itself, never a path opened
    assert "file" not in TOOLS["images_upload"].properties
    with pytest.raises(ValidationError, match="not a parameter"):
        values_for(get("images upload"), {"file": "/etc/hostname"})


def test_json_values_arrive_as_json() -> None:
    values = values_for(get("profiles update"), {"id": "x", "properties": {"vip": True}})
    assert values["properties"] == {"vip": True}
    with pytest.raises(ValidationError, match="not a parameter"):
        values_for(get("profiles list"), {"page_size": 5})  # it follows limit
    with pytest.raises(ValidationError, match="JSON dict"):
        values_for(get("profiles update"), {"id": "x", "properties": [1]})


def test_kbridge_help_does_not_import_the_mcp_sdk() -> None:
    probe = (
        "import sys, json\nfrom kbridge.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "sys.__stdout__.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert not {"mcp", "mcp_types", "kbridge.agent", "kbridge.cli.mcp"} & loaded
    assert " mcp " in done.stdout


def test_workflow_tools_need_the_scopes_of_what_they_call() -> None:
    tools = {t.name: t for t in workflow_tools()}
    assert tools["campaign_status"].scopes == ("campaigns:read",)
    assert "campaigns:write" in tools["campaign_cancel"].scopes
    assert "data-privacy:write" in tools["privacy_delete"].scopes
    assert tools["privacy_access"].read_only
    assert not tools["privacy_delete"].read_only
