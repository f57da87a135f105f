"""Builds the tools from Settings: the built-ins, web search, weather, Python tools, MCP servers, tenants' tools.

Kept apart from compose.py so the composition root stays readable; `open_tools` is an
async context because MCP connections and the shared HTTP client must be closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from api.settings import Settings
from retrieval.knowledge import KnowledgeStore
from retrieval.registrations import Registrations
from tools.base import Tool
from tools.builtin.date_time import date_time_tool
from tools.builtin.knowledge import knowledge_search_tool
from tools.builtin.weather import OpenMeteo, weather_tool
from tools.builtin.web_search import DdgsBackend, SearchBackend, SearxngBackend, web_search_tool
from tools.custom import TenantTools
from tools.mcp_tools import McpConnection
from tools.outbound import TargetGuard
from tools.python_tools import load_tools
from tools.registry import ToolRegistry

__all__ = ["Tooling", "open_tools"]

log = logging.getLogger(__name__)


@dataclass
class Tooling:
    registry: ToolRegistry
    """Every tenant's tools: built-ins, settings' Python tools and MCP servers."""
    tenant_tools: TenantTools
    """What each tenant registered at run time."""


def _web_search(settings: Settings, client: httpx.AsyncClient) -> Tool | None:
    if settings.web_search == "off":
        return None
    searxng = settings.web_search == "searxng"
    backend: SearchBackend = SearxngBackend(str(settings.searxng_url), client) if searxng else DdgsBackend()
    return web_search_tool(backend, cache_ttl_s=settings.web_search_cache_s)


def _weather(settings: Settings, client: httpx.AsyncClient) -> Tool | None:
    if not settings.weather:
        return None
    geocoding, forecast = str(settings.weather_geocoding_url), str(settings.weather_forecast_url)
    open_meteo = OpenMeteo(client, geocoding_url=geocoding, forecast_url=forecast)
    return weather_tool(open_meteo, cache_ttl_s=settings.weather_cache_s)


@asynccontextmanager
async def open_tools(
    settings: Settings, knowledge: KnowledgeStore, registrations: Registrations, extra: list[Tool] | None = None
) -> AsyncIterator[Tooling]:
    """The registry and the tenants' tools (kept in `registrations`, the memory backend's);
    `extra` tools (the voice library's) join the built-ins."""
    connections: list[McpConnection] = []
    async with httpx.AsyncClient() as client:
        tools = [date_time_tool(), knowledge_search_tool(knowledge), *(extra or [])]
        if (search := _web_search(settings, client)) is not None:
            tools.append(search)
        if (weather := _weather(settings, client)) is not None:
            tools.append(weather)
        for ref in settings.tools:
            tools.extend(load_tools(ref))
        try:
            for config in settings.mcp_servers:
                connection = await McpConnection(config).start()
                connections.append(connection)
                tools.extend(connection.tools)
            registry = ToolRegistry(tools)
            guard = TargetGuard(settings.private_hosts)
            tenant_tools = TenantTools(
                registrations,
                guard=guard,
                reserved=registry.names,
                max_response_bytes=settings.tool_max_response_bytes,
            )
            if moved := await tenant_tools.import_files(settings.tools_path):
                log.info("moved %d tool registrations from %s into the memory backend", moved, settings.tools_path)
            try:
                yield Tooling(registry=registry, tenant_tools=tenant_tools)
            finally:
                await tenant_tools.aclose()
        finally:
            for connection in connections:
                await connection.close()
