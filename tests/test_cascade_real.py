"""The cascade planner on the real Qwen2.5-Coder-1.5B: tool choice, no tool, grounded answer.

Three model calls in all (slow on CPU); the model is loaded once for the module.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from model.assets import prepare_planner_model
from model.base import Message, PlanEvent, PlanRequest, TextDelta, ToolCallEvent, ToolSpecDict, Usage
from model.cascade import CascadePlanner
from model.llm import TransformersEngine, load_engine

pytestmark = pytest.mark.real

TOOLS: list[ToolSpecDict] = [
    ToolSpecDict(
        name="get_date_time",
        description="Current date and time in an IANA timezone or a city, e.g. Asia/Tokyo or Tokyo",
        parameters={
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA timezone or city name"}},
            "required": ["timezone"],
        },
    ),
    ToolSpecDict(
        name="knowledge_search",
        description="Search the user's private documents/knowledge base",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for"}},
            "required": ["query"],
        },
    ),
]


@pytest.fixture(scope="module")
def planner_model_dir(data_dir: Path) -> Path:
    return prepare_planner_model(data_dir)


@pytest.fixture(scope="module")
def planner(planner_model_dir: Path) -> CascadePlanner:
    return CascadePlanner(load_engine(planner_model_dir), today=lambda: datetime(2026, 11, 24, 14, 0))


def _plan(planner: CascadePlanner, messages: list[Message]) -> list[PlanEvent]:
    async def collect() -> list[PlanEvent]:
        return [event async for event in planner.plan(PlanRequest(messages=messages, tools=TOOLS))]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Usage)
    assert events[-1].prompt_tokens > 0 and events[-1].completion_tokens > 0
    return events


def _text(events: list[PlanEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_time_question_calls_the_clock(planner: CascadePlanner) -> None:
    events = _plan(planner, [Message(role="user", content="What time is it in Tokyo?")])
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1
    assert calls[0]["name"] == "get_date_time"
    assert "tokyo" in calls[0]["arguments"]["timezone"].lower()


def test_greeting_needs_no_tool(planner: CascadePlanner) -> None:
    events = _plan(planner, [Message(role="user", content="Hello there!")])
    assert not any(isinstance(e, ToolCallEvent) for e in events)
    assert _text(events).strip()


def test_answer_is_grounded_in_the_tool_result(planner: CascadePlanner) -> None:
    messages = [
        Message(role="user", content="According to my notes, what is the wifi password?"),
        Message(
            role="assistant",
            content="",
            tool_calls=[{"id": "call_1", "name": "knowledge_search", "arguments": {"query": "wifi password"}}],
        ),
        Message(
            role="tool",
            tool_call_id="call_1",
            name="knowledge_search",
            content="[1] office-notes.md: The guest wifi network is VoxGuest and its password is tulip-42-harbor.\n"
            "[2] handbook.pdf: Printers are on the second floor.",
        ),
    ]
    events = _plan(planner, messages)
    assert not any(isinstance(e, ToolCallEvent) for e in events)
    text = _text(events)
    assert "tulip-42-harbor" in text
    assert "[1]" in text


def test_prefix_cache_changes_nothing_but_time(planner: CascadePlanner) -> None:
    engine = planner.engine
    assert isinstance(engine, TransformersEngine) and engine.prefix_cache is not None
    cache = engine.prefix_cache
    messages = [Message(role="user", content="What time is it in New York?")]
    with_cache = [e for e in _plan(planner, messages) if not isinstance(e, Usage)]
    hits = cache.hits
    again = [e for e in _plan(planner, messages) if not isinstance(e, Usage)]
    assert cache.hits == hits + 1
    engine.prefix_cache = None
    try:
        without = [e for e in _plan(planner, messages) if not isinstance(e, Usage)]
    finally:
        engine.prefix_cache = cache

    def calls(events: list[PlanEvent]) -> list[tuple[str, dict[str, object]]]:
        return [(e.call["name"], e.call["arguments"]) for e in events if isinstance(e, ToolCallEvent)]

    assert calls(with_cache) == calls(again) == calls(without) == [("get_date_time", {"timezone": "America/New_York"})]
