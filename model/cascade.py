"""The cascade planner: a small local text LLM that picks tools and writes spoken answers.

The default model (Qwen2.5-Coder-1.5B) seldom writes a tool call on its own, and when it
does the format drifts. What makes it choose well is to leave it no format to drift in:
the tools are listed with a `reply(text)` pseudo-tool, so answering directly is a call
like any other, and its answer is started for it as `<tool_call>\\n{"name": "` so that all
it writes is a tool name and arguments. Whatever it writes is still parsed leniently, and
a step that yields neither a known call nor a reply falls back to a plain answer, so bad
output costs a second generation, never a crash or a loop.
"""

from __future__ import annotations

import asyncio
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
    message_text,
)
from model.llm import ChatEngine, Completion
from model.toolcalls import REPLY_OPENING, JsonStringReader, parse_tool_calls

__all__ = ["FORCED_PREFIX", "REPLY_TOOL", "CascadePlanner"]

REPLY_TOOL = "reply"
FORCED_PREFIX = '<tool_call>\n{"name": "'
NO_ANSWER = "Sorry, I don't have an answer to that."

_PERSONA = (
    "You are a concise voice assistant. Your answers are spoken aloud, so use one to three short, "
    "plain sentences: no markdown, no lists, no code, no emoji. Today is {today}."
)
_TOOL_RULES = (
    "Call a tool when the user asks for the current time or date somewhere, asks about their own "
    "documents, notes, handbook or knowledge base, asks to search the web or for news, or asks for "
    "something another tool does. "
    "For greetings, thanks, small talk, jokes, maths "
    "and general questions, call reply with your answer. Call exactly one function."
)
_ANSWER_RULES = (
    "Answer from the tool results in this conversation. Say the fact the user asked for. "
    "When the results number their passages, put the number of the passage you used in brackets "
    "right after the fact it supports. "
    "If the tools found nothing useful, say you don't know."
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


def _chat_messages(messages: Sequence[Message], *, replies_as_calls: bool = False) -> list[dict[str, Any]]:
    """Our message shape in the form Qwen's chat template renders (calls and tool turns).

    With `replies_as_calls`, earlier plain answers are shown as `reply` calls, so that in a
    forced tool-choice step the history shows the model the very format it must continue.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        text = message_text(m)
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif m["role"] == "assistant" and replies_as_calls:
            calls = [{"name": REPLY_TOOL, "arguments": {"text": text}}]
            out.append({"role": "assistant", "content": "", "tool_calls": calls})
        elif m["role"] == "tool":
            out.append({"role": "tool", "name": m.get("name", ""), "content": text})
        else:
            out.append({"role": m["role"], "content": text})
    return out


def _with_citation_hint(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Repeat the citation rule right after numbered passages, where a 1.5B model heeds it.

    Said only in the system prompt, the rule was ignored; said at the end of the tool
    result, the model cites.
    """
    last = history[-1]
    if last["role"] != "tool" or not _NUMBERED.search(last["content"]):
        return history
    return [*history[:-1], {**last, "content": last["content"] + _CITE_HINT}]


def _reply_text(arguments: dict[str, Any]) -> str:
    """The reply's text, even when the model named the argument differently."""
    value = arguments.get("text")
    if not isinstance(value, str):
        value = next((v for v in arguments.values() if isinstance(v, str)), "")
    return value.strip()


def _strip_markup(text: str) -> str:
    """Strip markdown and stray tool-call tags from the answer text (the TTS cleans its own input)."""
    return text.replace("**", "").replace("`", "").replace("<tool_call>", "").replace("</tool_call>", "")


def _parse_choice(written: str, names: set[str]) -> list[PlanEvent]:
    """The events of a finished tool-choice completion: real calls, else the reply's text."""
    parsed = parse_tool_calls(FORCED_PREFIX + written, names)
    real = [c for c in parsed.calls if c["name"] != REPLY_TOOL]
    if real:
        return [ToolCallEvent(call) for call in real]
    text = " ".join(t for t in (_reply_text(c["arguments"]) for c in parsed.calls) if t)
    text = _strip_markup(text or parsed.text).strip()
    return [TextDelta(text)] if text else []


class CascadePlanner(Planner):
    """Tool choice and answers from a text LLM; the graph adds ASR before and TTS after."""

    speech_native = False

    def __init__(
        self,
        engine: ChatEngine,
        *,
        today: Callable[[], datetime] | None = None,
        answer_after_tools: bool = True,
        name: str | None = None,
    ) -> None:
        """`answer_after_tools`: once the last message is a tool result, answer in plain text
        rather than offering the tools again; on the 1.5B model this gives fuller, better
        grounded answers and no repeated calls (see the module's measurements)."""
        self.engine = engine
        self.today = today or _now
        self.answer_after_tools = answer_after_tools
        self.name = name or f"cascade:{engine.name}"

    def _system(self, *rules: str) -> dict[str, Any]:
        today = self.today().strftime("%A %d %B %Y")
        return {"role": "system", "content": " ".join((_PERSONA.format(today=today), *rules))}

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        start = time.perf_counter()
        history = _chat_messages(request.messages)
        after_tools = bool(history) and history[-1]["role"] == "tool"
        completions: list[Completion] = []
        mode = "answer"
        if request.tools and not (after_tools and self.answer_after_tools):
            mode = "tool_choice"
            chose = False
            async for event in self._choose(request, completions):
                chose = True
                yield event
            if chose:
                yield self._usage(completions, start, mode)
                return
            mode = "fallback_answer"
        rules = _ANSWER_RULES if after_tools else ""
        if after_tools:
            history = _with_citation_hint(history)
        said = False
        async for piece in self._answer(history, request.max_new_tokens, rules, completions):
            said = True
            yield TextDelta(piece)
        if not said:
            yield TextDelta(NO_ANSWER)
        yield self._usage(completions, start, mode)

    async def _choose(self, request: PlanRequest, completions: list[Completion]) -> AsyncIterator[PlanEvent]:
        """One forced tool-choice step; yields nothing when it produced nothing usable.

        With a streaming engine a `reply` is passed on as it is written, so its first
        sentence can be spoken before the model has finished the call.
        """
        tools = [_declaration(spec) for spec in request.tools if spec["name"] != REPLY_TOOL]
        tools.append(_REPLY_DECLARATION)
        names = {t["function"]["name"] for t in tools}
        messages = [self._system(_TOOL_RULES), *_chat_messages(request.messages, replies_as_calls=True)]
        stream_fn = getattr(self.engine, "stream", None)
        if stream_fn is None:
            completion = await asyncio.to_thread(
                self.engine.generate, messages, tools=tools, prefix=FORCED_PREFIX, max_new_tokens=request.max_new_tokens
            )
            completions.append(completion)
            for event in _parse_choice(completion.text, names):
                yield event
            return
        stream = stream_fn(messages, tools=tools, prefix=FORCED_PREFIX, max_new_tokens=request.max_new_tokens)
        chunks: Iterator[str] = iter(stream)
        written = ""
        reader: JsonStringReader | None = None
        try:
            while (piece := await asyncio.to_thread(next, chunks, None)) is not None:
                written += piece
                if reader is None:
                    opening = REPLY_OPENING.match(FORCED_PREFIX + written)
                    if opening is None:
                        continue
                    reader, piece = JsonStringReader(), (FORCED_PREFIX + written)[opening.end() :]
                if text := _strip_markup(reader.feed(piece)):
                    yield TextDelta(text)
                if reader.done:
                    stream.close()  # what is left is `}}</tool_call>`: not worth the tokens
        finally:
            stream.close()
            if stream.completion is not None:
                completions.append(stream.completion)
        if reader is None:
            for event in _parse_choice(written, names):
                yield event

    async def _answer(
        self, history: list[dict[str, Any]], max_new_tokens: int, rules: str, completions: list[Completion]
    ) -> AsyncIterator[str]:
        """A plain, unforced answer, streamed when the engine can stream."""
        messages = [self._system(rules) if rules else self._system(), *history]
        stream_fn = getattr(self.engine, "stream", None)
        if stream_fn is None:
            completion = await asyncio.to_thread(self.engine.generate, messages, max_new_tokens=max_new_tokens)
            completions.append(completion)
            text = _strip_markup(parse_tool_calls(completion.text, ()).text).strip()
            if text:
                yield text
            return
        stream = stream_fn(messages, max_new_tokens=max_new_tokens)
        chunks: Iterator[str] = iter(stream)
        try:
            while (piece := await asyncio.to_thread(next, chunks, None)) is not None:
                piece = _strip_markup(piece)
                if piece:
                    yield piece
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
        )
