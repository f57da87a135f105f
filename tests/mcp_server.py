"""A small real MCP server for the tests: run as a script it serves stdio; `app()` is its streamable HTTP face."""

from __future__ import annotations

from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

STOCK = {"apples": 12, "pears": 0}


def stock_level(item: str) -> str:
    """How many of an item are in stock."""
    count = STOCK.get(item.lower())
    return f"{item}: unknown item" if count is None else f"{item}: {count} in stock"


def fail(reason: str) -> str:
    """Always fails, for error handling tests."""
    raise ValueError(reason)


def restock(item: str, count: int) -> str:
    """Order more of an item (it changes the stock, so its annotations say nothing of being read-only)."""
    STOCK[item.lower()] = STOCK.get(item.lower(), 0) + count
    return f"{item}: {STOCK[item.lower()]} in stock"


def _server() -> FastMCP:
    server = FastMCP("inventory", stateless_http=True)
    for tool in (stock_level, fail):
        server.tool(annotations=ToolAnnotations(readOnlyHint=True))(tool)
    server.tool()(restock)
    return server


def app() -> Any:
    """A new streamable HTTP app (serve it with uvicorn; the endpoint is /mcp): each runs only once."""
    return _server().streamable_http_app()


if __name__ == "__main__":
    _server().run("stdio")
