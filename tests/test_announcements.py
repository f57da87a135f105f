"""A short line is said while tools run: from the tool's template, before the tool's result,
never as part of the answer; as soon as the tool is chosen when the line needs no arguments;
off by setting, for unspoken turns, and when the planner spoke."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.context import AgentDeps
from agent.events import Audio, TurnDone, TurnEvent
from agent.memory import InMemoryBackend
from agent.runner import TurnRequest, TurnRunner
from model.base import PlanEvent, Planner, PlanRequest, TextDelta, ToolCall, ToolCallEvent, ToolChosen, Usage
from model.testing import RecordingSynthesizer, ScriptedPlanner, call, reply
from tools.base import GENERIC_ANNOUNCEMENT, Tool, ToolContext, ToolResult, ToolSpec
from tools.builtin.date_time import date_time_tool
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}


def _tool(announce: Any, gate: asyncio.Event | None = None, early: str | None = None) -> Tool:
    async def forecast(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        if gate is not None:
            await gate.wait()
        return ToolResult(f"Sunny in {arguments.get('city')}.")

    return Tool(ToolSpec("forecast", "the weather", SCHEMA, 5.0, announce=announce, announce_early=early), forecast)


def _agent(planner: Planner, tool: Tool, tts: RecordingSynthesizer, *, announce: bool = True) -> TurnRunner:
    deps = AgentDeps(planner=planner, registry=ToolRegistry([tool]), tts=tts, announce_tools=announce)
    return TurnRunner(deps, InMemoryBackend())


@pytest.mark.parametrize(
    ("announce", "arguments", "said"),
    [
        ("Let me look up the weather in {city}.", {"city": "Oslo"}, "Let me look up the weather in Oslo."),
        ("Checking {days} days for {city}.", {"city": "Oslo", "days": 3}, "Checking 3 days for Oslo."),
        ("Let me look up {city}.", {"days": 3}, GENERIC_ANNOUNCEMENT),  # an argument it names is missing
        ("Let me look up {city}.", {"city": "x" * 200}, GENERIC_ANNOUNCEMENT),  # too long to say
        ("{city.__class__}", {"city": "Oslo"}, "{city.__class__}"),  # no format-string attributes
        (None, {"city": "Oslo"}, GENERIC_ANNOUNCEMENT),
        (lambda args: f"Weather for {args['city']}, one moment.", {"city": "Oslo"}, "Weather for Oslo, one moment."),
    ],
)
def test_the_line_comes_from_the_tools_template(announce: Any, arguments: dict[str, Any], said: str) -> None:
    assert _tool(announce).spec.announcement(arguments) == said


def test_the_clock_names_the_place_it_understood() -> None:
    spec = date_time_tool().spec
    assert spec.announcement({"timezone": "Asia/Tokyo"}) == "Let me check the time in Tokyo."
    assert spec.announcement({"timezone": "new york"}) == "Let me check the time in New York."
    assert spec.announcement({"timezone": "UTC+3"}) == "Let me check the time."
    assert spec.announcement({"timezone": "nowhere at all"}) == "Let me check the time."


async def test_it_is_said_while_the_tool_runs_and_before_its_result() -> None:
    gate, tts = asyncio.Event(), RecordingSynthesizer()
    planner = ScriptedPlanner([call("forecast", city="Oslo"), reply("It is sunny in Oslo.")])
    agent = _agent(planner, _tool("Let me look up the weather in {city}.", gate), tts)
    events: list[TurnEvent] = []
    async for event in agent.stream_turn(TurnRequest("s", text="Weather in Oslo?")):
        events.append(event)
        if isinstance(event, Audio) and not gate.is_set():
            assert tts.said == [("Let me look up the weather in Oslo.", None)]  # the tool is still running
            assert event.text == "Let me look up the weather in Oslo."
            gate.set()
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolCalled") < kinds.index("Audio") < kinds.index("ToolFinished") < kinds.index("AnswerText")
    assert [text for text, _ in tts.said] == ["Let me look up the weather in Oslo.", "It is sunny", "in Oslo."]
    assert isinstance(events[-1], TurnDone)
    result = events[-1].result
    assert result["answer"] == "It is sunny in Oslo." and "look up" not in result["answer"]


async def test_a_line_said_before_is_said_again_without_synthesis() -> None:
    """The line's audio is kept (least recently said out first): the second turn's line is the
    same audio, the answers are synthesized each time, and another voice is another line."""
    tts = RecordingSynthesizer()
    answers = ["Sunny.", "Still sunny.", "Rain."]
    planner = ScriptedPlanner([step for answer in answers for step in (call("forecast", city="Oslo"), reply(answer))])
    agent = _agent(planner, _tool("Let me look up the weather in {city}.", early=None), tts)
    heard: list[list[tuple[str, int]]] = []
    for n, voice in enumerate([None, None, "other"]):
        events = [e async for e in agent.stream_turn(TurnRequest("s", text=f"Weather {n}?", voice=voice))]
        heard.append([(e.text, e.audio.size) for e in events if isinstance(e, Audio)])
    line = "Let me look up the weather in Oslo."
    assert tts.said == [(line, None), ("Sunny.", None), ("Still sunny.", None), (line, "other"), ("Rain.", "other")]
    assert heard[0][0] == heard[1][0] == (line, 1600)  # the second turn's line came from the cache


@pytest.mark.parametrize("case", ["setting off", "unspoken turn", "empty template"])
async def test_it_is_not_said(case: str) -> None:
    tts = RecordingSynthesizer()
    planner = ScriptedPlanner([call("forecast", city="Oslo"), reply("Sunny.")])
    agent = _agent(planner, _tool("" if case == "empty template" else None), tts, announce=case != "setting off")
    output = await agent.run_turn(TurnRequest("s", text="Weather?", speak=case != "unspoken turn"))
    assert output.result["answer"] == "Sunny."
    assert [text for text, _ in tts.said] == ([] if case == "unspoken turn" else ["Sunny."])


class _SaysBeforeCalling(Planner):
    """A speech-native-like planner that says its own line before calling, as Step-Audio 2 does."""

    name = "talkative"

    def __init__(self) -> None:
        self.steps = 0

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        self.steps += 1
        if self.steps == 1:
            yield TextDelta("Let me see.")
            yield ToolCallEvent(ToolCall(id="c1", name="forecast", arguments={"city": "Oslo"}))
        else:
            yield TextDelta("Sunny.")
        yield Usage(model=self.name)


async def test_a_planner_that_spoke_before_calling_is_not_talked_over() -> None:
    tts = RecordingSynthesizer()
    await _agent(_SaysBeforeCalling(), _tool("Let me look up {city}."), tts).run_turn(TurnRequest("s", text="Weather?"))
    assert [text for text, _ in tts.said] == ["Let me see.", "Sunny."]  # its own line, heard while the tool ran


class _ChoosesFirst(Planner):
    """A planner that tells the tool it chose before it has written the arguments, as the
    cascade on llama.cpp does; the arguments take a while to write (long enough for a line
    said meanwhile to be heard)."""

    name = "chooses-first"

    def __init__(self, tts: RecordingSynthesizer) -> None:
        self.steps = 0
        self.tts = tts
        self.said_while_writing: list[str] = []

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        self.steps += 1
        if self.steps == 1:
            yield ToolChosen("forecast")
            await asyncio.sleep(0.3)
            self.said_while_writing = [text for text, _ in self.tts.said]
            yield ToolCallEvent(ToolCall(id="c1", name="forecast", arguments={"city": "Oslo"}))
        else:
            yield TextDelta("Sunny.")
        yield Usage(model=self.name)


@pytest.mark.parametrize(
    ("announce", "early"),
    [("Let me look up the weather.", True), (None, True), ("Let me look up {city}.", False)],
)
async def test_a_line_that_needs_no_arguments_is_said_as_soon_as_the_tool_is_chosen(
    announce: str | None, early: bool
) -> None:
    tts = RecordingSynthesizer()
    planner = _ChoosesFirst(tts)
    events = [e async for e in _agent(planner, _tool(announce), tts).stream_turn(TurnRequest("s", text="Weather?"))]
    line = _tool(announce).spec.announcement({"city": "Oslo"})
    assert planner.said_while_writing == ([line] if early else [])
    kinds = [type(e).__name__ for e in events]
    assert (kinds.index("Audio") < kinds.index("ToolCalled")) is early
    assert [text for text, _ in tts.said] == [line, "Sunny."]  # said once, early or late


async def test_an_early_line_is_said_at_the_choice_instead_of_the_line_over_the_arguments() -> None:
    tts = RecordingSynthesizer()
    planner = _ChoosesFirst(tts)
    tool = _tool("Let me look up {city}.", early="Let me look up the weather.")
    events = [e async for e in _agent(planner, tool, tts).stream_turn(TurnRequest("s", text="Weather?"))]
    assert planner.said_while_writing == ["Let me look up the weather."]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Audio") < kinds.index("ToolCalled")
    assert [text for text, _ in tts.said] == ["Let me look up the weather.", "Sunny."]  # not "Let me look up Oslo." too


async def test_the_clock_and_the_weather_speak_as_soon_as_they_are_chosen() -> None:
    import httpx

    from tools.builtin.weather import OpenMeteo, weather_tool

    assert date_time_tool().spec.fixed_announcement() == "Let me check the time."
    async with httpx.AsyncClient() as client:
        assert weather_tool(OpenMeteo(client)).spec.fixed_announcement() == "Let me check the weather."
