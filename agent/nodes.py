"""The graph's nodes: plain functions (state, runtime) -> partial update, and the router.

Dependencies come from `runtime.context` (a TurnContext); audio and text deltas go out
through `runtime.stream_writer` as they happen, never into the checkpointed state.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from typing import Any, Literal

from langgraph.runtime import Runtime
from opentelemetry.trace import Span

from agent.compaction import compact
from agent.context import TurnContext
from agent.state import AgentState, Replace
from agent.tracing import (
    ANSWER,
    ASR_MODEL,
    AUDIO_IN_S,
    CACHED_TOKENS,
    FINISH_REASONS,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    PLAN_ROUND,
    PLAN_TOOL_CALLS,
    PREFILLED_TOKENS,
    PROVIDER,
    QUEUE_MS,
    REQUEST_MODEL,
    TOOL_ARGUMENTS,
    TOOL_ATTEMPTS,
    TOOL_CALL_ID,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    TOOL_OWNER,
    TOOL_RESULT,
    TOOL_STATUS,
    TOOL_TYPE,
    TRANSCRIPT,
    as_json,
    planner_model,
)
from model.audio import SAMPLE_RATE, encode_wav
from model.base import (
    AudioPart,
    Message,
    PlanRequest,
    SpeechChunk,
    SpeechTokens,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallEvent,
    ToolChosen,
    Usage,
    message_text,
)
from model.errors import InputError, PlannerError
from tools.base import CITATION_MARKER, Citation
from tools.runtime import ToolOutcome, execute_calls

__all__ = ["act", "listen", "plan", "route_after_plan", "speak"]

NO_SPEECH = "no speech was found in the audio"
NO_ANSWER = "Sorry, I don't have an answer to that."


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _add_time(state: AgentState, stage: str, ms: float) -> dict[str, float]:
    timings = dict(state.get("timings_ms") or {})
    timings[stage] = round(timings.get(stage, 0.0) + ms, 1)
    return timings


async def _hear(ctx: TurnContext, span: Span) -> tuple[str, str | list[TextPart | AudioPart]]:
    """The transcript and the user message's content; `span` is the listen span."""
    deps = ctx.deps
    if ctx.audio is None:
        transcript = (ctx.text or "").strip()
        return transcript, transcript
    audio = await asyncio.to_thread(deps.vad.trim, ctx.audio) if deps.vad else ctx.audio
    if audio.size == 0:
        raise InputError(NO_SPEECH)
    if deps.planner.speech_native:
        wav = base64.b64encode(encode_wav(audio, SAMPLE_RATE)).decode("ascii")
        return "", [AudioPart(type="input_audio", data=wav)]
    if deps.asr is None:
        raise PlannerError("the planner needs text, and no speech recognizer is configured")
    attributes = {ASR_MODEL: deps.asr.name, AUDIO_IN_S: round(audio.size / SAMPLE_RATE, 3)}
    with ctx.trace.span("asr", attributes, parent=span):
        transcript = (await asyncio.to_thread(deps.asr.transcribe, audio)).strip()
    if not transcript:
        raise InputError(NO_SPEECH)
    return transcript, transcript


async def listen(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Turn the input into a user message: trim silence, transcribe unless the planner hears."""
    ctx = runtime.context
    deps = ctx.deps
    started = time.perf_counter()
    with ctx.trace.span("listen") as span:
        transcript, content = await _hear(ctx, span)
        if ctx.trace.capture_content:
            span.set_attribute(TRANSCRIPT, transcript)
    runtime.stream_writer({"type": "transcript", "text": transcript})
    added: list[Message | Replace] = [Message(role="user", content=content)]
    if deps.max_stored_turns is not None:
        kept = compact(state.get("messages") or [], full_turns=deps.history_turns, max_turns=deps.max_stored_turns)
        if kept is not None:
            added.insert(0, Replace(replace=kept))
    update: dict[str, Any] = {
        "messages": added,
        "turn": (state.get("turn") or 0) + 1,
        "transcript": transcript,
        "timings_ms": _add_time(state, "asr", _ms(started)) if ctx.audio is not None else state["timings_ms"],
    }
    if ctx.voice is not None:  # the request chose a voice: "" is back to the default
        update["voice"] = ctx.voice or None
    return update


def _recent(messages: list[Message], earlier_turns: int, turn: int) -> list[Message]:
    """This turn (the `turn`-th) and the earlier turns the planner sees, cut at a user message so
    no tool result loses its call.

    At most `earlier_turns` are shown, and the oldest go half a window at a time, not one per
    turn: a planner that keeps its KV cache then re-reads the conversation once every few
    turns instead of every turn. The window is counted from the session's first turn, so
    turns dropped from storage (compaction) do not move it.
    """
    earlier = turn - 1
    step = max(1, (earlier_turns + 1) // 2)
    dropped = ((earlier - earlier_turns - 1) // step + 1) * step if earlier > earlier_turns else 0
    shown = earlier - dropped
    starts = [i for i, message in enumerate(messages) if message["role"] == "user"]
    return messages if len(starts) <= shown + 1 else messages[starts[-(shown + 1)] :]


async def plan(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Ask the planner for the next step: tool calls, or the answer (and maybe its speech)."""
    ctx = runtime.context
    deps = ctx.deps
    started = time.perf_counter()
    can_call = state["rounds"] < deps.max_tool_rounds
    request = PlanRequest(
        messages=_recent(state["messages"], deps.history_turns, state["turn"]),
        tools=ctx.tools.declarations(),
        speak=ctx.speak,
        voice=state.get("voice"),
        tool_choice="auto" if can_call else "none",
    )
    text: list[str] = []
    calls: list[ToolCall] = []
    speech_tokens: list[int] = []
    spoke = announced = False
    # A speech-native planner's text is spoken by the planner itself (or, failing that, by
    # the speak node once the step is over); a cascade's text is spoken as it streams.
    speaker = ctx.speaker if not deps.planner.speech_native else None
    speaking_before = ctx.speaker.busy_ms if ctx.speaker else 0.0
    usage: Usage | None = None
    provider, model = planner_model(deps.planner.name)
    attributes = {OPERATION: "chat", PROVIDER: provider, REQUEST_MODEL: model, PLAN_ROUND: state["rounds"] + 1}
    with ctx.trace.span("plan", attributes) as span:
        async for event in deps.planner.plan(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
                runtime.stream_writer({"type": "text", "text": event.text})
                if speaker:
                    await speaker.feed(event.text, state.get("voice"), runtime.stream_writer)
            elif isinstance(event, ToolChosen) and can_call and not (text or calls or announced):
                announced = await _announce(ctx, state, runtime, event.name, None)
            elif isinstance(event, ToolCallEvent) and can_call:
                calls.append(event.call)
                runtime.stream_writer({"type": "tool_call", "call": event.call})
            elif isinstance(event, SpeechChunk) and ctx.speak:
                spoke = True
                runtime.stream_writer({"type": "audio", "audio": event.audio, "sample_rate": event.sample_rate})
            elif isinstance(event, SpeechTokens):
                speech_tokens.extend(event.tokens)
            elif isinstance(event, Usage):
                usage = event
        answer = "".join(text).strip()
        span.set_attributes(_plan_attributes(ctx, usage, calls, answer))
    message = Message(role="assistant", content=answer)
    if calls:
        message["tool_calls"] = calls
    if speech_tokens:  # the model hears its own speech in later steps (Step-Audio 2's history)
        message["speech_tokens"] = speech_tokens
    if calls and answer and not spoke and ctx.speaker:
        # The line it says before a call ("Let me check.") is heard while the tool runs.
        if deps.planner.speech_native:  # a cascade's text was fed as it streamed
            await ctx.speaker.feed(answer, state.get("voice"), runtime.stream_writer)
        await ctx.speaker.flush(state.get("voice"), runtime.stream_writer)
    speaking_ms = ctx.speaker.busy_ms - speaking_before if ctx.speaker else 0.0  # counted under "speak"
    update: dict[str, Any] = {
        "messages": [message],
        "pending": calls,
        "spoke": spoke or announced,
        "timings_ms": _add_time(state, "plan", _ms(started) - speaking_ms),
    }
    if not calls:
        update["answer"] = answer or NO_ANSWER
    return update


def _plan_attributes(ctx: TurnContext, usage: Usage | None, calls: list[ToolCall], answer: str) -> dict[str, Any]:
    """What a planning step ended with: why it stopped, its tokens, the tools it called."""
    attributes: dict[str, Any] = {FINISH_REASONS: ("tool_calls",) if calls else ("stop",)}
    if usage is not None:
        attributes[INPUT_TOKENS] = usage.prompt_tokens
        attributes[OUTPUT_TOKENS] = usage.completion_tokens
        attributes[CACHED_TOKENS] = usage.reused_tokens
        attributes[PREFILLED_TOKENS] = usage.prefilled_tokens
        attributes[QUEUE_MS] = round(usage.queue_ms, 1)
    if calls:
        attributes[PLAN_TOOL_CALLS] = tuple(call["name"] for call in calls)
    if answer and calls and ctx.trace.capture_content:  # what it said before calling (the answer is the turn's)
        attributes[ANSWER] = answer
    return attributes


def route_after_plan(state: AgentState) -> Literal["act", "speak"]:
    return "act" if state["pending"] else "speak"


def _renumber(content: str, citations: list[Citation], first: int) -> tuple[str, list[Citation]]:
    """Give a result's citations turn-wide numbers, rewriting its [n] markers to match."""
    mapping = {c["id"]: str(first + i) for i, c in enumerate(citations)}
    renumbered = [Citation(**{**c, "id": mapping[c["id"]]}) for c in citations]
    text = CITATION_MARKER.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", content)
    return text, renumbered


async def act(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Run the pending calls concurrently; their results become tool messages."""
    ctx = runtime.context
    started = time.perf_counter()
    outcomes, _ = await asyncio.gather(
        execute_calls(state["pending"], ctx.tools, ctx.tool_context(), max_concurrency=ctx.deps.max_tool_concurrency),
        _announce_calls(state, runtime),
    )
    citations = list(state["citations"])
    messages: list[Message] = []
    voice = state.get("voice")
    for outcome in outcomes:
        content, numbered = _renumber(outcome.result.content, outcome.result.citations, len(citations) + 1)
        citations.extend(numbered)
        voice = outcome.result.state.get("voice", voice)
        messages.append(
            Message(role="tool", content=content, tool_call_id=outcome.call["id"], name=outcome.call["name"])
        )
        runtime.stream_writer({"type": "tool_result", "record": outcome.record})
        _trace_call(ctx, outcome, content)
    return {
        "messages": messages,
        "pending": [],
        "rounds": state["rounds"] + 1,
        "tool_calls": [*state["tool_calls"], *(o.record for o in outcomes)],
        "citations": citations,
        "voice": voice,
        "timings_ms": _add_time(state, "act", _ms(started)),
    }


async def _announce_calls(state: AgentState, runtime: Runtime[TurnContext]) -> None:
    """Say what is being done while the calls run, so the user hears something within a second.

    Only the first call's line is said, and nothing when the planner already spoke before
    calling (a speech-native planner's "Let me check.", or the line the plan step said as
    soon as the tool was chosen). A line says what is done, never a result, so it can never
    claim what the tools have not found.
    """
    calls = state["pending"]
    said_before = bool(state["messages"] and message_text(state["messages"][-1]).strip())
    if calls and not (said_before or state["spoke"]):
        await _announce(runtime.context, state, runtime, calls[0]["name"], calls[0]["arguments"])


async def _announce(
    ctx: TurnContext,
    state: AgentState,
    runtime: Runtime[TurnContext],
    name: str,
    arguments: Mapping[str, Any] | None,
) -> bool:
    """Say tool `name`'s line; with `arguments` None (not written yet), only a line that needs
    none. Whether a line was said."""
    tool, speaker = ctx.tools.get(name), ctx.speaker
    if not (ctx.deps.announce_tools and ctx.speak and speaker and tool):
        return False
    line = tool.spec.announcement(arguments) if arguments is not None else tool.spec.fixed_announcement()
    if not line:
        return False
    await speaker.say(line, state.get("voice"), runtime.stream_writer)
    return True


def _trace_call(ctx: TurnContext, outcome: ToolOutcome, content: str) -> None:
    """The call's execute_tool span, from the times the runtime measured."""
    record, tool = outcome.record, ctx.tools.get(outcome.call["name"])
    attributes = {
        OPERATION: "execute_tool",
        TOOL_NAME: record["name"],
        TOOL_CALL_ID: record["id"],
        TOOL_TYPE: "function",
        TOOL_DESCRIPTION: tool.spec.description if tool else None,
        TOOL_ARGUMENTS: ctx.trace.content(as_json(record["arguments"])),
        TOOL_RESULT: ctx.trace.content(content),
        TOOL_STATUS: record["status"],
        TOOL_ATTEMPTS: record["attempts"],
        TOOL_OWNER: "service" if ctx.deps.registry.get(record["name"]) else "tenant",
    }
    failed = record["status"] != "ok"
    ctx.trace.record(
        f"execute_tool {record['name']}",
        outcome.started_ns,
        outcome.ended_ns,
        attributes,
        error_type=record["status"] if failed else None,
        error_message=record["error"] or "",
    )


async def speak(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Finish speaking the answer (most of it may already be spoken as it streamed in)."""
    ctx = runtime.context
    speaker = ctx.speaker
    if not ctx.speak or state["spoke"] or speaker is None:
        return {}
    voice = state.get("voice")
    if not speaker.fed or ctx.deps.planner.speech_native:  # e.g. the fallback answer, never streamed
        await speaker.feed(state["answer"], voice, runtime.stream_writer)
    await speaker.flush(voice, runtime.stream_writer)
    timings = dict(state["timings_ms"])
    timings["speak"] = round(speaker.busy_ms, 1)
    return {"timings_ms": timings}
