"""The tools each tenant registers at run time (HTTP tools, MCP servers over HTTP), kept on disk.

One JSON file per tenant in a folder of the data dir, written whole and renamed into
place, so a tool registered before a restart is there after it and a crash mid-write
leaves the previous file. Each tenant sees only its own tools, on top of the built-in
ones; a name may not shadow a built-in tool or another of the tenant's.

Tenants may add MCP servers by URL only: a stdio server is a command run on our machine,
which only the operator may configure (in settings). MCP URLs pass the same address guard
as HTTP tools, when they are registered and on every connection (tools/outbound.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from tools.base import Tool
from tools.errors import InvalidToolError, ToolExistsError, ToolNotFoundError, UnsafeTargetError
from tools.http_tools import HttpToolDefinition, http_tool
from tools.mcp_tools import McpConnection, McpServerConfig
from tools.outbound import DEFAULT_MAX_RESPONSE_BYTES, PinnedTransport, TargetGuard

__all__ = ["TenantTools"]

log = logging.getLogger(__name__)

_EXISTS = "a tool named {name!r} already exists"
_NO_TOOL = "no tool named {name!r} was registered"
_NO_SERVER = "no MCP server named {name!r} was registered"
_NO_STDIO = "MCP servers registered at run time must use transport 'http'; stdio servers are set in settings"
_BAD_SCHEMA = "tool {name!r}: {error}"


class _Saved(BaseModel):
    http: list[HttpToolDefinition] = Field(default_factory=list)
    mcp: list[McpServerConfig] = Field(default_factory=list)


class TenantTools:
    """Every tenant's registered tools; `tools_for(tenant)` is what a turn adds to the registry."""

    def __init__(
        self,
        folder: Path,
        *,
        guard: TargetGuard,
        reserved: Callable[[], Iterable[str]] = tuple,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._folder = folder
        self._max_response_bytes = max_response_bytes
        self._guard = guard
        self._client = httpx.AsyncClient(transport=PinnedTransport(guard))
        """Every HTTP tool's calls go through it: the guard checks each connection's address."""
        self._reserved = reserved
        self._saved: dict[str, _Saved] = {}
        self._mcp: dict[tuple[str, str], McpConnection] = {}
        self._lock = asyncio.Lock()

    # Persistence

    def _path(self, tenant: str) -> Path:
        return self._folder / f"{tenant}.json"

    def _load(self, tenant: str) -> _Saved:
        if tenant not in self._saved:
            path = self._path(tenant)
            self._saved[tenant] = _Saved.model_validate_json(path.read_text()) if path.exists() else _Saved()
        return self._saved[tenant]

    def _write(self, tenant: str, saved: _Saved) -> None:
        """Header values are secrets (API keys of the targets): the folder is 0700, each file 0600."""
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._folder.chmod(0o700)
        path = self._path(tenant)
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)  # a leftover may have looser permissions than O_CREAT would give
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(saved.model_dump_json(indent=2))
        os.replace(temporary, path)
        self._saved[tenant] = saved

    async def start(self) -> None:
        """Reconnect the MCP servers tenants registered before a restart (one failing is logged, not fatal)."""
        if not self._folder.is_dir():
            return
        self._folder.chmod(0o700)  # tightens a folder written before registrations were kept private
        for path in sorted(self._folder.glob("*.json")):
            path.chmod(0o600)
            tenant = path.stem
            for config in self._load(tenant).mcp:
                try:
                    self._mcp[(tenant, config.name)] = await McpConnection(config, guard=self._guard).start()
                except Exception as error:
                    log.warning("tenant %s: MCP server %s is unavailable: %s", tenant, config.name, error)

    async def aclose(self) -> None:
        for connection in self._mcp.values():
            await connection.close()
        self._mcp.clear()
        await self._client.aclose()

    # What a turn sees

    def _http_tool(self, definition: HttpToolDefinition) -> Tool:
        return http_tool(definition, self._client, max_response_bytes=self._max_response_bytes)

    def tools_for(self, tenant: str) -> list[Tool]:
        saved = self._load(tenant)
        tools = [self._http_tool(d) for d in saved.http]
        for config in saved.mcp:
            connection = self._mcp.get((tenant, config.name))
            if connection is not None:
                tools.extend(connection.tools)
        return tools

    def _taken(self, tenant: str) -> set[str]:
        return set(self._reserved()) | {t.spec.name for t in self.tools_for(tenant)}

    # HTTP tools

    def list_http(self, tenant: str) -> list[HttpToolDefinition]:
        return list(self._load(tenant).http)

    async def register_http(self, tenant: str, definition: HttpToolDefinition) -> HttpToolDefinition:
        """Check the URL and the schema, then keep the tool; ToolExistsError / UnsafeTargetError otherwise."""
        from tools.registry import ToolRegistry

        await asyncio.to_thread(self._guard.check, definition.url)
        try:
            ToolRegistry([self._http_tool(definition)])
        except ValueError as error:
            raise InvalidToolError(_BAD_SCHEMA.format(name=definition.name, error=error)) from error
        async with self._lock:
            if definition.name in self._taken(tenant):
                raise ToolExistsError(_EXISTS.format(name=definition.name))
            saved = self._load(tenant)
            self._write(tenant, _Saved(http=[*saved.http, definition], mcp=saved.mcp))
        return definition

    async def delete_http(self, tenant: str, name: str) -> None:
        """Forget an HTTP tool; ToolNotFoundError when there is none of that name."""
        async with self._lock:
            saved = self._load(tenant)
            http = [d for d in saved.http if d.name != name]
            if len(http) == len(saved.http):
                raise ToolNotFoundError(_NO_TOOL.format(name=name))
            self._write(tenant, _Saved(http=http, mcp=saved.mcp))

    # MCP servers

    def list_mcp(self, tenant: str) -> list[McpServerConfig]:
        return list(self._load(tenant).mcp)

    async def delete_mcp(self, tenant: str, name: str) -> None:
        """Disconnect and forget an MCP server; ToolNotFoundError when there is none of that name."""
        async with self._lock:
            saved = self._load(tenant)
            mcp = [c for c in saved.mcp if c.name != name]
            if len(mcp) == len(saved.mcp):
                raise ToolNotFoundError(_NO_SERVER.format(name=name))
            self._write(tenant, _Saved(http=saved.http, mcp=mcp))
            connection = self._mcp.pop((tenant, name), None)
        if connection is not None:
            await connection.close()

    async def register_mcp(self, tenant: str, config: McpServerConfig) -> list[Tool]:
        """Connect to an MCP server by URL and keep it; its tools are returned."""
        if config.transport != "http" or config.url is None:
            raise UnsafeTargetError(_NO_STDIO)
        await asyncio.to_thread(self._guard.check, config.url)
        async with self._lock:
            if any(c.name == config.name for c in self._load(tenant).mcp):
                raise ToolExistsError(_EXISTS.format(name=config.name))
            connection = await McpConnection(config, guard=self._guard).start()
            clash = {t.spec.name for t in connection.tools} & self._taken(tenant)
            if clash:
                await connection.close()
                raise ToolExistsError(_EXISTS.format(name=sorted(clash)[0]))
            saved = self._load(tenant)
            self._write(tenant, _Saved(http=saved.http, mcp=[*saved.mcp, config]))
            self._mcp[(tenant, config.name)] = connection
        return connection.tools
