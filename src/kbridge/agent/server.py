"""The MCP server: one tool list, filtered by what this server may do and this key may do.

:func:`build_server` turns an :class:`AgentConfig` into an MCP ``Server`` whose
tools are :func:`~kbridge.agent.tools.action_tools` (the action registry),
:func:`~kbridge.agent.warehouse.warehouse_tools` and
:func:`~kbridge.agent.workflows.workflow_tools`. On start it opens one
:class:`~kbridge.api.AsyncClient` per connection (so every call of a connection
shares its rate limiter) and probes which scopes each key holds.

A tool is listed, and may be called, only when ``read_only`` allows it (every
write is hidden), the key holds its scopes (a scope the probe could not settle
does not hide it), and a warehouse is configured for warehouse tools. With more
than one connection every tool takes a required ``connection``.

A failed call is an MCP tool error (``isError``) of one line, with anything
shaped like a key masked and the configured secrets removed; never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from kbridge import __version__
from kbridge.agent.tools import CONVENTIONS, ToolSpec, action_tools
from kbridge.agent.warehouse import WAREHOUSE_CONVENTIONS, WarehouseHandle, warehouse_tools
from kbridge.agent.workflows import WORKFLOW_CONVENTIONS, ConfirmTokens, workflow_tools
from kbridge.api import ApiError, AsyncClient, PermissionDeniedError
from kbridge.api.errors import redact
from kbridge.core import Clock, KbridgeError, SystemClock
from kbridge.core.jsoncodec import dumps_str
from kbridge.privacy import AuditLog, MemoryAuditLog, PollPolicy

__all__ = [
    "MAX_ANSWER_CHARS",
    "Account",
    "AccountConfig",
    "Agent",
    "AgentConfig",
    "Call",
    "ToolRefused",
    "build_server",
]

log = logging.getLogger("kbridge.agent")

#: the longest answer a tool gives; past it the call fails, asking for less
MAX_ANSWER_CHARS = 256 * 1024


class ToolRefused(KbridgeError):
    """A call this server will not make (read-only mode, a missing scope, a bad argument)."""


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One Klaviyo connection: its name and how to build its client (secrets kept out of repr)."""

    name: str
    client_kwargs: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentConfig:
    """Everything the server needs; the CLI reads the environment and builds it."""

    accounts: Sequence[AccountConfig]
    read_only: bool = False
    warehouse_url: str | None = field(default=None, repr=False)
    query_timeout: float = 10.0
    #: seconds an unused warehouse connection stays open (then the file is let go)
    warehouse_idle: float = 5.0
    audit: AuditLog | None = field(default=None, repr=False)
    clock: Clock = field(default_factory=SystemClock)
    #: how long a deletion's confirm_token lives
    token_ttl: float = 300.0
    #: how long privacy_delete waits for Klaviyo to confirm (then it answers "pending")
    poll: PollPolicy = field(default_factory=lambda: PollPolicy(timeout=60.0))
    #: probe each key's scopes on start (to hide what it cannot do)
    probe_scopes: bool = True
    #: texts never to show (keys, tokens); shapes like pk_… are masked anyway
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("AgentConfig needs at least one account")
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError("two connections share a name")


@dataclass(slots=True)
class Account:
    """A connection while the server runs: its client and what its key was found to hold."""

    name: str
    client: AsyncClient
    missing: frozenset[str] = frozenset()
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """What a tool handler is given: the server and the connection the call is for."""

    agent: Agent
    account: Account


class Agent:
    """The running server's state: tools, connections, pending deletion tokens."""

    def __init__(self, config: AgentConfig, tools: Sequence[ToolSpec] | None = None) -> None:
        self.config = config
        specs = list(tools) if tools is not None else all_tools()
        self.tools: dict[str, ToolSpec] = {t.name: t for t in specs}
        if len(self.tools) != len(specs):
            raise ValueError("two tools share a name")
        self.accounts: dict[str, Account] = {}
        self.tokens = ConfirmTokens(config.clock, ttl=config.token_ttl)
        self.audit: AuditLog = config.audit or MemoryAuditLog()
        self.warehouse = (
            None
            if config.warehouse_url is None
            else WarehouseHandle(
                config.warehouse_url, timeout=config.query_timeout, idle=config.warehouse_idle
            )
        )

    @property
    def warehouse_url(self) -> str | None:
        return self.config.warehouse_url

    @property
    def query_timeout(self) -> float:
        return self.config.query_timeout

    @property
    def many(self) -> bool:
        return len(self.config.accounts) > 1

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Agent]:
        """Open every connection's client (and probe its scopes) for the server's life."""
        async with AsyncExitStack() as stack:
            for cfg in self.config.accounts:
                client = await stack.enter_async_context(AsyncClient(**cfg.client_kwargs))
                account = Account(cfg.name, client)
                if self.config.probe_scopes:
                    await self._probe(account)
                self.accounts[cfg.name] = account
            try:
                yield self
            finally:
                self.accounts.clear()
                if self.warehouse is not None:
                    self.warehouse.release()

    async def _probe(self, account: Account) -> None:
        from kbridge.connections.probe import probe_capabilities
        from kbridge.connections.scopes import all_capabilities

        try:
            report = await probe_capabilities(account.client, all_capabilities())
            account.missing = frozenset(report.missing)
            accounts = await account.client.accounts.get_accounts()
            account.account_id = accounts[0].id if accounts else None
        except KbridgeError as exc:
            # a dead key or no network: every tool stays listed and each call says why
            log.warning("could not probe connection %s: %s", account.name, self.scrub(exc))

    # -- what is offered -------------------------------------------------------------------
    def why_hidden(self, tool: ToolSpec, account: Account | None = None) -> str | None:
        """Why ``tool`` may not run (for ``account``, or for every connection), or None."""
        if self.config.read_only and not tool.read_only:
            return f"{tool.name} writes, and this server is read-only (--read-only)"
        if tool.warehouse and self.config.warehouse_url is None:
            return f"{tool.name} needs a warehouse: start kbridge mcp with --warehouse URL"
        if tool.api and tool.scopes:
            candidates = [account] if account is not None else list(self.accounts.values())
            lacking = [sorted(set(tool.scopes) & a.missing) for a in candidates]
            if candidates and all(lacking):
                first = lacking[0]
                return f"this key lacks the scope {' '.join(first)} needed by {tool.name}"
        return None

    def listed(self) -> list[ToolSpec]:
        return [t for t in self.tools.values() if self.why_hidden(t) is None]

    def describe(self, tool: ToolSpec) -> types.Tool:
        """The MCP description of ``tool`` (with ``connection`` when there are many)."""
        properties = dict(tool.properties)
        required = list(tool.required)
        if self.many:
            # the names are in the instructions: an enum on every tool would grow with them
            properties["connection"] = {"type": "string"}
            required.append("connection")
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=schema,
            annotations=_annotations(tool),
        )

    # -- calling -----------------------------------------------------------------------------
    def account_for(self, args: dict[str, Any]) -> Account:
        name = args.pop("connection", None)
        if not self.accounts:
            raise ToolRefused("the server is not running")
        if name is None:
            if self.many:
                raise ToolRefused(f"give connection: one of {', '.join(self.accounts)}")
            return next(iter(self.accounts.values()))
        found = self.accounts.get(str(name))
        if found is None:
            raise ToolRefused(f"no connection {name!r}; one of {', '.join(self.accounts)}")
        return found

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> types.CallToolResult:
        """Run tool ``name``; any failure is a one-line tool error."""
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolRefused(f"no tool {name!r}")
            args = dict(arguments or {})
            account = self.account_for(args)
            why = self.why_hidden(tool, account)
            if why is not None:
                raise ToolRefused(why)
            result = await tool.handler(Call(self, account), args)
            text = dumps_str(result)
            if len(text) > MAX_ANSWER_CHARS:
                raise ToolRefused(
                    f"the answer is {len(text) // 1024} KB, more than a context should take "
                    f"({MAX_ANSWER_CHARS // 1024} KB): ask for less (limit, fields, max_rows, top)"
                )
        except Exception as exc:
            return types.CallToolResult(
                content=[types.TextContent(text=self.describe_error(exc, name))], is_error=True
            )
        return types.CallToolResult(content=[types.TextContent(text=text)])

    def describe_error(self, exc: BaseException, tool: str) -> str:
        """One line for the agent: what failed and what to do, never a secret."""
        if isinstance(exc, PermissionDeniedError):
            scopes = " ".join(exc.required_scopes) or "it needs"
            text = f"this key lacks the scope {scopes} needed by {tool}"
        elif isinstance(exc, ApiError):
            d = exc.details
            head = f"{d.status} " if d.status is not None else ""
            where = f" (at {d.source_pointer})" if d.source_pointer else ""
            rid = f" [request id {d.request_id}]" if d.request_id else ""
            text = f"{tool} failed: {head}{d.detail or d.title or d.code or 'request failed'}"
            text += where + rid
        elif isinstance(exc, KbridgeError | ValueError):
            text = str(exc)
        else:
            log.error("tool %s failed: %s", tool, type(exc).__name__)
            text = f"{tool} failed unexpectedly ({type(exc).__name__})"
        return self.scrub(text)

    def scrub(self, value: object) -> str:
        text = " ".join(str(value).split())  # one line
        for secret in self.config.secrets:
            if secret:
                text = text.replace(secret, "***")
        return redact(text)


def _annotations(tool: ToolSpec) -> types.ToolAnnotations:
    """The hints, each said only where it differs from MCP's default (small tools/list).

    MCP's defaults: not read-only, destructive, not idempotent, open world; the
    destructive and idempotent hints mean something for writes only.
    """
    if tool.read_only:
        return types.ToolAnnotations(
            read_only_hint=True, open_world_hint=None if tool.api else False
        )
    return types.ToolAnnotations(
        destructive_hint=False if not tool.destructive else None,
        idempotent_hint=tool.idempotent or None,
        open_world_hint=None if tool.api else False,
    )


def _instructions(config: AgentConfig) -> str:
    text = (
        "Klaviyo through kbridge: actions, privacy and campaign workflows, and the synced "
        "warehouse. Prefer warehouse and analytics tools (no API calls) for analysis. "
        + " ".join((CONVENTIONS, WAREHOUSE_CONVENTIONS, WORKFLOW_CONVENTIONS))
    )
    if len(config.accounts) > 1:
        names = ", ".join(a.name for a in config.accounts)
        text += f" Every tool takes `connection`: one of {names}."
    return text


def all_tools() -> list[ToolSpec]:
    """Every tool kbridge offers, before filtering (actions, workflows, warehouse)."""
    return [*action_tools(), *workflow_tools(), *warehouse_tools()]


def build_server(config: AgentConfig, *, tools: Sequence[ToolSpec] | None = None) -> Server[Any]:
    """An MCP server over ``config``'s connections (run it with ``run_stdio``/``http_app``)."""
    agent = Agent(config, tools)

    @asynccontextmanager
    async def lifespan(_server: Server[Any]) -> AsyncIterator[Agent]:
        async with agent.running():
            yield agent

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[agent.describe(t) for t in agent.listed()])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await agent.call(params.name, params.arguments)

    def input_schema(name: str) -> Mapping[str, Any] | None:
        tool = agent.tools.get(name)
        return None if tool is None else agent.describe(tool).input_schema

    server: Server[Any] = Server(
        "kbridge",
        version=__version__,
        instructions=_instructions(config),
        lifespan=lifespan,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    server.kbridge_agent = agent  # type: ignore[attr-defined]  # for tests and benchmarks
    return server
