"""What a tool call answers when it fails: one line, no secret, no traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from mcp import Client

from kbridge.agent import AccountConfig, AgentConfig, Call, ToolSpec, build_server
from kbridge.agent.server import MAX_ANSWER_CHARS

pytestmark = pytest.mark.unit

KEY = "pk_" + "a1b2c3d4" * 4


async def _huge(call: Call, args: Mapping[str, Any]) -> Any:
    return {"rows": ["x" * 1024] * (MAX_ANSWER_CHARS // 1024 + 1)}


async def _leaky(call: Call, args: Mapping[str, Any]) -> Any:
    raise ValueError(f"bad value near {KEY}\nsecond line")


async def _broken(call: Call, args: Mapping[str, Any]) -> Any:
    raise RuntimeError(f"internal state {KEY}")


TOOLS = [
    ToolSpec(name="huge", description="too much", handler=_huge),
    ToolSpec(name="leaky", description="leaks", handler=_leaky),
    ToolSpec(name="broken", description="breaks", handler=_broken),
]


def _answers() -> dict[str, str]:
    # no request is sent: the probe is off and no tool calls the API
    config = AgentConfig(
        accounts=[AccountConfig("d", {"api_key": KEY, "base_url": "http://127.0.0.1:9"})],
        probe_scopes=False,
        secrets=(KEY,),
    )

    async def go() -> dict[str, str]:
        out = {}
        async with Client(build_server(config, tools=TOOLS)) as client:
            for name in ("huge", "leaky", "broken", "missing"):
                result = await client.call_tool(name, {})
                assert result.is_error, name
                out[name] = result.content[0].text  # type: ignore[union-attr]
        return out

    return asyncio.run(go())


def test_failures_are_one_line_without_secrets() -> None:
    answers = _answers()
    for name, text in answers.items():
        assert "\n" not in text, name
        assert KEY not in text, name
        assert "Traceback" not in text, name
    assert "ask for less" in answers["huge"]
    assert answers["leaky"].startswith("bad value near")
    assert answers["broken"] == "broken failed unexpectedly (RuntimeError)"
    assert "no tool 'missing'" in answers["missing"]
