"""The tools each tenant registers at run time (HTTP tools, MCP servers over HTTP), kept in the memory backend.

Registrations live in the backend every replica shares (retrieval/registrations.py:
Redis in production, SQLite embedded), so a tool registered through one replica is
called from any other, and a tool deleted on one is gone on all. Each tenant sees only
its own tools, on top of the built-in ones; a name may not shadow a built-in tool or
another of the tenant's.

MCP sessions are the one thing a process holds: each replica opens a tenant's servers
lazily, when a turn or a listing first needs them, reopens one whose registration
changed, and closes one whose registration is gone. A server that cannot be reached is
left out (and retried after `retry_s`), so it cannot fail its tenant's turns. Changes
take a per-tenant lock, so a slow server delays only its own tenant.

Tenants may add MCP servers by URL only: a stdio server is a command run on our machine,
which only the operator may configure (in settings). MCP URLs pass the same address guard
as HTTP tools, when they are registered and on every connection (tools/outbound.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from retrieval.registrations import Registrations
from tools.base import Tool
from tools.errors import InvalidToolError, ToolExistsError, ToolNotFoundError, UnsafeTargetError
from tools.http_tools import HttpToolDefinition, http_tool
from tools.mcp_tools import McpConnection, McpServerConfig
from tools.outbound import DEFAULT_MAX_RESPONSE_BYTES, PinnedTransport, TargetGuard

__all__ = ["HTTP_KIND", "MCP_KIND", "TenantTools"]

log = logging.getLogger(__name__)

HTTP_KIND = "http-tool"
MCP_KIND = "mcp-server"
DEFAULT_RETRY_S = 30.0
"""How long a replica waits before trying again a tenant's MCP server it could not reach."""

_EXISTS = "a tool named {name!r} already exists"
_NO_TOOL = "no tool named {name!r} was registered"
_NO_SERVER = "no MCP server named {name!r} was registered"
_NO_STDIO = "MCP servers registered at run time must use transport 'http'; stdio servers are set in settings"
_BAD_SCHEMA = "tool {name!r}: {error}"

_Key = tuple[str, str]


class TenantTools:
    """Every tenant's registered tools; `tools_for(tenant)` is what a turn adds to the registry."""

    def __init__(
        self,
        registrations: Registrations,
        *,
        guard: TargetGuard,
        reserved: Callable[[], Iterable[str]] = tuple,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        self._store = registrations
        self._max_response_bytes = max_response_bytes
        self._guard = guard
        self._client = httpx.AsyncClient(transport=PinnedTransport(guard))
        """Every HTTP tool's calls go through it: the guard checks each connection's address."""
        self._reserved = reserved
        self._retry_s = retry_s
        self._mcp: dict[_Key, McpConnection] = {}
        self._failed: dict[_Key, tuple[McpServerConfig, float]] = {}
        self._tenant_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._connect_locks: weakref.WeakValueDictionary[_Key, asyncio.Lock] = weakref.WeakValueDictionary()

    def _tenant_lock(self, tenant: str) -> asyncio.Lock:
        return self._tenant_locks.setdefault(tenant, asyncio.Lock())

    async def aclose(self) -> None:
        connections, self._mcp = list(self._mcp.values()), {}
        await asyncio.gather(*(c.close() for c in connections))
        await self._client.aclose()

    # What is kept

    async def list_http(self, tenant: str) -> list[HttpToolDefinition]:
        found = await self._store.list(tenant, HTTP_KIND)
        return [HttpToolDefinition.model_validate_json(value) for value in found.values()]

    async def list_mcp(self, tenant: str) -> list[McpServerConfig]:
        found = await self._store.list(tenant, MCP_KIND)
        return [McpServerConfig.model_validate_json(value) for value in found.values()]

    # MCP sessions, opened lazily

    async def _connection(self, tenant: str, config: McpServerConfig) -> McpConnection | None:
        """This process's session with the tenant's server: opened on first need, reopened when
        its registration changed or it dropped; None while the server cannot be reached."""
        key = (tenant, config.name)
        async with self._connect_locks.setdefault(key, asyncio.Lock()):
            live = self._mcp.get(key)
            if live is not None and live.config == config and live.connected:
                return live
            if live is not None:
                del self._mcp[key]
                await live.close()
            failed = self._failed.get(key)
            if failed is not None and failed[0] == config and time.monotonic() - failed[1] < self._retry_s:
                return None
            try:
                connection = await McpConnection(config, guard=self._guard).start()
            except Exception as error:
                log.warning("tenant %s: MCP server %s is unavailable: %s", tenant, config.name, error)
                self._failed[key] = (config, time.monotonic())
                return None
            self._failed.pop(key, None)
            self._mcp[key] = connection
            return connection

    async def _close_gone(self, tenant: str, kept: set[str]) -> None:
        """Close this process's sessions with servers the tenant no longer has (deleted elsewhere)."""
        for key in [k for k in self._mcp if k[0] == tenant and k[1] not in kept]:
            await self._mcp.pop(key).close()

    async def mcp_tools(self, tenant: str) -> list[tuple[McpServerConfig, list[Tool]]]:
        """Each of the tenant's MCP servers with the tools it offers here (none while unreachable)."""
        configs = await self.list_mcp(tenant)
        await self._close_gone(tenant, {c.name for c in configs})
        connections = await asyncio.gather(*(self._connection(tenant, c) for c in configs))
        return [(c, list(conn.tools) if conn else []) for c, conn in zip(configs, connections, strict=True)]

    # What a turn sees

    def _http_tool(self, definition: HttpToolDefinition) -> Tool:
        return http_tool(definition, self._client, max_response_bytes=self._max_response_bytes)

    async def tools_for(self, tenant: str) -> list[Tool]:
        tools = [self._http_tool(d) for d in await self.list_http(tenant)]
        for _, offered in await self.mcp_tools(tenant):
            tools.extend(offered)
        return tools

    async def _taken(self, tenant: str) -> set[str]:
        return set(self._reserved()) | {t.spec.name for t in await self.tools_for(tenant)}

    # HTTP tools

    async def register_http(self, tenant: str, definition: HttpToolDefinition) -> HttpToolDefinition:
        """Check the URL and the schema, then keep the tool; ToolExistsError / UnsafeTargetError otherwise."""
        from tools.registry import ToolRegistry

        await asyncio.to_thread(self._guard.check, definition.url)
        try:
            ToolRegistry([self._http_tool(definition)])
        except ValueError as error:
            raise InvalidToolError(_BAD_SCHEMA.format(name=definition.name, error=error)) from error
        async with self._tenant_lock(tenant):
            if definition.name in await self._taken(tenant):
                raise ToolExistsError(_EXISTS.format(name=definition.name))
            value = definition.model_dump_json().encode()
            if not await self._store.put(tenant, HTTP_KIND, definition.name, value, replace=False):
                raise ToolExistsError(_EXISTS.format(name=definition.name))  # another replica was first
        return definition

    async def delete_http(self, tenant: str, name: str) -> None:
        """Forget an HTTP tool; ToolNotFoundError when there is none of that name."""
        if not await self._store.delete(tenant, HTTP_KIND, name):
            raise ToolNotFoundError(_NO_TOOL.format(name=name))

    # MCP servers

    async def delete_mcp(self, tenant: str, name: str) -> None:
        """Forget an MCP server and close this process's session with it (other replicas close
        theirs when they next look); ToolNotFoundError when there is none of that name."""
        if not await self._store.delete(tenant, MCP_KIND, name):
            raise ToolNotFoundError(_NO_SERVER.format(name=name))
        connection = self._mcp.pop((tenant, name), None)
        if connection is not None:
            await connection.close()

    async def register_mcp(self, tenant: str, config: McpServerConfig) -> list[Tool]:
        """Connect to an MCP server by URL and keep it; its tools are returned."""
        if config.transport != "http" or config.url is None:
            raise UnsafeTargetError(_NO_STDIO)
        await asyncio.to_thread(self._guard.check, config.url)
        if any(c.name == config.name for c in await self.list_mcp(tenant)):
            raise ToolExistsError(_EXISTS.format(name=config.name))
        connection = await McpConnection(config, guard=self._guard).start()  # outside the lock: it may be slow
        try:
            async with self._tenant_lock(tenant):
                clash = {t.spec.name for t in connection.tools} & await self._taken(tenant)
                if clash:
                    raise ToolExistsError(_EXISTS.format(name=sorted(clash)[0]))
                if not await self._store.put(
                    tenant, MCP_KIND, config.name, config.model_dump_json().encode(), replace=False
                ):
                    raise ToolExistsError(_EXISTS.format(name=config.name))
                self._mcp[(tenant, config.name)] = connection
        except BaseException:
            await connection.close()
            raise
        return connection.tools

    # Older versions kept registrations in files

    async def import_files(self, folder: Path) -> int:
        """Move the registrations older versions kept in `folder` (one JSON file per tenant)
        into the backend, and delete each file once it is in: the files hold header secrets.
        A name the backend has already keeps the backend's registration; how many were moved."""
        moved = 0
        for path, saved in await asyncio.to_thread(_older_files, folder):
            tenant = path.stem
            for definition in saved.http:
                value = definition.model_dump_json().encode()
                moved += await self._store.put(tenant, HTTP_KIND, definition.name, value, replace=False)
            for config in saved.mcp:
                value = config.model_dump_json().encode()
                moved += await self._store.put(tenant, MCP_KIND, config.name, value, replace=False)
            await asyncio.to_thread(path.unlink)
        return moved


class _Saved(BaseModel):
    """A tenant's file, as older versions wrote it."""

    http: list[HttpToolDefinition] = Field(default_factory=list)
    mcp: list[McpServerConfig] = Field(default_factory=list)


def _older_files(folder: Path) -> list[tuple[Path, _Saved]]:
    if not folder.is_dir():
        return []
    return [(path, _Saved.model_validate_json(path.read_text())) for path in sorted(folder.glob("*.json"))]
