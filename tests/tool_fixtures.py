"""Python tools that the tests name by reference (`tests.tool_fixtures:...`), as settings would."""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.tools import tool

from tools.base import ToolContext

__all__ = [
    "BACKEND_DOWN",
    "LANGCHAIN_TOOLS",
    "convert",
    "order_status_tool",
    "out_of_service",
    "reply_body",
    "whoami",
]

BACKEND_DOWN = "the weather backend is down"


def order_status_tool(base_url: str) -> dict[str, object]:
    """A read-only HTTP tool a shop registers (`POST /v1/tools`), answered at `base_url`/order-status."""
    return {
        "name": "order_status",
        "description": "The delivery status of a customer's order, by order number.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "The order number, like A-1042."}},
            "required": ["order_id"],
        },
        "url": f"{base_url}/order-status",
        "read_only": True,
    }


def reply_body(content: str) -> str:
    """What a tenant tool (HTTP, MCP) replied, from inside the fence its result reaches the model in."""
    match = re.search(r"\n<<<tool-reply\n(.*)\ntool-reply>>>\Z", content, re.DOTALL)
    assert match, f"not a fenced tool reply: {content!r}"
    return match.group(1)


def convert(amount: float, unit: Literal["km", "mi"] = "km") -> str:
    """Convert a distance to the other unit.

    The second paragraph is not part of the description.
    """
    if unit == "km":
        return f"{amount} km is {amount / 1.609344:.1f} mi"
    return f"{amount} mi is {amount * 1.609344:.1f} km"


async def whoami(context: ToolContext) -> dict[str, str]:
    """Who is asking: the tenant and the session."""
    return {"tenant": context.tenant, "session": context.session_id}


def out_of_service(city: str) -> str:
    """The weather in a city (its backend is always down)."""
    raise RuntimeError(f"{BACKEND_DOWN} for {city}")


@tool
def shout(text: str) -> str:
    """Repeat the text in capitals."""
    return text.upper()


LANGCHAIN_TOOLS = [shout]
