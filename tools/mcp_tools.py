"""Tools from MCP servers, over stdio (a command we start) or streamable HTTP (a URL).

Each server's tools appear under its name as a prefix (`files_read`, `weather_forecast`),
so two servers with a `search` tool do not clash with each other or with ours.

The MCP SDK's transports are anyio context managers that must be entered and left by one
task. A server registered during an HTTP request would otherwise be opened by that
request's task and closed, much later, by the shutdown's: so every connection lives in
its own task, which opens the session, lists the tools, serves calls until `close()`,
then closes the session itself. Calls from any task go through the one ClientSession,
which multiplexes concurrent requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.base import (
    UNTRUSTED_REPLY,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    ToolSpec,
    TransientToolError,
    cut_text,
    fenced,
)
from tools.errors import ToolSourceError, UnsafeTargetError
from tools.outbound import PinnedTransport, TargetGuard, redact_in

__all__ = ["McpConnection", "McpServerConfig"]

log = logging.getLogger(__name__)

_NEEDS_COMMAND = "an MCP server over stdio needs a 'command'"
_NEEDS_URL = "an MCP server over streamable HTTP needs a 'url'"
_CONNECT_FAILED = "could not connect to MCP server {name!r}: {error}"
_CALL_FAILED = "MCP server {name!r} failed: {error}"
_CLOSED = "MCP server {name!r} is not connected"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpServerConfig(BaseModel):
    """One MCP server, as settings (VOICEGRAPH_MCP_SERVERS, a JSON list) or a request names it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
    """The prefix of its tools' names: `<name>_<tool>`."""
    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Per call."""
    confirm: bool | None = None
    """Ask the user before each call of its tools and run it on their yes; None: ask for the tools
    that may change things, by their annotations (not `readOnlyHint`, or `destructiveHint`)."""

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError(_NEEDS_COMMAND)
        if self.transport == "http" and not self.url:
            raise ValueError(_NEEDS_URL)
        return self


class McpConnection:
    """A live session with one MCP server, and its tools as ours.

    With a `guard` (a tenant's server), every connection to the server's URL is checked
    and pinned to the addresses checked (tools/outbound.py); settings' servers are the
    operator's and may be private.
    """

    def __init__(self, config: McpServerConfig, *, guard: TargetGuard | None = None) -> None:
        self.config = config
        self._guard = guard
        self.tools: list[Tool] = []
        self._session: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> McpConnection:
        """Connect and list the tools; ToolSourceError when the server cannot be reached."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp:{self.config.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.config.timeout_s)
        except BaseException as error:
            await self.close()
            if isinstance(error, ToolSourceError | UnsafeTargetError):
                raise
            raise ToolSourceError(_CONNECT_FAILED.format(name=self.config.name, error=error)) from error
        return self

    @property
    def connected(self) -> bool:
        """Whether the session is up (a server that went away leaves it down until reopened)."""
        return self._session is not None

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 10)
            self._task = None
        self._session = None

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        config = self.config
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert config.command is not None
            params = StdioServerParameters(command=config.command, args=config.args, env=config.env)
            async with stdio_client(params) as streams:
                yield streams
            return
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        assert config.url is not None
        timeout = httpx.Timeout(config.timeout_s, read=300)
        transport = None if self._guard is None else PinnedTransport(self._guard)
        async with (
            httpx.AsyncClient(
                headers=config.headers, timeout=timeout, follow_redirects=False, transport=transport
            ) as client,
            streamable_http_client(config.url, http_client=client) as streams,
        ):
            yield streams

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        from mcp import ClientSession

        try:
            async with self._transport() as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                listed = await session.list_tools()
                self._session = session
                self.tools = [self._tool(t) for t in listed.tools]
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as error:  # anyio wraps failures in exception groups
            if not ready.done():
                # the SDK's and httpx's messages may quote the URL, credentials and all
                reason = redact_in(str(error), self.config.url or "")
                failure = _refusal(error) or ToolSourceError(
                    _CONNECT_FAILED.format(name=self.config.name, error=reason)
                )
                ready.set_exception(failure)
            elif not self._stop.is_set():
                log.warning("MCP server %s disconnected: %s", self.config.name, error)
        finally:
            self._session = None

    def _tool(self, listed: Any) -> Tool:
        remote = str(listed.name)
        schema = dict(listed.inputSchema or {})
        schema.setdefault("type", "object")
        # MCP's defaults: a tool may change things (readOnlyHint false) and destroy (destructiveHint true).
        hints = listed.annotations
        read_only = bool(getattr(hints, "readOnlyHint", None)) and getattr(hints, "destructiveHint", None) is not True
        confirm = not read_only if self.config.confirm is None else self.config.confirm
        name = _UNSAFE_NAME.sub("_", f"{self.config.name}_{remote}")[:64]

        async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
            session = self._session
            if session is None:
                raise TransientToolError(_CLOSED.format(name=self.config.name))
            try:
                result = await session.call_tool(remote, arguments)
            except Exception as error:
                raise ToolError(_CALL_FAILED.format(name=self.config.name, error=error)) from error
            text = "\n".join(str(getattr(part, "text", "")) for part in result.content if hasattr(part, "text"))
            if not text and result.structuredContent is not None:
                text = str(result.structuredContent)
            if result.isError:
                raise ToolError(cut_text(text) or _CALL_FAILED.format(name=self.config.name, error="error"))
            return ToolResult(fenced(UNTRUSTED_REPLY.format(name=name), "tool-reply", cut_text(text)))

        description = str(listed.description or remote)
        spec = ToolSpec(
            name, description, schema, timeout_s=self.config.timeout_s, read_only=read_only, confirm=confirm
        )
        return Tool(spec=spec, handler=handler)


def _refusal(error: BaseException) -> UnsafeTargetError | None:
    """The address guard's refusal inside `error`, which anyio wraps in exception groups."""
    if isinstance(error, UnsafeTargetError):
        return error
    if isinstance(error, BaseExceptionGroup):
        return next(filter(None, map(_refusal, error.exceptions)), None)
    return None
