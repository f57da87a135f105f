"""A turn's trace: the span tree, its GenAI attribute names, truncation, failures, and processors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes

from agent import tracing
from agent.context import AgentDeps
from agent.memory import InMemoryBackend, open_memory
from agent.runner import TurnRequest, TurnRunner
from agent.session_service import SessionService
from agent.tracing import Tracing, iter_spans
from model.asr import RelistenASR
from model.base import PlanRequest, SpeechRecognizer, Transcript
from model.testing import RecordingSynthesizer, ScriptedPlanner, Step, call, reply
from tools.base import Tool, ToolContext, ToolResult, ToolSpec
from tools.builtin.date_time import date_time_tool
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

ANSWER = "It is noon in Tokyo. Have a nice day."


class FixedASR(SpeechRecognizer):
    name = "fixed-asr"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return "What time is it in Tokyo?"


async def _failing(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
    raise RuntimeError("the backend is down")


FAILING = Tool(ToolSpec("broken", "Always fails.", {"type": "object", "properties": {}}), _failing)


def _agent(planner: ScriptedPlanner, tracer: Tracing | None = None, **deps: Any) -> TurnRunner:
    registry = ToolRegistry([date_time_tool(), FAILING])
    built = AgentDeps(planner=planner, registry=registry, tts=RecordingSynthesizer(), **deps)
    return TurnRunner(built, InMemoryBackend(), tracing=tracer)


def _named(trace: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [span for span in iter_spans(trace["root"]) if span["name"] == name]


async def _one_trace(agent: TurnRunner, request: TurnRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    output = await agent.run_turn(request)
    traces = await SessionService(agent.memory).traces(request.tenant, request.session_id)
    assert traces is not None
    return dict(output.result), traces[-1]


async def test_a_tool_turn_is_one_tree_in_genai_terms() -> None:
    planner = ScriptedPlanner([call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER)], name="cascade:qwen")
    result, trace = await _one_trace(_agent(planner), TurnRequest("s1", text="What time is it in Tokyo?"))
    root = trace["root"]
    assert trace["trace_id"] == result["trace_id"] and len(trace["trace_id"]) == 32
    assert trace["turn"] == 1 and trace["status"] == "ok" and root["name"] == "turn"
    names = [c["name"] for c in root["children"]]  # speak starts with the line said while the tool runs
    assert [n for n in names if n != "speak"] == ["listen", "plan", "execute_tool get_date_time", "plan"]
    assert names.count("speak") == 1
    expected = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.conversation.id": "s1",
        "gen_ai.provider.name": "cascade",
        "gen_ai.request.model": "qwen",
        "voicegraph.input.modality": "text",
    }
    assert {key: root["attributes"].get(key) for key in expected} == expected
    assert root["attributes"]["voicegraph.time_to_first_audio_ms"] == result["timings_ms"]["first_audio"]
    # the line said while the tool ran, the first phrase and the two sentences' rest, 0.1 s each
    assert root["attributes"]["voicegraph.audio.output_seconds"] == pytest.approx(0.4)
    tool = _named(trace, "execute_tool get_date_time")[0]
    attributes = tool["attributes"]
    assert attributes["gen_ai.operation.name"] == "execute_tool" and attributes["gen_ai.tool.name"] == "get_date_time"
    assert attributes["gen_ai.tool.call.id"] == result["tool_calls"][0]["id"]
    assert json.loads(attributes["gen_ai.tool.call.arguments"]) == {"timezone": "Asia/Tokyo"}
    assert "Tokyo" in attributes["gen_ai.tool.call.result"] and "error.type" not in attributes
    plans = _named(trace, "plan")
    assert [p["attributes"]["gen_ai.operation.name"] for p in plans] == ["chat", "chat"]
    assert plans[0]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert plans[1]["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    for span in iter_spans(root):  # every span lies within its turn
        assert span["start_ms"] >= 0 and span["start_ms"] + span["duration_ms"] <= root["duration_ms"] + 0.2


async def test_speech_overlaps_the_streaming_plan_and_is_told_sentence_by_sentence() -> None:
    planner = ScriptedPlanner([reply(ANSWER)], seconds_per_word=0.05)
    _, trace = await _one_trace(_agent(planner), TurnRequest("s", text="Hi"))
    plan, speak = _named(trace, "plan")[0], _named(trace, "speak")[0]
    assert speak["start_ms"] < plan["start_ms"] + plan["duration_ms"]  # the first sentence is spoken mid-stream
    said = [s["attributes"]["voicegraph.tts.text"] for s in speak["children"]]
    assert said == ["It is noon", "in Tokyo.", "Have a nice day."]  # the first phrase on its own


async def test_an_audio_turn_has_an_asr_span_under_listen() -> None:
    planner = ScriptedPlanner([reply("Noon.")])
    audio = np.zeros(24000, np.float32)
    agent = _agent(planner, asr=FixedASR())
    _, trace = await _one_trace(agent, TurnRequest("s", audio=audio))
    listen = _named(trace, "listen")[0]
    assert listen["attributes"]["voicegraph.transcript"] == "What time is it in Tokyo?"
    assert [c["name"] for c in listen["children"]] == ["asr"]
    asr = listen["children"][0]["attributes"]
    assert asr["voicegraph.asr.model"] == asr["voicegraph.asr.heard_by"] == "fixed-asr"
    assert asr["voicegraph.asr.relistened"] is False and "voicegraph.asr.logprob" not in asr
    assert trace["root"]["attributes"]["voicegraph.audio.input_seconds"] == pytest.approx(1.5)
    assert trace["root"]["attributes"]["voicegraph.input.modality"] == "audio"


class _Said(SpeechRecognizer):
    def __init__(self, heard: Transcript) -> None:
        self.name, self.heard = heard.by, heard

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return self.heard.text

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        return self.heard


async def test_a_question_heard_again_says_so_and_by_which_model() -> None:
    unsure = _Said(Transcript("What time is it in our slow?", -0.66, 9, "faster-whisper:tiny.en"))
    surer = _Said(Transcript("What time is it in Oslo?", -0.21, 8, "faster-whisper:base"))
    agent = _agent(ScriptedPlanner([reply("Noon.")]), asr=RelistenASR(unsure, surer))  # type: ignore[arg-type]
    _, trace = await _one_trace(agent, TurnRequest("s", audio=np.zeros(24000, np.float32)))
    listen = _named(trace, "listen")[0]
    assert listen["attributes"]["voicegraph.transcript"] == "What time is it in Oslo?"
    asr = listen["children"][0]["attributes"]
    assert asr["voicegraph.asr.model"] == "faster-whisper:tiny.en+base"
    assert asr["voicegraph.asr.heard_by"] == "faster-whisper:base" and asr["voicegraph.asr.relistened"] is True
    assert asr["voicegraph.asr.logprob"] == -0.21


async def test_a_failed_tool_call_is_an_error_span_and_the_turn_goes_on() -> None:
    planner = ScriptedPlanner([call("broken"), reply("Sorry, that failed.")])
    result, trace = await _one_trace(_agent(planner), TurnRequest("s", text="Break it"))
    span = _named(trace, "execute_tool broken")[0]
    assert span["status"] == "error" and span["attributes"]["error.type"] == "error"
    assert "the backend is down" in span["error"] and trace["status"] == "ok"
    assert result["tool_calls"][0]["status"] == "error"


async def test_a_failed_turn_keeps_its_trace_and_leaves_the_session_as_it_was() -> None:
    def explode(request: PlanRequest) -> Step:
        raise RuntimeError("the planner crashed")

    agent = _agent(ScriptedPlanner([reply("First."), explode]))
    await agent.run_turn(TurnRequest("s", text="one", speak=False))
    with pytest.raises(RuntimeError):
        await agent.run_turn(TurnRequest("s", text="two", speak=False))
    traces = await SessionService(agent.memory).traces("local", "s")
    assert traces is not None and [t["status"] for t in traces] == ["ok", "error"]
    failed = traces[1]
    assert failed["turn"] == 2 and failed["root"]["attributes"]["error.type"] == "RuntimeError"
    assert "the planner crashed" in (failed["error"] or "")
    assert _named(failed, "plan")[0]["attributes"]["error.type"] == "RuntimeError"
    assert (await agent.history("local", "s")).values["turn"] == 1  # rolled back


async def test_long_values_are_cut_and_content_can_be_left_out() -> None:
    steps = [call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER)]
    cut = Tracing(max_attribute_chars=24)
    _, trace = await _one_trace(_agent(ScriptedPlanner(steps), cut), TurnRequest("s", text="Tokyo time?"))
    result = _named(trace, "execute_tool get_date_time")[0]["attributes"]["gen_ai.tool.call.result"]
    assert len(result) == 24
    bare = Tracing(capture_content=False)
    _, trace = await _one_trace(_agent(ScriptedPlanner(steps), bare), TurnRequest("s", text="Tokyo time?"))
    kept = {key for span in iter_spans(trace["root"]) for key in span["attributes"]}
    content = {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "voicegraph.transcript", "voicegraph.answer"}
    assert not kept & content and "gen_ai.tool.name" in kept and "voicegraph.tts.text" not in kept


async def test_processors_see_the_same_spans_as_the_store() -> None:
    exporter = InMemorySpanExporter()
    tracer = Tracing(processors=[SimpleSpanProcessor(exporter)])
    steps = [call("get_date_time", timezone="Asia/Tokyo"), reply(ANSWER)]
    _, trace = await _one_trace(_agent(ScriptedPlanner(steps), tracer), TurnRequest("s", text="Tokyo?"))
    exported = exporter.get_finished_spans()
    stored = {span["span_id"] for span in iter_spans(trace["root"])}
    assert {f"{s.context.span_id:016x}" for s in exported if s.context} == stored
    assert {f"{s.context.trace_id:032x}" for s in exported if s.context} == {trace["trace_id"]}
    assert all(s.resource.attributes["service.name"] == "voicegraph" for s in exported)


async def test_traces_live_and_die_with_their_session(tmp_path: Any) -> None:
    async with open_memory("sqlite", tmp_path / "m.sqlite") as memory:
        agent = TurnRunner(AgentDeps(planner=ScriptedPlanner(), registry=ToolRegistry([])), memory)
        await agent.run_turn(TurnRequest("s", text="hello", speak=False, tenant="a"))
        assert await SessionService(agent.memory).traces("b", "s") is None  # another tenant's session is not there
        assert await SessionService(agent.memory).traces("a", "nope") is None
        assert len(await SessionService(agent.memory).traces("a", "s") or []) == 1
        assert await SessionService(agent.memory).delete_session("a", "s") is True
        assert await SessionService(agent.memory).traces("a", "s") is None


def test_attribute_names_are_the_conventions_own() -> None:
    """Dashboards are built on these names: they follow the GenAI conventions and do not drift."""
    ours = {
        tracing.OPERATION: gen_ai.GEN_AI_OPERATION_NAME,
        tracing.PROVIDER: gen_ai.GEN_AI_PROVIDER_NAME,
        tracing.REQUEST_MODEL: gen_ai.GEN_AI_REQUEST_MODEL,
        tracing.AGENT: gen_ai.GEN_AI_AGENT_NAME,
        tracing.CONVERSATION: gen_ai.GEN_AI_CONVERSATION_ID,
        tracing.INPUT_TOKENS: gen_ai.GEN_AI_USAGE_INPUT_TOKENS,
        tracing.OUTPUT_TOKENS: gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
        tracing.CACHED_TOKENS: gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        tracing.FINISH_REASONS: gen_ai.GEN_AI_RESPONSE_FINISH_REASONS,
        tracing.TOOL_NAME: gen_ai.GEN_AI_TOOL_NAME,
        tracing.TOOL_CALL_ID: gen_ai.GEN_AI_TOOL_CALL_ID,
        tracing.TOOL_TYPE: gen_ai.GEN_AI_TOOL_TYPE,
        tracing.TOOL_DESCRIPTION: gen_ai.GEN_AI_TOOL_DESCRIPTION,
        tracing.TOOL_ARGUMENTS: gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS,
        tracing.TOOL_RESULT: gen_ai.GEN_AI_TOOL_CALL_RESULT,
        tracing.ERROR_TYPE: error_attributes.ERROR_TYPE,
    }
    assert all(mine == theirs for mine, theirs in ours.items()), ours
    assert sorted(ours) == [
        "error.type",
        "gen_ai.agent.name",
        "gen_ai.conversation.id",
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.finish_reasons",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.result",
        "gen_ai.tool.description",
        "gen_ai.tool.name",
        "gen_ai.tool.type",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    ]


def test_concurrent_turns_of_two_sessions_keep_their_spans_apart() -> None:
    async def run() -> list[dict[str, Any]]:
        agent = _agent(ScriptedPlanner([reply("One."), reply("Two.")]))
        await asyncio.gather(
            agent.run_turn(TurnRequest("a", text="x", speak=False)),
            agent.run_turn(TurnRequest("b", text="y", speak=False)),
        )
        return [(await SessionService(agent.memory).traces("local", s) or [])[0] for s in ("a", "b")]

    first, second = asyncio.run(run())
    assert first["trace_id"] != second["trace_id"]
    for trace, session in ((first, "a"), (second, "b")):
        assert trace["root"]["attributes"]["gen_ai.conversation.id"] == session
        assert [c["name"] for c in trace["root"]["children"]] == ["listen", "plan"]


async def test_tenant_tools_are_marked_and_counted_under_one_label_on_metrics() -> None:
    from api.telemetry import TENANT_TOOL, Metrics

    async def weather(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(content="Sunny.")

    secret = Tool(ToolSpec("acme_weather_v2", "The weather.", {"type": "object", "properties": {}}), weather)
    metrics = Metrics()
    planner = ScriptedPlanner([call("acme_weather_v2"), call("get_date_time", timezone="UTC"), reply("Sunny.")])

    async def tenant_tools(tenant: str) -> list[Tool]:
        return [secret]

    deps = AgentDeps(planner=planner, registry=ToolRegistry([date_time_tool()]), tenant_tools=tenant_tools)
    agent = TurnRunner(deps, InMemoryBackend(), tracing=Tracing(processors=[metrics]))
    _, trace = await _one_trace(agent, TurnRequest("s", text="Weather?", speak=False, tenant="acme"))
    assert _named(trace, "execute_tool acme_weather_v2")[0]["attributes"]["voicegraph.tool.owner"] == "tenant"
    assert _named(trace, "execute_tool get_date_time")[0]["attributes"]["voicegraph.tool.owner"] == "service"
    text = metrics.exposition().decode()
    assert f'voicegraph_tool_calls_total{{status="ok",tool="{TENANT_TOOL}"}} 1.0' in text
    assert 'voicegraph_tool_calls_total{status="ok",tool="get_date_time"} 1.0' in text
    assert "acme_weather_v2" not in text
