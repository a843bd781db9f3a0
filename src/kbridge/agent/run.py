"""Serving the MCP server: over stdio (an MCP client starts ``kbridge mcp``) or streamable HTTP.

HTTP listens on loopback only and keeps the SDK's DNS-rebinding protection
(Host and Origin must name loopback): the server holds a Klaviyo key and asks
no credential of its callers, so nothing off this machine may reach it.
"""

from __future__ import annotations

from typing import Any

from kbridge.agent.server import AgentConfig, build_server

__all__ = ["HOST", "MCP_PATH", "http_app", "serve_http", "serve_stdio"]

HOST = "127.0.0.1"
MCP_PATH = "/mcp"


async def serve_stdio(config: AgentConfig) -> None:
    """Serve one client on stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    server = build_server(config)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def http_app(config: AgentConfig) -> Any:
    """The ASGI app serving MCP's streamable HTTP at ``/mcp``."""
    server = build_server(config)
    return server.streamable_http_app(streamable_http_path=MCP_PATH, host=HOST)


async def serve_http(config: AgentConfig, *, port: int) -> None:
    """Serve streamable HTTP on 127.0.0.1:``port`` until cancelled."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(http_app(config), host=HOST, port=port, log_level="warning")
    )
    await server.serve()
