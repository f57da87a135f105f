"""Fakes for orchestration tests and load runs: scripted planners, a scripted chat engine, a
recording synthesizer, and a recognizer for text-only services."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.base import (
    PlanEvent,
    Planner,
    PlanRequest,
    SpeechRecognizer,
    SpeechSynthesizer,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
    message_text,
)
from model.llm import Completion, TextStream

__all__ = [
    "ClockPlanner",
    "RecordingSynthesizer",
    "ScriptedEngine",
    "ScriptedPlanner",
    "ScriptedSteps",
    "Step",
    "TextOnlyASR",
    "call",
    "reply",
    "step_answer",
    "step_call",
    "step_reply",
]


@dataclass(frozen=True)
class Step:
    """One planning step: tool calls to make, or text to answer with."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()


def reply(text: str) -> Step:
    return Step(text=text)


_ids = itertools.count(1)


def call(name: str, **arguments: Any) -> Step:
    return Step(calls=(ToolCall(id=f"call_{next(_ids)}", name=name, arguments=arguments),))


@dataclass
class ScriptedPlanner(Planner):
    """Replays `steps` in order; a callable step is given the request and returns a Step.

    When the script runs out it answers `fallback`, so a test that loops too long shows up
    as a wrong answer rather than a hang.
    """

    steps: Sequence[Step | Callable[[PlanRequest], Step]] = ()
    fallback: str = "(script exhausted)"
    requests: list[PlanRequest] = field(default_factory=list)
    name: str = "scripted"
    seconds_per_word: float = 0.0
    """How long each word of an answer takes to write, as a model's tokens do."""
    prepared: list[PlanRequest] = field(default_factory=list)
    """What `prepare` was given: conversations whose next user message was being heard."""

    def prepare(self, request: PlanRequest) -> None:
        self.prepared.append(request)

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        index = len(self.requests)
        self.requests.append(request)
        step: Step | Callable[[PlanRequest], Step]
        step = self.steps[index] if index < len(self.steps) else reply(self.fallback)
        if callable(step):
            step = step(request)
        if step.calls and request.callable_tools:
            for tool_call in step.calls:
                yield ToolCallEvent(tool_call)
        else:  # word by word, as a model streams
            for piece in re.findall(r"\S+\s*", step.text or self.fallback):
                yield TextDelta(piece)
                await asyncio.sleep(self.seconds_per_word)
        yield Usage(model=self.name)


@dataclass
class ClockPlanner(Planner):
    """Asks the clock for every question, then answers with what it said: a tool turn of two
    planning steps that depends on nothing but the request, so any number of sessions and
    replicas can share it (load runs), and it keeps nothing per request."""

    timezone: str = "Asia/Tokyo"
    name: str = "clock"

    async def plan(self, request: PlanRequest) -> AsyncIterator[PlanEvent]:
        last = request.messages[-1] if request.messages else None
        if last is not None and last["role"] == "user" and request.callable_tools:
            yield ToolCallEvent(
                ToolCall(id=f"call_{next(_ids)}", name="get_date_time", arguments={"timezone": self.timezone})
            )
        else:
            said = message_text(last) if last is not None and last["role"] == "tool" else ""
            yield TextDelta(f"The clock says: {said.splitlines()[0] if said else 'nothing'}.")
        yield Usage(model=self.name)


class TextOnlyASR(SpeechRecognizer):
    """For services that are only sent text: loads nothing, and refuses audio."""

    name = "text-only"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        raise ValueError("this service takes text turns only")


@dataclass
class RecordingSynthesizer(SpeechSynthesizer):
    """Says each text as a short tone, and records what it was asked to say, in which voice."""

    sample_rate: int = 16000
    said: list[tuple[str, str | None]] = field(default_factory=list)
    name: str = "recording"

    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        self.said.append((text, voice))
        yield np.full(self.sample_rate // 10, 0.1, dtype=np.float32)


@dataclass
class ScriptedEngine:
    """A chat engine (model.llm.ChatEngine) that writes scripted completions, streamed in small
    pieces like a model's tokens, and records every prompt. Closing a stream stops it at the
    next piece, as the real engine stops at the next token."""

    completions: list[str]
    piece_chars: int = 3
    name: str = "scripted-engine"
    prompts: list[dict[str, Any]] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    """What each stream actually emitted before it ended or was closed."""

    def _next(self, messages: Sequence[Any], tools: Sequence[Any] | None, prefix: str) -> str:
        self.prompts.append({"messages": list(messages), "tools": list(tools or []), "prefix": prefix})
        index = len(self.prompts) - 1
        return self.completions[index] if index < len(self.completions) else ""

    def generate(
        self,
        messages: Sequence[Any],
        *,
        tools: Sequence[Any] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> Completion:
        text = self._next(messages, tools, prefix)
        return Completion(text=text, prompt_tokens=len(messages), completion_tokens=len(text), duration_ms=0.0)

    def stream(
        self,
        messages: Sequence[Any],
        *,
        tools: Sequence[Any] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> TextStream:
        text = self._next(messages, tools, prefix)
        cancel = threading.Event()
        pieces = [text[i : i + self.piece_chars] for i in range(0, len(text), self.piece_chars)]

        def chunks() -> Iterator[str]:
            sent = []
            for piece in pieces:
                if cancel.is_set():
                    break
                sent.append(piece)
                yield piece
            self.streamed.append("".join(sent))
            stream.completion = Completion("".join(sent), len(messages), len(sent), 0.0)

        stream = TextStream(chunks(), cancel)
        return stream


def step_call(name: str, arguments: dict[str, Any]) -> list[str]:
    """What a stepping engine samples for a call: the name with its closing quote, then the arguments."""
    return [f'{name}"', json.dumps(arguments)]


def step_reply(text: str, *, chosen: bool = True) -> list[str]:
    """What a stepping engine samples for a direct answer: the name `reply` (unless the step
    had to reply), then the answer in plain text."""
    return (['reply"'] if chosen else []) + [text]


def step_answer(text: str) -> list[str]:
    """What a stepping engine samples for the plain answer after a tool result."""
    return [text]


@dataclass
class _ScriptedStep:
    engine: ScriptedSteps
    record: dict[str, Any]
    completion: Completion | None = None

    def append(self, text: str) -> None:
        self.record["appended"].append(text)

    def prefill(self, *, keep_on_disk: bool = False) -> None:
        self.record["prefilled"] = "kept on disk" if keep_on_disk else True

    def mark(self) -> int:
        return len(self.record["appended"]) + len(self.record["sampled"])

    def rewind(self, mark: int) -> None:
        self.record["rewound"].append(mark)

    def lead(self, text: str) -> float:
        """The next of the engine's `leads`; a clear lead (infinite) when none is left."""
        return self.engine.leads.pop(0) if self.engine.leads else math.inf

    def sample(
        self,
        *,
        grammar: str | None = None,
        max_tokens: int = 256,
        forced: str = "",
        bias: Mapping[str, float] | None = None,
    ) -> Generator[str, None, None]:
        """The next scripted text; one that begins with what `forced` holds (spaces aside) goes on after it."""
        self.record["grammars"].append(grammar)
        self.record["forced"].append(forced)
        self.record["biases"].append(dict(bias or {}))
        text = self.engine.samples.pop(0) if self.engine.samples else ""
        if forced and text.startswith(forced.lstrip()):
            text = text[len(forced.lstrip()) :]
        size = self.engine.piece_chars
        pieces = ([forced] if forced else []) + [text[i : i + size] for i in range(0, len(text), size)]
        sent = ""
        try:
            for piece in pieces[: max_tokens + 1]:
                sent += piece
                yield piece
        finally:
            self.record["sampled"].append(sent)


@dataclass
class ScriptedSteps:
    """A stepping engine (model.llm.SteppingEngine): each `sample` writes the next of `samples`
    in small pieces (whatever grammar it is given); every step records its prompt, the text
    appended, the grammars asked for and what was read of each sample."""

    samples: list[str]
    piece_chars: int = 3
    name: str = "scripted-steps"
    leads: list[float] = field(default_factory=list)
    """What `lead` says, in turn: by how much each sampled name led `reply`."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    read_aheads: list[list[Any]] = field(default_factory=list)
    """The conversations read ahead of their next step."""

    def read_ahead(self, messages: Sequence[Any], *, tools: Sequence[Any] | None = None) -> bool:
        self.read_aheads.append(list(messages))
        return True

    @contextmanager
    def step(self, messages: Sequence[Any], *, tools: Sequence[Any] | None = None) -> Iterator[_ScriptedStep]:
        record: dict[str, Any] = {
            "messages": list(messages),
            "tools": list(tools or []),
            "appended": [],
            "grammars": [],
            "forced": [],
            "biases": [],
            "sampled": [],
            "rewound": [],
        }
        self.steps.append(record)
        step = _ScriptedStep(self, record)
        try:
            yield step
        finally:
            text = "".join(record["sampled"])
            step.completion = Completion(text, len(messages), len(text), 0.0)
