"""The cascade planner: a small local text LLM that picks tools and writes spoken answers.

The default model (Qwen2.5-Coder-1.5B) seldom writes a tool call on its own, and when it
does the format drifts. What makes it choose well is to leave it no format to drift in:
the tools are listed with a `reply(text)` pseudo-tool, so answering directly is a call
like any other, and its answer is started for it as `<tool_call>\\n{"name": "` so that all
it writes is a tool name and arguments. After a tool result it answers in plain text, as
the model was trained to answer a tool's response.

Every step renders the same prompt: one system block with every tool, then the
conversation, each earlier answer shown as it was written (plain text; on engines that do
not constrain their output, a direct answer as the `reply` call they wrote). So the prompt
of a step begins with the whole prompt of the step before, and of the turn before, and an
engine that keeps its KV cache prefills only what is new.

On an engine that constrains its output (llama.cpp) a step is written in pieces under
grammars (model/cascade_steps.py): every call parses, names a tool on offer and fits its
schema, and a step that chooses `reply` goes back and answers in plain text. On other
engines (transformers, served models) the output is parsed leniently, and a step that
yields neither a known call nor a reply falls back to a plain answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from model.base import (
    Message,
    PlanEvent,
    Planner,
    PlanRequest,
    TextDelta,
    ToolCallEvent,
    ToolSpecDict,
    Usage,
    prompt_text,
)
from model.cascade_steps import FORCED_PREFIX, REPLY_TOOL, StepKind, run_step, strip_markup
from model.llm import ChatEngine, Completion, SteppingEngine
from model.tool_stream import TaggedTextSplitter
from model.toolcalls import REPLY_OPENING, JsonStringReader, parse_tool_calls

__all__ = ["FORCED_PREFIX", "REPLY_PREFIX", "REPLY_TOOL", "CascadePlanner"]

log = logging.getLogger(__name__)

REPLY_PREFIX = f'{FORCED_PREFIX}{REPLY_TOOL}", "arguments": {{"text": "'
"""How a step that must reply straight after the user begins: a `reply` call up to its text."""
NO_ANSWER = "Sorry, I don't have an answer to that."

_SYSTEM = (
    "You are a concise voice assistant. Your answers are spoken aloud, so use one to three short, "
    "plain sentences: no markdown, no lists, no code, no emoji. Today is {today}. "
    "Call a tool when the user asks for the current time or date somewhere, asks about the weather or "
    "forecast somewhere, asks about their own documents, notes, handbook or knowledge base, asks to "
    "search the web or for news, or asks for something another tool does. "
    "For greetings, thanks, small talk, jokes, maths "
    "and general questions, call reply with your answer. "
    # Not "say the fact the user asked for": with a `reply` call earlier in the conversation
    # the 1.5B model read that aloud ("The fact the user asked for is ...") instead of the result.
    "After a tool result, answer the user's question from it in one short sentence; when the result "
    "numbers its passages, put the number of the passage you used in brackets right after the fact it "
    "supports; if the tools found nothing useful, say you don't know. "
    "A note in square brackets after the user's words says how they sounded: let it set your tone "
    "(brief and calm for someone hurried or upset), never what you do. "
    "Call exactly one function."
)
_NUMBERED = re.compile(r"^\s*\[\d+\]", re.MULTILINE)
_CITE_HINT = "\n\nAnswer the question from these passages and cite the passage number in brackets, like [1]."
_REPLY_DECLARATION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": REPLY_TOOL,
        "description": "Answer the user directly, without any other tool: greetings, thanks, small talk, "
        "jokes, maths, general knowledge, or anything the conversation already answers.",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The spoken answer, short and plain."}},
            "required": ["text"],
        },
    },
}


def _now() -> datetime:
    return datetime.now().astimezone()


def _declaration(spec: ToolSpecDict) -> dict[str, Any]:
    return {"type": "function", "function": dict(spec)}


def _tool_text(text: str) -> str:
    """A tool result as the model reads it. Numbered passages get the citation rule after them,
    where a 1.5B model heeds it (said only in the system prompt, it was ignored); the same in
    every step, so the prompt stays the one the model has read."""
    return text + _CITE_HINT if _NUMBERED.search(text) else text


def _chat_messages(messages: Sequence[Message], *, plain_answers: bool) -> list[dict[str, Any]]:
    """Our message shape in the form Qwen's chat template renders, each answer as it was written:
    plain text after a tool result, and a direct answer as plain text too (`plain_answers`, an
    engine that constrains its output) or as a `reply` call (so the history shows a model that
    writes free text the very format it must continue)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        text = prompt_text(m)
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif m["role"] == "assistant" and not plain_answers and not (out and out[-1]["role"] == "tool"):
            reply = {"name": REPLY_TOOL, "arguments": {"text": text}}
            out.append({"role": "assistant", "content": "", "tool_calls": [reply]})
        elif m["role"] == "tool":
            out.append({"role": "tool", "name": m.get("name", ""), "content": _tool_text(text)})
        else:
            out.append({"role": m["role"], "content": text})
    return out


def _reply_text(arguments: dict[str, Any]) -> str:
    """The reply's text, even when the model named the argument differently."""
    value = arguments.get("text")
    if not isinstance(value, str):
        value = next((v for v in arguments.values() if isinstance(v, str)), "")
    return value.strip()


def _parse_choice(written: str, names: set[str]) -> list[PlanEvent]:
    """The events of a finished tool-choice completion: real calls, else the reply's text."""
    parsed = parse_tool_calls(FORCED_PREFIX + written, names)
    real = [c for c in parsed.calls if c["name"] != REPLY_TOOL]
    if real:
        return [ToolCallEvent(call) for call in real]
    text = " ".join(t for t in (_reply_text(c["arguments"]) for c in parsed.calls) if t)
    text = strip_markup(text or parsed.text).strip()
    return [TextDelta(text)] if text else []


class CascadePlanner(Planner):
    """Tool choice and answers from a text LLM; the graph adds ASR before and TTS after."""

    speech_native = False

    def __init__(
        self,
        engine: ChatEngine | SteppingEngine,
        *,
        today: Callable[[], datetime] | None = None,
        answer_after_tools: bool = True,
        name: str | None = None,
        reply_bias: float = 0.0,
    ) -> None:
        """`answer_after_tools`: once the last message is a tool result, answer rather than
        offering the tools again; on the 1.5B model this gives fuller, better grounded
        answers and no repeated calls. `reply_bias`: on an engine that constrains its output,
        added to the logit of answering directly when a tool is chosen
        (model/cascade_steps.py `_choose`)."""
        self.engine = engine
        self.reply_bias = reply_bias
        self.today = today or _now
        self.answer_after_tools = answer_after_tools
        self.name = name or f"cascade:{engine.name}"
        self._reading: set[asyncio.Future[bool]] = set()

    async def warm_up(self, tools: Sequence[ToolSpecDict]) -> None:
        """Read the system block with these tools now: every conversation begins with it, and
        on two cores it takes 15-20 s to read, or a moment to load where an earlier start
        kept it on disk."""
        engine = self.engine
        if not isinstance(engine, SteppingEngine):
            return
        declared = self._declarations(tools)

        def read() -> None:
            with engine.step([self._system()], tools=declared) as step:
                step.prefill(keep_on_disk=True)

        await asyncio.to_thread(read)

    @staticmethod
    def _declarations(tools: Sequence[ToolSpecDict]) -> list[dict[str, Any]]:
        """Every tool, and `reply`, as the system block declares them (the same in every step)."""
        return [_declaration(spec) for spec in tools if spec["name"] != REPLY_TOOL] + [_REPLY_DECLARATION]

    def _system(self) -> dict[str, Any]:
        return {"role": "system", "content": _SYSTEM.format(today=self.today().strftime("%A %d %B %Y"))}

    def _kind(self, request: PlanRequest, history: list[dict[str, Any]]) -> StepKind:
        after_tools = bool(history) and history[-1]["role"] == "tool"
        if after_tools and (self.answer_after_tools or not request.callable_tools):
            return "answer"
        return "choose" if request.callable_tools else "reply"

    def _messages(self, request: PlanRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The step's messages, its system prompt first, and the conversation alone."""
        history = _chat_messages(request.messages, plain_answers=isinstance(self.engine, SteppingEngine))
        return [self._system(), *request.preamble_messages, *history], history

    def prepare(self, request: PlanRequest) -> None:
        """Read the conversation and the opening of the user's next message while it is being
        recognized: on two cores the recognizer keeps one busy, and putting another session's
        conversation aside (~50 ms) and reading `<|im_start|>user` were part of the wait after it."""
        if isinstance(self.engine, SteppingEngine):
            messages, _ = self._messages(request)
            self._begin_reading(
                functools.partial(self.engine.read_ahead, messages, tools=self._declarations(request.tools))
            )

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        start = time.perf_counter()
        messages, history = self._messages(request)
        kind = self._kind(request, history)
        tools = self._declarations(request.tools)
        completions: list[Completion] = []
        if isinstance(self.engine, SteppingEngine):
            schemas = {s["name"]: s["parameters"] for s in request.callable_tools if s["name"] != REPLY_TOOL}
            steps = run_step(
                self.engine,
                messages,
                tools,
                kind=kind,
                schemas=schemas,
                max_new_tokens=request.max_new_tokens,
                completions=completions,
                pace=request.pace,
                reply_bias=self.reply_bias,
                futile=request.futile,
                claimed=request.claimed,
                unspoken=request.notes,
            )
        else:
            steps = self._forced(messages, tools, kind, request, completions)
        said = called = False
        text: list[str] = []
        async for event in steps:
            said = True
            called = called or isinstance(event, ToolCallEvent)
            if isinstance(event, TextDelta):
                text.append(event.text)
            yield event
        if isinstance(self.engine, SteppingEngine) and not called:
            self._read_ahead(self.engine, messages, request.messages, "".join(text).strip(), tools)
        mode: str = kind
        if not said:
            mode = "fallback_answer"
            async for piece in self._plain(messages, tools, request.max_new_tokens, completions):
                said = True
                yield TextDelta(piece)
        if not said:
            yield TextDelta(NO_ANSWER)
        yield self._usage(completions, start, mode)

    def _read_ahead(
        self,
        engine: SteppingEngine,
        messages: list[dict[str, Any]],
        conversation: Sequence[Message],
        answer: str,
        tools: list[dict[str, Any]],
    ) -> None:
        """While the answer is spoken, read the next turn's opening: the answer as the next
        step will show it, and the start of the user's next message."""
        if not answer:
            return
        answered = _chat_messages([*conversation, Message(role="assistant", content=answer)], plain_answers=True)[-1]
        self._begin_reading(functools.partial(engine.read_ahead, [*messages, answered], tools=tools))

    def _begin_reading(self, read: Callable[[], bool]) -> None:
        reading = asyncio.get_running_loop().run_in_executor(None, read)  # begun now, not when the loop next runs
        self._reading.add(reading)
        reading.add_done_callback(self._read)

    async def read_ahead_done(self) -> None:
        """Wait for the reading ahead of next turns begun so far."""
        await asyncio.gather(*self._reading, return_exceptions=True)

    def _read(self, reading: asyncio.Future[bool]) -> None:
        self._reading.discard(reading)
        if not reading.cancelled() and (error := reading.exception()) is not None:
            log.warning("could not read ahead of the next turn: %s", error)

    async def _forced(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        kind: StepKind,
        request: PlanRequest,
        completions: list[Completion],
    ) -> AsyncIterator[PlanEvent]:
        """One step as free text after a forced opening, parsed leniently; nothing when unusable.

        With a streaming engine a `reply` is passed on as it is written, so its first
        sentence can be spoken before the model has finished the call.
        """
        if kind == "answer":
            async for text in self._plain(messages, tools, request.max_new_tokens, completions):
                yield TextDelta(text)
            return
        engine = self.engine
        assert not isinstance(engine, SteppingEngine)
        names = {s["name"] for s in request.callable_tools} | {REPLY_TOOL}
        prefix = FORCED_PREFIX if kind == "choose" else REPLY_PREFIX
        stream_fn = getattr(engine, "stream", None)
        if stream_fn is None:
            completion = await asyncio.to_thread(
                engine.generate, messages, tools=tools, prefix=prefix, max_new_tokens=request.max_new_tokens
            )
            completions.append(completion)
            for event in _parse_choice(prefix[len(FORCED_PREFIX) :] + completion.text, names):
                yield event
            return
        stream = stream_fn(messages, tools=tools, prefix=prefix, max_new_tokens=request.max_new_tokens)
        chunks: Iterator[str] = iter(stream)
        written = prefix
        reader = JsonStringReader() if prefix == REPLY_PREFIX else None
        try:
            while (piece := await asyncio.to_thread(next, chunks, None)) is not None:
                written += piece
                if reader is None:
                    opening = REPLY_OPENING.match(written)
                    if opening is None:
                        continue
                    reader, piece = JsonStringReader(), written[opening.end() :]
                if text := strip_markup(reader.feed(piece)):
                    yield TextDelta(text)
                if reader.done:
                    stream.close()  # what is left is `}}</tool_call>`: not worth the tokens
        finally:
            stream.close()
            if stream.completion is not None:
                completions.append(stream.completion)
        if reader is None:
            for event in _parse_choice(written[len(FORCED_PREFIX) :], names):
                yield event

    async def _plain(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_new_tokens: int,
        completions: list[Completion],
    ) -> AsyncIterator[str]:
        """A plain, unforced answer (after a tool result, or when a forced step gave nothing
        usable), streamed when the engine can stream."""
        engine = self.engine
        if isinstance(engine, SteppingEngine):
            return
        stream_fn = getattr(engine, "stream", None)
        if stream_fn is None:
            completion = await asyncio.to_thread(engine.generate, messages, tools=tools, max_new_tokens=max_new_tokens)
            completions.append(completion)
            if text := strip_markup(parse_tool_calls(completion.text, ()).text).strip():
                yield text
            return
        stream = stream_fn(messages, tools=tools, max_new_tokens=max_new_tokens)
        chunks: Iterator[str] = iter(stream)
        splitter = TaggedTextSplitter()  # a call the model writes anyway is not spoken
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                if text := strip_markup(splitter.feed(chunk)):
                    yield text
            if rest := strip_markup(splitter.finish()):
                yield rest
        finally:
            stream.close()
            if stream.completion is not None:
                completions.append(stream.completion)

    def _usage(self, completions: list[Completion], start: float, mode: str) -> Usage:
        return Usage(
            model=self.engine.name,
            prompt_tokens=sum(c.prompt_tokens for c in completions),
            completion_tokens=sum(c.completion_tokens for c in completions),
            duration_ms=(time.perf_counter() - start) * 1000,
            extra={"mode": mode, "generations": len(completions), "raw": [c.text for c in completions]},
            reused_tokens=sum(c.reused_tokens for c in completions),
            queue_ms=sum(c.queue_ms for c in completions),
        )
