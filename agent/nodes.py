"""The graph's nodes: plain functions (state, runtime) -> partial update, and the router.

Dependencies come from `runtime.context` (a TurnContext); what a client may want as it
happens (agent/events.py) goes out through `runtime.stream_writer`, never into the
checkpointed state. The nodes only write text: the speech stage that reads their events
(agent/speech.py) says it, alongside them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.compaction import compact, recent
from agent.confirmation import held_outcome, needs_yes, question, user_answer
from agent.context import TurnContext
from agent.cues import with_cue
from agent.events import AnswerText, Audio, Heard, Line, NodeEvent, ToolCalled, ToolFinished
from agent.hearing import asked, cue_of, hear, last_words
from agent.state import AgentState, Replace
from agent.tracing import (
    ANSWER,
    CACHED_TOKENS,
    FINISH_REASONS,
    INPUT_MESSAGES,
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
from agent.vocabulary import claimed_by
from model.base import (
    Message,
    PlanRequest,
    SpeechChunk,
    SpeechTokens,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolChosen,
    Usage,
    message_text,
)
from model.errors import InputError
from model.voices import restyled
from tools.base import CITATION_MARKER, Citation, Vocabulary
from tools.runtime import ToolOutcome, execute_calls

__all__ = ["act", "listen", "plan", "route_after_act", "route_after_plan"]

NO_ANSWER = "Sorry, I don't have an answer to that."


def _write(runtime: Runtime[TurnContext], event: NodeEvent) -> None:
    runtime.stream_writer(event)


def _outputs(state: AgentState, outputs: tuple[tuple[str, str], ...]) -> list[Message | Replace]:
    """The client's outputs as tool messages, each for a call of the last step still waiting."""
    messages = state.get("messages") or []
    answered = {m.get("tool_call_id") for m in messages if m["role"] == "tool"}
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    waiting = {c["id"]: c["name"] for c in (last or {}).get("tool_calls") or [] if c["id"] not in answered}
    added: list[Message | Replace] = []
    for call_id, output in outputs:
        if call_id not in waiting:
            raise InputError(f"no call {call_id!r} is waiting for its output")
        added.append(Message(role="tool", content=output, tool_call_id=call_id, name=waiting.pop(call_id)))
    return added


async def listen(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Turn the input into a user message: trim silence, transcribe unless the planner hears.
    A client's tool outputs come in as tool messages instead."""
    ctx = runtime.context
    deps = ctx.deps
    if ctx.tool_outputs:  # not the user's words: no yes to calls held for one
        return {"messages": _outputs(state, ctx.tool_outputs), "turn": (state.get("turn") or 0) + 1, "held": []}
    measured: dict[str, Any] = {}

    def meanwhile(vocabulary: Vocabulary) -> None:  # the planner reads what it can while the words are heard
        turn = (state.get("turn") or 0) + 1
        messages = recent([*(state.get("messages") or []), Message(role="user", content="")], deps.history_turns, turn)
        request = PlanRequest(
            messages=messages[:-1], tools=ctx.declarations(), instructions=ctx.instructions, notes=vocabulary.note
        )
        deps.planner.prepare(request)

    with ctx.trace.span("listen") as span:
        transcript, content, measuring = await hear(ctx, span, last_words(state), meanwhile)
        if measuring is not None:
            cue, measured = cue_of(state, ctx, span, (await measuring).with_words(transcript))
            if isinstance(content, str):
                content = with_cue(content, cue)
        if ctx.trace.capture_content:
            span.set_attribute(TRANSCRIPT, transcript)
    _write(runtime, Heard(transcript))
    added: list[Message | Replace] = [Message(role="user", content=content)]
    if deps.max_stored_turns is not None:
        kept = compact(state.get("messages") or [], full_turns=deps.history_turns, max_turns=deps.max_stored_turns)
        if kept is not None:
            added.insert(0, Replace(replace=kept))
    answer = user_answer(state, transcript)
    added.extend(answer.pop("messages", []))
    for call in answer.get("pending", []):
        _write(runtime, ToolCalled(call))
    update: dict[str, Any] = {
        "messages": added,
        "turn": (state.get("turn") or 0) + 1,
        "transcript": transcript,
        **measured,
        **answer,
    }
    if ctx.voice is not None:  # the request chose a voice: "" is back to the default
        update["voice"] = ctx.voice or None
    return update


async def plan(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Ask the planner for the next step: tool calls, or the answer (and maybe its speech)."""
    ctx = runtime.context
    deps = ctx.deps
    can_call = state["rounds"] < deps.max_tool_rounds and ctx.tool_choice == "auto"
    voice = state.get("voice")
    said_in = _reply_voice(state)
    vocabulary = await ctx.vocabulary.get(ctx)
    request = PlanRequest(
        messages=recent(state["messages"], deps.history_turns, state["turn"]),
        tools=ctx.declarations(),
        speak=ctx.speak,
        voice=voice,
        tool_choice="auto" if can_call else "none",
        instructions=ctx.instructions,
        notes=vocabulary.note,
        unavailable=frozenset(vocabulary.idle),
        futile=functools.partial(ctx.futile, asked=asked(state)),
        claimed=claimed_by(vocabulary, last_words(state)) if can_call and not state["rounds"] else None,
        pace=ctx.first_audio.wait,
    )
    text: list[str] = []
    calls: list[ToolCall] = []
    speech_tokens: list[int] = []
    spoke = announced = False
    usage: Usage | None = None
    provider, model = planner_model(deps.planner.name)
    attributes = {OPERATION: "chat", PROVIDER: provider, REQUEST_MODEL: model, PLAN_ROUND: state["rounds"] + 1}
    if ctx.trace.capture_content and not deps.planner.speech_native:  # its messages carry the audio
        attributes[INPUT_MESSAGES] = as_json(_this_turn(request.messages))
    with ctx.trace.span("plan", attributes) as span:
        async for event in deps.planner.plan(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
                _write(runtime, AnswerText(event.text, said_in))
            elif isinstance(event, ToolChosen) and can_call and not (text or calls or announced):
                announced = _announce(ctx, said_in, runtime, event.name, None)
            elif isinstance(event, ToolCallEvent) and can_call:
                calls.append(event.call)
                _write(runtime, ToolCalled(event.call))
            elif isinstance(event, SpeechChunk) and ctx.speak:
                spoke = True
                _write(runtime, Audio(event.audio, event.sample_rate))
            elif isinstance(event, SpeechTokens):
                speech_tokens.extend(event.tokens)
            elif isinstance(event, Usage):
                usage = event
        answer = "".join(text).strip()
        span.set_attributes(_plan_attributes(ctx, usage, calls, answer))
    if not calls and not answer:
        answer = NO_ANSWER
        _write(runtime, AnswerText(answer, said_in))
    if deps.planner.speech_native and ctx.speak and answer and not spoke:
        # Its text is not spoken as it streams: its own line before a call ("Let me check.",
        # heard while the tool runs) or an answer it did not speak itself is said now.
        _write(runtime, Line(answer, said_in))
        spoke = True
    message = Message(role="assistant", content=answer)
    if calls:
        message["tool_calls"] = calls
    if speech_tokens:  # the model hears its own speech in later steps (Step-Audio 2's history)
        message["speech_tokens"] = speech_tokens
    update: dict[str, Any] = {"messages": [message], "pending": calls, "spoke": spoke or announced}
    if not calls:
        update["answer"] = answer
    return update


def _this_turn(messages: Sequence[Message]) -> Sequence[Message]:
    """The messages from the last user message on: what this turn added to the conversation."""
    starts = [i for i, message in enumerate(messages) if message["role"] == "user"]
    return messages[starts[-1] :] if starts else messages


def _reply_voice(state: AgentState) -> str | None:
    """The session voice, as this turn's reply says it: with the delivery its cue asked for."""
    voice = state.get("voice")
    delivery = (state.get("paralinguistics") or {}).get("delivery")
    return restyled(voice, delivery["pitch"], delivery["rate"]) if delivery else voice


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


async def route_after_plan(state: AgentState) -> Literal["act", "__end__"]:
    return "act" if state["pending"] else "__end__"


async def route_after_act(state: AgentState) -> Literal["plan", "__end__"]:
    """Back to planning with the results, unless a call waits for the client to run it or for the user's yes."""
    return "__end__" if state["awaiting"] or state.get("held") else "plan"


def _renumber(content: str, citations: list[Citation], first: int) -> tuple[str, list[Citation]]:
    """Give a result's citations turn-wide numbers, rewriting its [n] markers to match."""
    mapping = {c["id"]: str(first + i) for i, c in enumerate(citations)}
    renumbered = [Citation(**{**c, "id": mapping[c["id"]]}) for c in citations]
    text = CITATION_MARKER.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", content)
    return text, renumbered


async def act(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Run the pending calls concurrently; their results become tool messages. Calls that wait
    for the user's yes do not run: the turn ends asking it."""
    ctx = runtime.context
    _announce_calls(state, runtime)
    ours = [call for call in state["pending"] if not ctx.runs_on_client(call["name"])]
    held = [call for call in ours if needs_yes(ctx.tools, call, state["confirmed"])]
    run = [call for call in ours if call not in held]
    outcomes = await execute_calls(run, ctx.tools, ctx.tool_context(), max_concurrency=ctx.deps.max_tool_concurrency)
    outcomes += map(held_outcome, held)
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
        _write(runtime, ToolFinished(outcome.record))
        _trace_call(ctx, outcome, content)
    update: dict[str, Any] = {
        "messages": messages,
        "pending": [],
        "awaiting": [call for call in state["pending"] if ctx.runs_on_client(call["name"])],
        "held": held,
        "rounds": state["rounds"] + 1,
        "tool_calls": [*state["tool_calls"], *(o.record for o in outcomes)],
        "citations": citations,
        "voice": voice,
    }
    if held:
        asked = question(held)
        messages.append(Message(role="assistant", content=asked))
        _write(runtime, AnswerText(asked, _reply_voice(state)))
        if ctx.deps.planner.speech_native and ctx.speak:  # it speaks its own text: this line is ours
            _write(runtime, Line(asked, _reply_voice(state)))
        update["answer"] = asked
    return update


def _announce_calls(state: AgentState, runtime: Runtime[TurnContext]) -> None:
    """Say what is being done while the calls run, so the user hears something within a second.

    Only the first call's line is said, and nothing when the planner already spoke before
    calling (a speech-native planner's "Let me check.", or the line the plan step said as
    soon as the tool was chosen). A line says what is done, never a result, so it can never
    claim what the tools have not found.
    """
    ctx = runtime.context
    calls = [
        c
        for c in state["pending"]
        if not (ctx.runs_on_client(c["name"]) or needs_yes(ctx.tools, c, state["confirmed"]))
    ]
    said_before = bool(state["messages"] and message_text(state["messages"][-1]).strip())
    if calls and not (said_before or state["spoke"]):
        _announce(runtime.context, _reply_voice(state), runtime, calls[0]["name"], calls[0]["arguments"])


def _announce(
    ctx: TurnContext,
    voice: str | None,
    runtime: Runtime[TurnContext],
    name: str,
    arguments: Mapping[str, Any] | None,
) -> bool:
    """Say tool `name`'s line; with `arguments` None (not written yet), only a line that needs
    none. Whether a line was said."""
    tool = ctx.tools.get(name)
    if not (ctx.deps.announce_tools and ctx.speak and tool) or (arguments is None and tool.spec.confirm):
        return False  # a tool that may wait for the user's yes is not announced before it is known to run
    line = tool.spec.announcement(arguments) if arguments is not None else tool.spec.fixed_announcement()
    if not line:
        return False
    _write(runtime, Line(line, voice))
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
