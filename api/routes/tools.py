"""/v1/tools and /v1/mcp-servers: the tools a tenant can use, and the ones it registers itself.

Registered tools are the tenant's alone, kept in the memory backend, so they survive a
restart and work on every replica (tools/custom.py). Header values are secrets for the
target (API keys), so listings show header names only.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from api.deps import ServicesDep, TenantDep
from api.errors import problem
from api.quotas import require_room
from tools.base import ToolSpec
from tools.custom import TenantTools
from tools.errors import ToolNotFoundError
from tools.http_tools import HttpToolDefinition
from tools.mcp_tools import McpServerConfig
from tools.outbound import redact

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tools"])

NO_CUSTOM_TOOLS = "this service does not accept registered tools"
NO_TOOL = "no tool or MCP server named {name!r} was registered"


class ToolPublic(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    source: Literal["builtin", "http", "mcp"]
    """builtin: every tenant's (built-in, settings' Python tools and MCP servers); http, mcp: registered."""
    url: str | None = None
    header_names: list[str] = []
    timeout_s: float
    read_only: bool
    confirm: bool
    """A call waits for the user's yes ("Shall I ...?") before it runs."""


class McpServerPublic(BaseModel):
    name: str
    url: str | None
    tools: list[str]


def _custom(services: Any) -> TenantTools:
    if services.tenant_tools is None:
        raise problem(status.HTTP_404_NOT_FOUND, NO_CUSTOM_TOOLS)
    custom: TenantTools = services.tenant_tools
    return custom


def _public(spec: ToolSpec, source: Literal["builtin", "http", "mcp"], **extra: Any) -> ToolPublic:
    return ToolPublic(
        name=spec.name,
        description=spec.description,
        parameters=dict(spec.parameters),
        source=source,
        timeout_s=spec.timeout_s,
        read_only=spec.read_only,
        confirm=spec.confirm,
        **extra,
    )


def _http_public(definition: HttpToolDefinition) -> ToolPublic:
    spec = ToolSpec(
        definition.name,
        definition.description,
        definition.parameters,
        timeout_s=definition.timeout_s,
        read_only=definition.read_only,
        confirm=definition.asks,
    )
    return _public(spec, "http", url=redact(definition.url), header_names=sorted(definition.headers))


def _mcp_public(config: McpServerConfig, tools: list[str]) -> McpServerPublic:
    return McpServerPublic(name=config.name, url=config.url and redact(config.url), tools=tools)


@router.get("/tools")
async def list_tools(services: ServicesDep, tenant: TenantDep) -> list[ToolPublic]:
    """Every tool the caller's turns may call: the shared ones, then its own."""
    shared = [
        _public(tool.spec, "builtin") for tool in sorted(services.runner.deps.registry, key=lambda t: t.spec.name)
    ]
    if services.tenant_tools is None:
        return shared
    own = [_http_public(d) for d in await services.tenant_tools.list_http(tenant)]
    for _, offered in await services.tenant_tools.mcp_tools(tenant):
        own += [_public(tool.spec, "mcp") for tool in offered]
    return shared + own


@router.post("/tools", status_code=status.HTTP_201_CREATED, responses={409: {}, 422: {}, 429: {}})
async def register_tool(body: HttpToolDefinition, services: ServicesDep, tenant: TenantDep) -> ToolPublic:
    """Register an HTTP tool: the agent will POST the arguments as JSON to `url`."""
    custom = _custom(services)
    async with services.quotas.adding(tenant, "HTTP tools"):
        require_room(len(await custom.list_http(tenant)), services.settings.quota_tools, "HTTP tools", "quota_tools")
        return _http_public(await custom.register_http(tenant, body))


@router.delete("/tools/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_tool(name: str, services: ServicesDep, tenant: TenantDep) -> Response:
    """Forget a registered HTTP tool (or, when there is none of that name, an MCP server)."""
    custom = _custom(services)
    try:
        await custom.delete_http(tenant, name)
    except ToolNotFoundError:
        try:
            await custom.delete_mcp(tenant, name)
        except ToolNotFoundError:
            raise ToolNotFoundError(NO_TOOL.format(name=name)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/mcp-servers")
async def list_mcp_servers(services: ServicesDep, tenant: TenantDep) -> list[McpServerPublic]:
    servers = await _custom(services).mcp_tools(tenant)
    return [_mcp_public(config, [t.spec.name for t in offered]) for config, offered in servers]


@router.post("/mcp-servers", status_code=status.HTTP_201_CREATED, responses={409: {}, 422: {}, 429: {}, 502: {}})
async def register_mcp_server(body: McpServerConfig, services: ServicesDep, tenant: TenantDep) -> McpServerPublic:
    """Connect an MCP server over streamable HTTP; its tools appear as `<name>_<tool>`."""
    custom = _custom(services)
    async with services.quotas.adding(tenant, "MCP servers"):
        count = len(await custom.list_mcp(tenant))
        require_room(count, services.settings.quota_mcp_servers, "MCP servers", "quota_mcp_servers")
        tools = await custom.register_mcp(tenant, body)
    return _mcp_public(body, [t.spec.name for t in tools])


@router.delete("/mcp-servers/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_mcp_server(name: str, services: ServicesDep, tenant: TenantDep) -> Response:
    """Disconnect and forget an MCP server (an HTTP tool of the same name stays)."""
    await _custom(services).delete_mcp(tenant, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
