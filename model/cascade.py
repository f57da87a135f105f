"""The cascade planner: a small local text LLM that picks tools and writes spoken answers.

The default model (Qwen2.5-Coder-1.5B) seldom writes a tool call on its own, and when it
does the format drifts. What makes it choose well is to leave it no format to drift in:
the tools are listed with a `reply(text)` pseudo-tool, so answering directly is a call
like any other, and its answer is started for it as `<tool_call>\\n{"name": "` so that all
it writes is a tool name and arguments.

Every step renders the same prompt: one system block with every tool, then the
conversation, earlier answers shown as the `reply` calls they were written as. So the
prompt of a step begins with the whole prompt of the step before (and of the turn before),
and an engine that keeps its KV cache prefills only what is new. A step that must answer
(after a tool result, or when no more calls are allowed) is started as a `reply` call.

On an engine that can constrain its output (llama.cpp, model/llama_engine.py) the call is
written in pieces under grammars (model/grammar.py): a name on offer, then the reply's
text or arguments that fit the tool's schema; the JSON between the pieces is appended, not
decoded. Every call parses, names a tool on offer and fits its schema. On other engines
(transformers, served models) the output is parsed leniently, and a step that yields
neither a known call nor a reply falls back to a plain answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from typing import Any

from model.base import (
    Message,
    PlanEvent,
    Planner,
    PlanRequest,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpecDict,
    Usage,
    message_text,
)
from model.errors import PlannerError
from model.grammar import JSON_STRING_BODY, arguments_grammar, name_grammar
from model.llm import ChatEngine, Completion, SteppingEngine
from model.toolcalls import REPLY_OPENING, JsonStringReader, loads_lenient, new_call_id, parse_tool_calls

__all__ = ["FORCED_PREFIX", "REPLY_PREFIX", "REPLY_TOOL", "CascadePlanner"]

REPLY_TOOL = "reply"
FORCED_PREFIX = '<tool_call>\n{"name": "'
REPLY_PREFIX = f'{FORCED_PREFIX}{REPLY_TOOL}", "arguments": {{"text": "'
"""How an answer begins when the step must answer: a `reply` call up to its text."""
_ARGUMENTS = ', "arguments":'
"""What follows the name; the space before the arguments is the model's (` {"` is one token)."""
NO_ANSWER = "Sorry, I don't have an answer to that."

_SYSTEM = (
    "You are a concise voice assistant. Your answers are spoken aloud, so use one to three short, "
    "plain sentences: no markdown, no lists, no code, no emoji. Today is {today}. "
    "Call a tool when the user asks for the current time or date somewhere, asks about their own "
    "documents, notes, handbook or knowledge base, asks to search the web or for news, or asks for "
    "something another tool does. "
    "For greetings, thanks, small talk, jokes, maths "
    "and general questions, call reply with your answer. "
    "After a tool result, call reply with the answer taken from it: say the fact the user asked for; "
    "when the result numbers its passages, put the number of the passage you used in brackets "
    "right after the fact it supports; if the tools found nothing useful, say you don't know. "
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


def _chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Our message shape in the form Qwen's chat template renders; answers as `reply` calls, so
    that the history shows the model the very format it must continue."""
    out: list[dict[str, Any]] = []
    for m in messages:
        text = message_text(m)
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif m["role"] == "assistant":
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


_DONE = object()
_DECODER = json.JSONDecoder()


async def _from_thread(produce: Callable[[Callable[[PlanEvent], None], threading.Event], None]) -> AsyncIterator[Any]:
    """Run `produce(emit, cancel)` in a worker thread and yield what it emits, as it emits it.

    A consumer that stops early (a client left, a barge-in) sets `cancel`; the thread stops at
    its next token and lets the model go, without anyone waiting for it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening
            cancel.set()

    def work() -> None:
        try:
            produce(put, cancel)
            put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    loop.run_in_executor(None, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()


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
    ) -> None:
        """`answer_after_tools`: once the last message is a tool result, answer rather than
        offering the tools again; on the 1.5B model this gives fuller, better grounded
        answers and no repeated calls."""
        self.engine = engine
        self.today = today or _now
        self.answer_after_tools = answer_after_tools
        self.name = name or f"cascade:{engine.name}"

    async def warm_up(self, tools: Sequence[ToolSpecDict]) -> None:
        """Read the system block with these tools now: every conversation begins with it, and
        on two cores it takes seconds to read."""
        engine = self.engine
        if not isinstance(engine, SteppingEngine):
            return
        declared = self._declarations(tools)

        def read() -> None:
            with engine.step([self._system()], tools=declared) as step:
                step.prefill()

        await asyncio.to_thread(read)

    @staticmethod
    def _declarations(tools: Sequence[ToolSpecDict]) -> list[dict[str, Any]]:
        """Every tool, and `reply`, as the system block declares them (the same in every step)."""
        return [_declaration(spec) for spec in tools if spec["name"] != REPLY_TOOL] + [_REPLY_DECLARATION]

    def _system(self) -> dict[str, Any]:
        return {"role": "system", "content": _SYSTEM.format(today=self.today().strftime("%A %d %B %Y"))}

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        start = time.perf_counter()
        history = _chat_messages(request.messages)
        callable_names = {spec["name"] for spec in request.callable_tools} - {REPLY_TOOL}
        after_tools = bool(history) and history[-1]["role"] == "tool"
        must_answer = not callable_names or (self.answer_after_tools and after_tools)
        tools = self._declarations(request.tools)
        messages = [self._system(), *history]
        names = set() if must_answer else callable_names | {REPLY_TOOL}
        completions: list[Completion] = []
        mode = "answer" if must_answer else "tool_choice"
        if isinstance(self.engine, SteppingEngine):
            steps = self._constrained(messages, tools, names, request, completions)
        else:
            steps = self._forced(messages, tools, names, request, completions)
        said = False
        async for event in steps:
            said = True
            yield event
        if not said:
            mode = "fallback_answer"
            async for piece in self._plain(messages, tools, request.max_new_tokens, completions):
                said = True
                yield TextDelta(piece)
        if not said:
            yield TextDelta(NO_ANSWER)
        yield self._usage(completions, start, mode)

    def _constrained(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        names: set[str],
        request: PlanRequest,
        completions: list[Completion],
    ) -> AsyncIterator[PlanEvent]:
        """One step in constrained pieces (see the module's notes), in a worker thread."""
        engine = self.engine
        assert isinstance(engine, SteppingEngine)
        schemas = {spec["name"]: spec["parameters"] for spec in request.tools}

        def produce(emit: Callable[[PlanEvent], None], cancel: threading.Event) -> None:
            with engine.step(messages, tools=tools) as step:
                step.append(FORCED_PREFIX)
                if names:
                    name = _read_until(step, name_grammar(names), _closes_name, 32, cancel)
                else:
                    name = f'{REPLY_TOOL}"'
                    step.append(name)
                # what closes the name may have come with the comma after it
                arguments = _ARGUMENTS[1:] if name.endswith(",") else _ARGUMENTS
                name = name.rstrip(",").removesuffix('"')
                if cancel.is_set():
                    pass
                elif name == REPLY_TOOL:
                    step.append(arguments + ' {"text": "')
                    _stream_reply(step, request.max_new_tokens, emit, cancel)
                elif name in schemas:
                    step.append(arguments)
                    grammar = arguments_grammar(schemas[name])
                    raw = _read_until(step, grammar, _is_object, request.max_new_tokens, cancel)
                    if not cancel.is_set():
                        emit(ToolCallEvent(ToolCall(id=new_call_id(), name=name, arguments=_arguments(raw))))
                else:
                    raise PlannerError(f"the model wrote no tool name it was offered: {name[:64]!r}")
            if step.completion is not None:
                completions.append(step.completion)

        return _from_thread(produce)

    async def _forced(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        names: set[str],
        request: PlanRequest,
        completions: list[Completion],
    ) -> AsyncIterator[PlanEvent]:
        """One step as free text after a forced opening, parsed leniently; nothing when unusable.

        With a streaming engine a `reply` is passed on as it is written, so its first
        sentence can be spoken before the model has finished the call.
        """
        engine = self.engine
        assert not isinstance(engine, SteppingEngine)
        prefix = FORCED_PREFIX if names else REPLY_PREFIX
        stream_fn = getattr(engine, "stream", None)
        if stream_fn is None:
            completion = await asyncio.to_thread(
                engine.generate, messages, tools=tools, prefix=prefix, max_new_tokens=request.max_new_tokens
            )
            completions.append(completion)
            for event in _parse_choice(prefix[len(FORCED_PREFIX) :] + completion.text, names | {REPLY_TOOL}):
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
                if text := _strip_markup(reader.feed(piece)):
                    yield TextDelta(text)
                if reader.done:
                    stream.close()  # what is left is `}}</tool_call>`: not worth the tokens
        finally:
            stream.close()
            if stream.completion is not None:
                completions.append(stream.completion)
        if reader is None:
            for event in _parse_choice(written[len(FORCED_PREFIX) :], names | {REPLY_TOOL}):
                yield event

    async def _plain(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_new_tokens: int,
        completions: list[Completion],
    ) -> AsyncIterator[str]:
        """A plain, unforced answer, for when a forced step gave nothing usable."""
        engine = self.engine
        if isinstance(engine, SteppingEngine):
            return
        completion = await asyncio.to_thread(engine.generate, messages, tools=tools, max_new_tokens=max_new_tokens)
        completions.append(completion)
        text = _strip_markup(parse_tool_calls(completion.text, ()).text).strip()
        if text:
            yield text

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


def _read_until(step: Any, grammar: str, done: Callable[[str], bool], max_tokens: int, cancel: threading.Event) -> str:
    """Sample under `grammar` until `done(text so far)`; the text."""
    text = ""
    with closing(step.sample(grammar=grammar, max_tokens=max_tokens)) as pieces:
        for piece in pieces:
            text += piece
            if done(text) or cancel.is_set():
                break
    return text


def _stream_reply(step: Any, max_tokens: int, emit: Callable[[PlanEvent], None], cancel: threading.Event) -> None:
    reader = JsonStringReader()
    with closing(step.sample(grammar=JSON_STRING_BODY, max_tokens=max_tokens)) as pieces:
        for piece in pieces:
            if text := _strip_markup(reader.feed(piece)):
                emit(TextDelta(text))
            if reader.done or cancel.is_set():
                break


def _closes_name(text: str) -> bool:
    return text.endswith(('"', '",'))


def _is_object(text: str) -> bool:
    """Whether `text` begins with a whole JSON object already (the arguments end there)."""
    if "}" not in text:
        return False
    try:
        _DECODER.raw_decode(text.lstrip())
    except ValueError:
        return False
    return True


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = loads_lenient(raw)
    except ValueError as error:
        raise PlannerError(f"the model's arguments could not be read: {raw[:80]!r}") from error
    return value if isinstance(value, dict) else {}
