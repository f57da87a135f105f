"""A small real MCP server for the tests: run as a script it serves stdio; `app()` is its streamable HTTP face."""

from __future__ import annotations

from typing import Any

from mcp.server.fastmcp import FastMCP

server = FastMCP("inventory", stateless_http=True)

STOCK = {"apples": 12, "pears": 0}


@server.tool()
def stock_level(item: str) -> str:
    """How many of an item are in stock."""
    count = STOCK.get(item.lower())
    return f"{item}: unknown item" if count is None else f"{item}: {count} in stock"


@server.tool()
def fail(reason: str) -> str:
    """Always fails, for error handling tests."""
    raise ValueError(reason)


def app() -> Any:
    """The streamable HTTP app (serve it with uvicorn; the endpoint is /mcp)."""
    return server.streamable_http_app()


if __name__ == "__main__":
    server.run("stdio")
