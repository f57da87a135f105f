"""The cascade on the real Qwen2.5-Coder-1.5B: what only the local engine has, its prefix cache.

Tool choice, no-tool answers and grounded answers on the real model are checked by the
planner conformance suite (tests/test_planner_conformance.py, backend `cascade-real`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from model.assets import prepare_planner_model
from model.base import Message, PlanEvent, PlanRequest, ToolCallEvent, Usage
from model.cascade import CascadePlanner
from model.llm import TransformersEngine, load_engine
from tests.planner_tools import TOOLS

pytestmark = pytest.mark.real


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
