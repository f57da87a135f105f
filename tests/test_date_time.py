"""get_date_time: what people call a place resolves to the right zone, and the answer reads well."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from tools.base import ToolContext, ToolError
from tools.builtin.date_time import date_time_tool, resolve_timezone
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

CONTEXT = ToolContext(tenant="acme", session_id="s1")
FIXED = datetime(2026, 11, 24, 13, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("said", "zone"),
    [
        ("Asia/Tokyo", "Asia/Tokyo"),
        ("asia/tokyo", "Asia/Tokyo"),
        ("America/New York", "America/New_York"),
        ("Tokyo", "Asia/Tokyo"),
        ("New York", "America/New_York"),
        ("sao paulo", "America/Sao_Paulo"),
        ("São Paulo", "America/Sao_Paulo"),
        ("Mexico City", "America/Mexico_City"),
        ("Tokyo time", "Asia/Tokyo"),
        ("San Francisco", "America/Los_Angeles"),
        ("Beijing", "Asia/Shanghai"),
        ("Shenzhen", "Asia/Shanghai"),
        ("Mumbai", "Asia/Kolkata"),
        ("Bangalore", "Asia/Kolkata"),
        ("Munich", "Europe/Berlin"),
        ("Osaka", "Asia/Tokyo"),
        ("Washington", "America/New_York"),
        ("UTC", "UTC"),
        ("GMT", "UTC"),
        ("Japan", "Asia/Tokyo"),
        ("Germany", "Europe/Berlin"),
        ("United Kingdom", "Europe/London"),
        ("England", "Europe/London"),
        ("India", "Asia/Kolkata"),
        ("China", "Asia/Shanghai"),
        ("Korea", "Asia/Seoul"),
        ("Spain", "Europe/Madrid"),
        ("Tokyo, Japan", "Asia/Tokyo"),
        ("Barcelona, Spain", "Europe/Madrid"),
        ("Springfield, Germany", "Europe/Berlin"),
        ("Canada/Toronto", "America/Toronto"),  # written like an IANA name, which it is not
        ("America/Houston", "America/Chicago"),
    ],
)
def test_resolves_names_cities_aliases_and_countries(said: str, zone: str) -> None:
    assert resolve_timezone(said)[2] == zone


def test_fixed_offsets() -> None:
    tz, place, zone = resolve_timezone("UTC+5:30")
    assert zone == place == "UTC+05:30"
    assert FIXED.astimezone(tz).strftime("%H:%M") == "18:45"


@pytest.mark.parametrize("said", ["Atlantis", "", "UTC+25", "Gotham, Narnia"])
def test_unknown_place_is_a_tool_error_the_model_can_act_on(said: str) -> None:
    with pytest.raises(ToolError, match="IANA timezone name"):
        resolve_timezone(said)


async def test_answer_with_injected_clock() -> None:
    tool = date_time_tool(now=lambda: FIXED)
    result = await tool.handler({"timezone": "Tokyo"}, CONTEXT)
    assert result.content == "It is 10:15 PM on Tuesday, 24 November in Tokyo."
    assert result.citations == []


async def test_answer_across_dst_and_date_line() -> None:
    tool = date_time_tool(now=lambda: datetime(2026, 7, 1, 3, 5, tzinfo=UTC))
    new_york = await tool.handler({"timezone": "New York"}, CONTEXT)
    assert new_york.content == ("It is 11:05 PM on Tuesday, 30 June in New York.")
    utc = await tool.handler({"timezone": "utc"}, CONTEXT)
    assert utc.content == "It is 3:05 AM on Wednesday, 1 July in UTC."


async def test_unknown_place_raises_from_the_handler() -> None:
    with pytest.raises(ToolError):
        await date_time_tool().handler({"timezone": "Middle Earth"}, CONTEXT)


def test_spec_registers_and_schema_is_valid() -> None:
    tool = date_time_tool()
    ToolRegistry([tool])
    Draft202012Validator.check_schema(dict(tool.spec.parameters))
    assert tool.spec.name == "get_date_time"
    assert tool.spec.parameters["required"] == ["timezone"]
