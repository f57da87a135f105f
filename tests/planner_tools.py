"""The tool declarations planner tests offer: the clock and knowledge search (and the weather, where a
test offers it), as the agent declares them."""

from __future__ import annotations

from model.base import ToolSpecDict

__all__ = ["CLOCK", "SEARCH", "TOOLS", "WEATHER"]

CLOCK = ToolSpecDict(
    name="get_date_time",
    description="Current date and time in an IANA timezone or a city, e.g. Asia/Tokyo or Tokyo",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA timezone or city name"}},
        "required": ["timezone"],
    },
)
SEARCH = ToolSpecDict(
    name="knowledge_search",
    description="Search the user's private documents/knowledge base",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
TOOLS = [CLOCK, SEARCH]
WEATHER = ToolSpecDict(
    name="get_weather",
    description="Current weather and the forecast for a city or place: temperature, conditions, high and low, "
    "and the chance of rain.",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "A city or place, like Paris or Paris, France."},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "description": "Days to forecast."},
        },
        "required": ["location"],
    },
)
