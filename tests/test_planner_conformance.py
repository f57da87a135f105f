"""One contract, every planner backend: the cascade (scripted engine, served engine, and the
real model once), the native tool-calling planner, and Step-Audio 2.

Each backend gets the same conversations; a scripted backend is told what to answer in
its own wire shape (forced-prefix text for the cascade, `tool_calls` for served models,
`tts_content` for Step-Audio 2), and the events that come out must be the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from model.base import Message, PlanEvent, Planner, PlanRequest, TextDelta, ToolCallEvent, ToolSpecDict, Usage
from model.cascade import CascadePlanner
from model.openai_engine import OpenAIEngine
from model.openai_planner import OpenAIPlanner
from model.step_audio2 import StepAudio2Planner
from model.testing import ScriptedEngine, ScriptedSteps, step_answer, step_call, step_reply
from tests.openai_fake import FakeServer, Reply, serving
from tests.planner_tools import TOOLS, WEATHER


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]


Script = Callable[[Say | Call, str], None]
"""Tells a scripted backend its next answer, and what the step is: "choose" (tools on offer),
"reply" (no tools on offer) or "answer" (after a tool result)."""


@dataclass
class Backend:
    planner: Planner
    script: Script
    scripted: bool = True


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    with serving() as pair:
        yield pair


def _forced(step: Say | Call, kind: str) -> str:
    """What the model writes after the cascade's forced opening: `<tool_call>\\n{"name": "` when it
    may choose a tool, the opening of a `reply` call's text when it must reply, nothing (a plain
    answer) after a tool result."""
    if kind == "answer":
        return step.text if isinstance(step, Say) else ""
    if kind == "reply":
        return json.dumps(step.text)[1:] + "}}\n</tool_call>" if isinstance(step, Say) else ""
    name, args = (step.name, step.arguments) if isinstance(step, Call) else ("reply", {"text": step.text})
    return f'{name}", "arguments": {json.dumps(args)}}}\n</tool_call>'


def _cascade_scripted() -> Backend:
    engine = ScriptedEngine([])
    return Backend(CascadePlanner(engine), lambda step, kind: engine.completions.append(_forced(step, kind)))


def _cascade_steps() -> Backend:
    engine = ScriptedSteps([])

    def script(step: Say | Call, kind: str) -> None:
        if isinstance(step, Call):
            engine.samples.extend(step_call(step.name, step.arguments))
        elif kind == "answer":
            engine.samples.extend(step_answer(step.text))
        else:
            engine.samples.extend(step_reply(step.text, chosen=kind == "choose"))

    return Backend(CascadePlanner(engine), script)


def _served(fake: FakeServer, url: str, kind: str) -> Backend:
    fake.reset()
    base = f"{url}/v1"
    if kind == "cascade-openai-engine":

        def forced(step: Say | Call, kind: str) -> None:
            fake.replies.append(Reply(text=_forced(step, kind)))

        return Backend(CascadePlanner(OpenAIEngine(base, "qwen")), forced)

    def native(step: Say | Call, kind: str) -> None:
        if isinstance(step, Call):
            filler = "Let me check." if kind == "step-audio-2" else ""
            fake.replies.append(Reply(text=filler, calls=[(step.name, step.arguments)]))
        else:
            fake.replies.append(Reply(text=step.text, tts=kind == "step-audio-2", audio=[1, 2, 6561, 3]))

    planner: Planner
    planner = StepAudio2Planner(base) if kind == "step-audio-2" else OpenAIPlanner(base, "qwen")
    return Backend(planner, native)


@pytest.fixture(
    params=[
        "cascade-scripted",
        "cascade-steps",
        "cascade-openai-engine",
        "openai-planner",
        "step-audio-2",
        pytest.param("cascade-real", marks=pytest.mark.real),
        pytest.param("cascade-real-transformers", marks=pytest.mark.real),
    ]
)
def backend(request: pytest.FixtureRequest, server: tuple[FakeServer, str], data_dir: Path) -> Backend:
    if request.param == "cascade-scripted":
        return _cascade_scripted()
    if request.param == "cascade-steps":
        return _cascade_steps()
    if request.param.startswith("cascade-real"):
        from api.compose import build_engine
        from api.settings import Settings

        engine = "transformers" if request.param.endswith("transformers") else "llama"
        settings = Settings(data_dir=data_dir, engine=engine, device="cpu" if engine == "transformers" else None)
        return Backend(CascadePlanner(build_engine(settings)), lambda step, kind: None, scripted=False)
    return _served(*server, request.param)


def _plan(planner: Planner, messages: list[Message], tools: list[ToolSpecDict]) -> list[PlanEvent]:
    async def collect() -> list[PlanEvent]:
        try:
            return [event async for event in planner.plan(PlanRequest(messages=messages, tools=tools))]
        finally:
            await planner.aclose()

    events = asyncio.run(collect())
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1 and events[-1] is usages[0], "exactly one Usage, and it comes last"
    for event in events:
        if isinstance(event, TextDelta):
            assert "<tool_call>" not in event.text and "<audio_" not in event.text
        if isinstance(event, ToolCallEvent):
            assert event.call["id"] and isinstance(event.call["arguments"], dict)
    return events[:-1]


def _text(events: list[PlanEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta)).strip()


def _calls(events: list[PlanEvent]) -> list[ToolCallEvent]:
    return [e for e in events if isinstance(e, ToolCallEvent)]


def test_a_greeting_is_answered_without_tools(backend: Backend) -> None:
    backend.script(Say("Hello! How can I help?"), "choose")
    events = _plan(backend.planner, [Message(role="user", content="Hello there!")], TOOLS)
    assert not _calls(events) and _text(events)
    if backend.scripted:
        assert _text(events) == "Hello! How can I help?"


def test_a_time_question_calls_the_clock(backend: Backend) -> None:
    backend.script(Call("get_date_time", {"timezone": "Asia/Tokyo"}), "choose")
    events = _plan(backend.planner, [Message(role="user", content="What time is it in Tokyo?")], TOOLS)
    [event] = _calls(events)
    assert event.call["name"] == "get_date_time" and "tokyo" in event.call["arguments"]["timezone"].lower()


@pytest.mark.parametrize(
    ("question", "tool", "argument", "place"),
    [
        ("What's the weather like in Paris today?", "get_weather", "location", "paris"),
        ("What time is it in Tokyo?", "get_date_time", "timezone", "tokyo"),
    ],
    ids=["weather", "time"],
)
def test_with_the_weather_on_offer_each_question_calls_its_tool(
    backend: Backend, question: str, tool: str, argument: str, place: str
) -> None:
    backend.script(Call(tool, {argument: place.title()}), "choose")
    tools = sorted([*TOOLS, WEATHER], key=lambda spec: spec["name"])  # as the registry declares them
    events = _plan(backend.planner, [Message(role="user", content=question)], tools)
    [event] = _calls(events)
    assert event.call["name"] == tool and place in str(event.call["arguments"][argument]).lower()


def test_the_answer_after_a_tool_result_uses_it(backend: Backend) -> None:
    backend.script(Say("The password is tulip-42-harbor [1]."), "answer")
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
    events = _plan(backend.planner, messages, TOOLS)
    assert not _calls(events) and "tulip-42-harbor" in _text(events) and "[1]" in _text(events)


def test_with_no_tools_on_offer_it_only_answers(backend: Backend) -> None:
    backend.script(Say("Four."), "reply")
    events = _plan(backend.planner, [Message(role="user", content="What is two plus two?")], [])
    assert not _calls(events) and _text(events)
