"""The cascade planner's paths on a scripted engine: streamed replies, calls, fallbacks."""

from __future__ import annotations

import asyncio
import json

import pytest

from model.base import Message, PlanEvent, PlanRequest, TextDelta, ToolCallEvent, ToolSpecDict, Usage
from model.cascade import FORCED_PREFIX, NO_ANSWER, REPLY_PREFIX, CascadePlanner
from model.testing import ScriptedEngine
from model.toolcalls import JsonStringReader

CLOCK = ToolSpecDict(
    name="get_date_time",
    description="Current time in a place.",
    parameters={"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)


def _plan(engine: ScriptedEngine, messages: list[Message], tools: list[ToolSpecDict] | None = None) -> list[PlanEvent]:
    planner = CascadePlanner(engine)

    async def collect() -> list[PlanEvent]:
        request = PlanRequest(messages=messages, tools=[CLOCK] if tools is None else tools)
        return [event async for event in planner.plan(request)]

    events = asyncio.run(collect())
    assert isinstance(events[-1], Usage)
    return events[:-1]


def _said(events: list[PlanEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


USER = [Message(role="user", content="Hello there!")]


def test_a_reply_streams_as_it_is_written_and_generation_stops_at_its_end() -> None:
    answer = 'Hello! I\'m \\"Vox\\".\\nHow can I help? \\u00e9t\\u00e9'
    engine = ScriptedEngine([f'reply", "arguments": {{"text": "{answer}"}}}}\n</tool_call> trailing'])
    events = _plan(engine, USER)
    assert all(isinstance(e, TextDelta) for e in events) and len(events) > 5
    assert _said(events) == json.loads(f'"{answer}"')
    assert engine.prompts[0]["prefix"] == FORCED_PREFIX
    assert not engine.streamed[0].endswith("trailing")  # closed once the reply's string ended


def test_a_tool_call_is_parsed_after_the_whole_call() -> None:
    engine = ScriptedEngine(['get_date_time", "arguments": {"timezone": "Asia/Tokyo"}}\n</tool_call>'])
    [event] = _plan(engine, [Message(role="user", content="Time in Tokyo?")])
    assert isinstance(event, ToolCallEvent)
    assert (event.call["name"], event.call["arguments"]) == ("get_date_time", {"timezone": "Asia/Tokyo"})
    assert [t["function"]["name"] for t in engine.prompts[0]["tools"]] == ["get_date_time", "reply"]


@pytest.mark.parametrize(
    "choice",
    ['teleport", "arguments": {}}</tool_call>', 'reply", "arguments": {"text": ""}}</tool_call>', "!!!"],
    ids=["unknown-tool", "empty-reply", "garbage"],
)
def test_an_unusable_choice_falls_back_to_a_plain_answer(choice: str) -> None:
    engine = ScriptedEngine([choice, "Hi, nice to meet you."])
    events = _plan(engine, USER)
    assert _said(events) == "Hi, nice to meet you." and not any(isinstance(e, ToolCallEvent) for e in events)
    assert engine.prompts[1]["prefix"] == "" and engine.prompts[1]["messages"] == engine.prompts[0]["messages"]
    assert engine.prompts[1]["tools"] == engine.prompts[0]["tools"]  # one system block for every step


def test_nothing_at_all_still_answers() -> None:
    assert _said(_plan(ScriptedEngine(["", ""]), USER)) == NO_ANSWER


def _after_tool(question: str, tool: str, result: str) -> list[Message]:
    """A question, a call of `tool` (no arguments) and its result: the history an answer step sees."""
    return [
        Message(role="user", content=question),
        Message(role="assistant", content="", tool_calls=[{"id": "c1", "name": tool, "arguments": {}}]),
        Message(role="tool", tool_call_id="c1", name=tool, content=result),
    ]


def test_after_a_tool_result_it_answers_in_plain_text_and_is_asked_to_cite() -> None:
    history = _after_tool("What is the wifi password?", "knowledge_search", "[1] (notes.md) It is tulip-42.")
    engine = ScriptedEngine(["The password is tulip-42 [1]."])
    assert _said(_plan(engine, history)) == "The password is tulip-42 [1]."
    prompt = engine.prompts[0]
    assert prompt["prefix"] == ""
    assert [t["function"]["name"] for t in prompt["tools"]] == ["get_date_time", "reply"]
    assert "[1]" in prompt["messages"][-1]["content"] and "bracket" in prompt["messages"][0]["content"].lower()


def test_a_call_written_into_the_plain_answer_is_not_spoken() -> None:
    history = _after_tool("Time in Tokyo?", "get_date_time", "It is noon in Tokyo.")
    engine = ScriptedEngine(['It is noon. <tool_call>\n{"name": "get_date_time", "arguments": {}}\n</tool_call>'])
    assert _said(_plan(engine, history)).strip() == "It is noon."


def test_with_no_tools_on_offer_it_must_reply() -> None:
    engine = ScriptedEngine(["Four."])
    assert _said(_plan(engine, [Message(role="user", content="2+2?")], tools=[])) == "Four."
    assert engine.prompts[0]["prefix"] == REPLY_PREFIX


def test_earlier_answers_are_shown_as_they_were_written() -> None:
    clock = [{"id": "c1", "name": "get_date_time", "arguments": {"timezone": "UTC"}}]
    history = [
        Message(role="user", content="Hi!"),
        Message(role="assistant", content="Hello."),
        Message(role="user", content="Time in London?"),
        Message(role="assistant", content="", tool_calls=clock),  # type: ignore[typeddict-item]
        Message(role="tool", tool_call_id="c1", name="get_date_time", content="It is noon."),
        Message(role="assistant", content="Noon."),
        Message(role="user", content="Time in Tokyo?"),
    ]
    engine = ScriptedEngine(['get_date_time", "arguments": {"timezone": "Asia/Tokyo"}}\n</tool_call>'])
    _plan(engine, history)
    shown = engine.prompts[0]["messages"]
    assert shown[2]["tool_calls"] == [{"name": "reply", "arguments": {"text": "Hello."}}] and shown[2]["content"] == ""
    assert shown[6] == {"role": "assistant", "content": "Noon."}  # after a tool result: plain text


@pytest.mark.parametrize("literal", ["plain", 'say \\"hi\\"\\n\\tok\\\\', "caf\\u00e9 \\ud83d\\ude00 x", ""])
def test_json_string_reader_decodes_whatever_the_split(literal: str) -> None:
    expected = "".join(c for c in json.loads(f'"{literal}"') if not 0xD800 <= ord(c) <= 0xDFFF and ord(c) < 0x10000)
    encoded = f'{literal}"}} tail'
    for cut in range(len(encoded) + 1):
        for size in (1, 2, 5):
            reader = JsonStringReader()
            head, rest = encoded[:cut], encoded[cut:]
            pieces = [head] + [rest[i : i + size] for i in range(0, len(rest), size)]
            assert "".join(reader.feed(p) for p in pieces) == expected and reader.done
