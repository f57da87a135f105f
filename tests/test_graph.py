"""Orchestration of the graph with the scripted planner: routing, tools, limits, memory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from agent.context import AgentDeps
from agent.events import TurnDone
from agent.graph import build_graph
from agent.memory import InMemoryBackend, open_memory
from agent.runner import TurnRequest, TurnRunner
from agent.speech import SentenceBuffer
from model.base import PlanRequest
from model.errors import InputError, PlannerError
from model.testing import RecordingSynthesizer, ScriptedPlanner, Step, call, reply
from tools.base import GENERIC_ANNOUNCEMENT, Citation, Tool, ToolContext, ToolError, ToolResult, ToolSpec
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "graph.mmd"
OBJECT = {"type": "object"}


def _tool(name: str, handler: Any, parameters: dict[str, Any] | None = None, timeout_s: float = 5.0) -> Tool:
    return Tool(ToolSpec(name, f"the {name} tool", parameters or OBJECT, timeout_s), handler)


async def _echo(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
    return ToolResult(f"echo {arguments['word']}")


def _registry(*extra: Tool) -> ToolRegistry:
    schema = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}
    return ToolRegistry([_tool("echo", _echo, schema), *extra])


def _agent(
    planner: ScriptedPlanner,
    registry: ToolRegistry | None = None,
    rounds: int = 3,
    tts: RecordingSynthesizer | None = None,
) -> TurnRunner:
    deps = AgentDeps(planner=planner, registry=registry or _registry(), tts=tts, max_tool_rounds=rounds)
    return TurnRunner(deps, InMemoryBackend())


async def _ask(agent: TurnRunner, text: str, session: str = "s1") -> Any:
    return (await agent.run_turn(TurnRequest(session_id=session, text=text, speak=False))).result


def test_topology_snapshot() -> None:
    """A change in routing must show up in review: regenerate with VOICEGRAPH_UPDATE_SNAPSHOTS=1."""
    drawn = build_graph().get_graph().draw_mermaid()
    if os.environ.get("VOICEGRAPH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(drawn)
    assert drawn == SNAPSHOT.read_text()


async def test_answer_without_tools() -> None:
    planner = ScriptedPlanner([reply("Hello!")])
    result = await _ask(_agent(planner), "Hello there!")
    assert result["answer"] == "Hello!"
    assert result["tool_calls"] == []
    assert result["turn"] == 1
    assert result["transcript"] == "Hello there!"
    assert [t["name"] for t in planner.requests[0].tools] == ["echo"]


async def test_tool_result_goes_back_to_the_planner() -> None:
    planner = ScriptedPlanner([call("echo", word="ping"), reply("It said ping.")])
    result = await _ask(_agent(planner), "echo ping")
    assert result["answer"] == "It said ping."
    [record] = result["tool_calls"]
    assert (record["name"], record["arguments"], record["status"]) == ("echo", {"word": "ping"}, "ok")
    last = planner.requests[1].messages[-1]
    assert last["role"] == "tool" and last["content"] == "echo ping" and last["tool_call_id"] == record["id"]
    assert planner.requests[1].messages[-2]["tool_calls"][0]["name"] == "echo"
    assert result["timings_ms"]["act"] >= 0 and "total" in result["timings_ms"]


async def test_unknown_tool_is_an_error_message_listing_valid_tools() -> None:
    planner = ScriptedPlanner([call("teleport", to="Mars"), reply("I can't do that.")])
    result = await _ask(_agent(planner), "go to Mars")
    assert result["tool_calls"][0]["status"] == "unknown_tool"
    error = planner.requests[1].messages[-1]["content"]
    assert "teleport" in error and "echo" in error
    assert result["answer"] == "I can't do that."


async def test_invalid_arguments_are_reported_to_the_planner() -> None:
    planner = ScriptedPlanner([call("echo", wrd="x"), reply("fixed")])
    result = await _ask(_agent(planner), "echo")
    assert result["tool_calls"][0]["status"] == "invalid_arguments"
    assert "'word' is a required property" in planner.requests[1].messages[-1]["content"]


async def test_timeout_and_exception_become_error_results() -> None:
    async def slow(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        await asyncio.sleep(30)
        return ToolResult("never")

    async def broken(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        raise ToolError("the backend is down")

    registry = _registry(_tool("slow", slow, timeout_s=0.05), _tool("broken", broken))
    planner = ScriptedPlanner([Step(calls=(*call("slow").calls, *call("broken").calls)), reply("Both failed.")])
    result = await _ask(_agent(planner, registry), "try both")
    statuses = {r["name"]: r["status"] for r in result["tool_calls"]}
    assert statuses == {"slow": "timeout", "broken": "error"}
    contents = [m["content"] for m in planner.requests[1].messages[-2:]]
    assert "did not answer within 0.05 seconds" in contents[0]
    assert "the backend is down" in contents[1]


async def test_calls_of_one_step_run_concurrently() -> None:
    barrier = asyncio.Barrier(2)

    async def meet(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        await barrier.wait()  # only returns once both calls are running at the same time
        return ToolResult("met")

    registry = _registry(_tool("meet_a", meet, timeout_s=2), _tool("meet_b", meet, timeout_s=2))
    planner = ScriptedPlanner([Step(calls=(*call("meet_a").calls, *call("meet_b").calls)), reply("ok")])
    result = await _ask(_agent(planner, registry), "meet")
    assert [r["status"] for r in result["tool_calls"]] == ["ok", "ok"]


async def test_round_limit_stops_offering_tools() -> None:
    planner = ScriptedPlanner([call("echo", word="a"), call("echo", word="b"), call("echo", word="c")], fallback="done")
    result = await _ask(_agent(planner, rounds=2), "loop forever")
    assert len(result["tool_calls"]) == 2
    assert [len(r.callable_tools) for r in planner.requests] == [1, 1, 0]
    assert [r.tool_choice for r in planner.requests] == ["auto", "auto", "none"]
    assert [len(r.tools) for r in planner.requests] == [1, 1, 1]  # declared all along: the prompt stays the same
    assert result["answer"] == "done"


async def test_citations_are_numbered_across_the_turn() -> None:
    async def cite(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        source = arguments["word"]
        citation = Citation(id="1", source=f"{source}.md", title=source, snippet="...", doc_id=source)
        return ToolResult(f"[1] ({source}.md) a fact", citations=[citation])

    schema = {"type": "object", "properties": {"word": {"type": "string"}}}
    planner = ScriptedPlanner([Step(calls=(*call("cite", word="a").calls, *call("cite", word="b").calls)), reply("x")])
    result = await _ask(_agent(planner, _registry(_tool("cite", cite, schema))), "two sources")
    assert [(c["id"], c["source"]) for c in result["citations"]] == [("1", "a.md"), ("2", "b.md")]
    assert planner.requests[1].messages[-1]["content"].startswith("[2] (b.md)")


async def test_voice_set_by_a_tool_persists_across_turns() -> None:
    async def choose(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult("voice set", state={"voice": "deep-scottish"})

    planner = ScriptedPlanner([call("choose"), reply("Done."), reply("Still me.")])
    agent = _agent(planner, _registry(_tool("choose", choose)))
    assert (await _ask(agent, "deep voice please"))["voice"] == "deep-scottish"
    second = await _ask(agent, "and now?")
    assert second["voice"] == "deep-scottish" and planner.requests[2].voice == "deep-scottish"


async def test_history_reaches_the_planner_and_turns_count() -> None:
    planner = ScriptedPlanner([reply("Nice to meet you, Ada."), reply("Your name is Ada.")])
    agent = _agent(planner)
    await _ask(agent, "My name is Ada.")
    second = await _ask(agent, "What is my name?")
    assert second["turn"] == 2
    texts = [m["content"] for m in planner.requests[1].messages]
    assert texts == ["My name is Ada.", "Nice to meet you, Ada.", "What is my name?"]
    other = await _ask(agent, "Who am I?", session="s2")
    assert other["turn"] == 1 and len(planner.requests[2].messages) == 1


async def test_failed_turn_leaves_the_session_as_it_was() -> None:
    def explode(request: PlanRequest) -> Step:
        raise PlannerError("model crashed")

    planner = ScriptedPlanner([reply("first"), explode, reply("third")])
    agent = _agent(planner)
    await _ask(agent, "one")
    with pytest.raises(PlannerError):
        await _ask(agent, "two")
    result = await _ask(agent, "three")
    assert result["turn"] == 2
    assert [m["content"] for m in planner.requests[2].messages] == ["one", "first", "three"]


async def test_failed_first_turn_leaves_no_session() -> None:
    def explode(request: PlanRequest) -> Step:
        raise PlannerError("model crashed")

    agent = _agent(ScriptedPlanner([explode]))
    with pytest.raises(PlannerError):
        await _ask(agent, "hello", session="fresh")
    assert (await agent.history("local", "fresh")).values == {}


@pytest.mark.parametrize(
    ("session", "text", "message"),
    [("bad id!", "hi", "session id"), ("ok", "   ", "text is empty"), ("ok", "x" * 5000, "longer than")],
)
async def test_bad_input_is_rejected_before_anything_is_stored(session: str, text: str, message: str) -> None:
    planner = ScriptedPlanner([reply("never")])
    agent = _agent(planner)
    with pytest.raises(InputError, match=message):
        await _ask(agent, text, session=session)
    assert planner.requests == []


async def test_sqlite_memory_survives_a_new_agent(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    async with open_memory("sqlite", path) as saver:
        deps = AgentDeps(planner=ScriptedPlanner([reply("Hi Ada.")]), registry=_registry())
        await TurnRunner(deps, saver).run_turn(TurnRequest("s1", text="My name is Ada.", speak=False))
    planner = ScriptedPlanner([reply("Ada.")])
    async with open_memory("sqlite", path) as saver:
        result = (
            await TurnRunner(AgentDeps(planner, _registry()), saver).run_turn(TurnRequest("s1", text="Name?"))
        ).result
    assert result["turn"] == 2
    assert planner.requests[0].messages[0]["content"] == "My name is Ada."


async def test_answer_is_spoken_sentence_by_sentence_while_it_streams() -> None:
    tts = RecordingSynthesizer()
    answer = reply("First sentence here. Second one follows. Third.")
    agent = _agent(ScriptedPlanner([answer, answer], seconds_per_word=0.05), tts=tts)
    events = [e async for e in agent.stream_turn(TurnRequest("s1", text="talk"))]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Audio") < len(kinds) - 1 - kinds[::-1].index("AnswerText"), kinds
    assert isinstance(events[-1], TurnDone)
    assert [text for text, _ in tts.said] == ["First sentence here.", "Second one follows.", "Third."]
    output = await agent.run_turn(TurnRequest("s2", text="talk"))
    assert output.sample_rate == tts.sample_rate and output.audio.size == 3 * tts.sample_rate // 10
    assert output.result["timings_ms"]["speak"] >= 0 and "first_audio" in output.result["timings_ms"]


async def test_reply_is_spoken_in_the_voice_a_tool_chose_this_turn() -> None:
    async def choose(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult("voice set", state={"voice": "deep-scottish"})

    tts = RecordingSynthesizer()
    agent = _agent(ScriptedPlanner([call("choose"), reply("Och aye.")]), _registry(_tool("choose", choose)), tts=tts)
    await agent.run_turn(TurnRequest("s1", text="deep voice"))
    assert tts.said == [(GENERIC_ANNOUNCEMENT, None), ("Och aye.", "deep-scottish")]  # said while it ran, then


async def test_fallback_answer_is_spoken_and_unspoken_turns_stay_silent() -> None:
    tts = RecordingSynthesizer()
    agent = _agent(ScriptedPlanner([reply(""), reply("quiet")], fallback=""), tts=tts)
    output = await agent.run_turn(TurnRequest("s1", text="say nothing"))
    assert tts.said == [(output.result["answer"], None)] and output.result["answer"]
    silent = await agent.run_turn(TurnRequest("s2", text="text only", speak=False))
    assert silent.audio.size == 0 and len(tts.said) == 1


@pytest.mark.parametrize(
    ("pieces", "said"),
    [
        (
            ["In", " Tokyo", " now,", " it", " is", " 3:45", " PM.", " Enjoy."],
            ["In Tokyo now,", "it is 3:45 PM.", "Enjoy."],
        ),
        (["Sure,", " here", " it", " is."], ["Sure, here it is."]),  # one word is no clause of its own
        (["It", " costs", " 1,000", " euros."], ["It costs 1,000 euros."]),  # a comma inside a number
        (["Hello", " there,", " Ada.", " Well,", " hi."], ["Hello there,", "Ada.", "Well, hi."]),  # only the first
        # No comma: the first sentence is broken before its first phrase, once the phrase has begun.
        (["It", " is", " 7", ":", "15", " PM", " in", " Tokyo", " now", "."], ["It is 7:15 PM", "in Tokyo now."]),
        (
            ["The", " head", " chef", " at", " the", " Kettle", " is", " Marta", " [1]."],
            ["The head chef", "at the Kettle is Marta [1]."],
        ),
        (
            ["It", " was", " invented", " by", " Ada", "."],
            ["It was invented", "by Ada."],
        ),  # "in" is no word in "invented"
        (
            ["Me", " and", " you", ".", " Now", " and", " then", "."],
            ["Me and you.", "Now and then."],
        ),  # too few words
        (["Cats", " like", " it", " in", " here", ",", " really", "."], ["Cats like it", "in here, really."]),
        # Before the verb after a subject of three words or more; "isle" is no "is".
        (
            ["The", " time", " in", " Paris", " is", " 8", ":", "18", " AM", "."],
            ["The time in Paris", "is 8:18 AM."],
        ),
        (
            ["My", " old", " cat", " Tom", " was", " grey", "."],
            ["My old cat Tom", "was grey."],
        ),
        (
            ["Skye", " isle", " views", " were", " lovely", "."],
            ["Skye isle views", "were lovely."],
        ),
        (["It", " is", " ten", "."], ["It is ten."]),  # too few words before the verb
        (["Sorry,", " I", " don't", " have", " one", "."], ["Sorry, I don't have one."]),  # "have" is no break
    ],
)
def test_the_answers_first_clause_is_said_on_its_own(pieces: list[str], said: list[str]) -> None:
    buffer, out = SentenceBuffer(), []
    for piece in pieces:
        if done := buffer.add(piece):
            out.append(done)
    assert [*out, buffer.rest()] == said


@pytest.mark.parametrize(
    ("pieces", "said"),
    [
        (["Hello", "!"], "Hello!"),
        (["Why", " did", " the", " penguin", " cross", " the", " road", "?"], "Why did the penguin cross the road?"),
        (["Sure", "!?"], "Sure!?"),
    ],
)
def test_a_first_sentence_ending_in_a_bang_or_a_question_mark_is_said_as_it_is_written(
    pieces: list[str], said: str
) -> None:
    """Not once the next word has begun: that is one more token to wait for."""
    buffer = SentenceBuffer()
    assert [buffer.add(piece) for piece in pieces] == [""] * (len(pieces) - 1) + [said]
    assert buffer.add(" I") == "" and buffer.add(" am") == ""  # later sentences wait for the next to begin
    assert buffer.add(" fine.") == "" and buffer.add(" Thanks.") == "I am fine."


def test_a_full_stop_still_waits_for_the_next_word() -> None:
    buffer = SentenceBuffer()
    assert [buffer.add(piece) for piece in ["It", " is", " 3", "."]] == ["", "", "", ""]  # "3." of "3.5"
    assert buffer.add("5 metres.") == "" and buffer.rest() == "It is 3.5 metres."
