"""The agent interface: kbridge's actions, workflows and warehouse as MCP tools.

May import anything below it, never ``cli`` (the CLI builds an
:class:`AgentConfig` from flags and the environment and calls :func:`serve_stdio`
or :func:`serve_http`)::

    config = AgentConfig(accounts=[AccountConfig("default", {"api_key": key})])
    await serve_stdio(config)
"""

from __future__ import annotations

from kbridge.agent.run import http_app, serve_http, serve_stdio
from kbridge.agent.server import (
    Account,
    AccountConfig,
    Agent,
    AgentConfig,
    Call,
    ToolRefused,
    all_tools,
    build_server,
)
from kbridge.agent.tools import ToolSpec

__all__ = [
    "Account",
    "AccountConfig",
    "Agent",
    "AgentConfig",
    "Call",
    "ToolRefused",
    "ToolSpec",
    "all_tools",
    "build_server",
    "http_app",
    "serve_http",
    "serve_stdio",
]
