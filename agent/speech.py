"""Speech as a stage of the turn's stream: text in, audio out, alongside the planner.

The planner writes its answer as text deltas; waiting for the whole answer before
synthesizing would add the full generation time to the time to first audio. The stage
reads the nodes' events as they come and passes each on at once; the answer's text it also
gathers into sentences, and as soon as one is complete (the next has begun) a second task
synthesizes it while the planner goes on writing. A `Line` (said while tools run) is
spoken in its turn, a tool call ends the sentence before it, and the end of the stream
speaks the rest. Audio a speech-native planner spoke itself passes straight through.

Closing the stage's stream stops both at once: the planner where it is, the synthesis at
the next chunk (barge-in, a client gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import assert_never

import numpy as np

from agent.events import AnswerText, Audio, Heard, Line, NodeEvent, ToolCalled, ToolFinished
from agent.tracing import AUDIO_OUT_S, SENTENCES, TTS_MODEL, TTS_TEXT, VOICE, TurnTrace
from model.base import SpeechSynthesizer
from model.tts import split_sentences

__all__ = ["FirstAudioGate", "LineCache", "SentenceBuffer", "Spoken", "speak_along", "trace_speech"]

StageEvent = Heard | AnswerText | ToolCalled | ToolFinished | Audio


@dataclass(frozen=True)
class Spoken:
    """One synthesized stretch of the reply, for the turn's trace."""

    text: str
    voice: str | None
    started_ns: int
    """Wall-clock start and end, ns since the epoch."""
    ended_ns: int
    audio_seconds: float


class FirstAudioGate:
    """Holds the planner back while the turn's first audio is synthesized.

    On two cores the voice and the planner halve each other's speed when they run at once,
    and what the user waits for is the first audio: a tool's line, or the answer's first
    clause. So while that is synthesized the planner's worker thread waits before its next
    token (`wait`, its `PlanRequest.pace`), and once it is out the two run side by side as
    before. Bounded: the planner never waits more than `max_wait_s` at a time.
    """

    def __init__(self, max_wait_s: float = 1.0) -> None:
        self._open = threading.Event()
        self._open.set()
        self._done = False
        self._max_wait_s = max_wait_s

    def wait(self) -> None:
        if not self._done:
            self._open.wait(self._max_wait_s)

    def speaking(self) -> None:
        """The first audio is being synthesized: hold the planner."""
        if not self._done:
            self._open.clear()

    def spoke(self) -> None:
        """The first audio is out: let the planner go, for the rest of the turn."""
        self._done = True
        self._open.set()


_CLAUSE_END = re.compile(r"[,;:](?=\s+\S)")
FIRST_CLAUSE_WORDS = 2
"""The fewest words the answer's first clause is said on its own with."""
_PHRASE_BREAK = re.compile(
    r"\s(?=(?:in|at|on|for|from|with|by|about|and|but|or|so|because|which|who|where|when|until|after|before"
    r"|is|are|was|were|can|could|will|would|should|may|might|must)"
    r"\s+[\w\"'(])",
    re.IGNORECASE,
)
"""Where a first sentence with no comma may be broken: before a preposition or conjunction that
opens a phrase ("It is 7:15 PM | in Tokyo right now."), or before the verb after a subject of
three words or more ("The time in Paris | is 8:18 AM."), once the word after it has begun."""
FIRST_PHRASE_WORDS = 3
"""The fewest words a first phrase broken off that way is said with."""
_EXCLAIMED = re.compile(r"\w[!?]+$")
"""A first sentence that ends in "!" or "?" as written so far ("Hello!"): said at once, not once
the next word has begun (one token later); a full stop may still be "3." of "3.5" or "Dr."."""


@dataclass
class SentenceBuffer:
    """Text as it streams in, given back a whole sentence at a time, and the answer's first
    clause on its own ("In Tokyo right now, ..."): the voice starts once it is written, not
    once the whole first sentence is, which on a slow planner is most of the wait. A first
    sentence with no comma is broken before its first phrase ("The head chef | at the Copper
    Kettle is ..."), where a reader would pause for breath."""

    _text: str = ""
    _begun: bool = False

    def add(self, text: str) -> str:
        """Add `text`; the sentences it completed (the next has begun), "" when none."""
        self._text += text
        sentences = split_sentences(self._text)
        if len(sentences) < 2:
            return self._first_clause()
        *complete, rest = sentences
        self._text = self._text[self._text.rfind(rest) :]  # keep its raw tail: the next delta may begin " word"
        self._begun = True
        return " ".join(complete)

    def _first_clause(self) -> str:
        """The first clause or phrase of the answer, once the words after it have begun (or at
        once, a first sentence ending in "!" or "?"); else ""."""
        if self._begun:
            return ""
        ends = [(end.end(), FIRST_CLAUSE_WORDS) for end in _CLAUSE_END.finditer(self._text)]
        ends += [(end.start(), FIRST_PHRASE_WORDS) for end in _PHRASE_BREAK.finditer(self._text)]
        ends += [(end.end(), 1) for end in _EXCLAIMED.finditer(self._text)]
        for end, fewest in sorted(ends):
            clause = self._text[:end]
            if len(clause.split()) >= fewest:
                self._text, self._begun = self._text[end:].lstrip(), True
                return clause.strip()
        return ""

    def rest(self) -> str:
        """Whatever is left, and the buffer emptied."""
        text, self._text = self._text.strip(), ""
        return text


class LineCache:
    """The audio of lines said while tools run ("Let me check the time."), kept once spoken.

    The same few lines come back turn after turn, and each is the first audio of its turn:
    said from here it is out at once, and the planner, held while the first audio is
    synthesized, goes on writing the call at once too. Least recently said out first.
    """

    LONGEST = 120
    """The most characters a line kept here has (a speech-native planner's whole answer is no line to keep)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._audio: OrderedDict[tuple[str, str | None, str], tuple[np.ndarray, ...]] = OrderedDict()

    def get(self, tts: SpeechSynthesizer, text: str, voice: str | None) -> tuple[np.ndarray, ...] | None:
        key = (tts.name, voice, text)
        if (chunks := self._audio.get(key)) is not None:
            self._audio.move_to_end(key)
        return chunks

    def put(self, tts: SpeechSynthesizer, text: str, voice: str | None, chunks: tuple[np.ndarray, ...]) -> None:
        self._audio[(tts.name, voice, text)] = chunks
        while len(self._audio) > self._size:
            self._audio.popitem(last=False)


@dataclass
class _Voice:
    """The stage's speaking half: says what it is given, in order, one piece at a time."""

    tts: SpeechSynthesizer
    out: asyncio.Queue[StageEvent | BaseException | None]
    spoken: list[Spoken]
    gate: FirstAudioGate
    lines: LineCache | None = None
    todo: asyncio.Queue[tuple[str, str | None, bool] | None] = field(default_factory=asyncio.Queue)

    async def run(self) -> None:
        try:
            while (item := await self.todo.get()) is not None:
                await self._say(*item)
        finally:
            self.gate.spoke()  # nothing to say, or a failure: never hold the planner
        await self.out.put(None)

    async def _say(self, text: str, voice: str | None, line: bool) -> None:
        """Say `text`; a `line` from the cache when it was said before, into it once said whole."""
        started_ns, said = time.time_ns(), []
        lines = self.lines if line and len(text) <= LineCache.LONGEST else None
        kept = lines.get(self.tts, text, voice) if lines is not None else None
        chunks: Iterator[np.ndarray] = iter(kept) if kept is not None else self.tts.synthesize(text, voice)

        async def next_chunk() -> np.ndarray | None:  # synthesis is done in next(): off the loop
            return next(chunks, None) if kept is not None else await asyncio.to_thread(next, chunks, None)

        self.gate.speaking()
        while (chunk := await next_chunk()) is not None:
            said.append(chunk)
            await self.out.put(Audio(chunk, self.tts.sample_rate, "" if len(said) > 1 else text))
            self.gate.spoke()
        if lines is not None and kept is None:
            lines.put(self.tts, text, voice, tuple(said))
        seconds = sum(len(chunk) for chunk in said) / self.tts.sample_rate
        self.spoken.append(Spoken(text, voice, started_ns, time.time_ns(), seconds))


async def speak_along(
    events: AsyncIterator[NodeEvent],
    tts: SpeechSynthesizer | None,
    *,
    speak_text: bool,
    spoken: list[Spoken],
    gate: FirstAudioGate | None = None,
    lines: LineCache | None = None,
) -> AsyncGenerator[StageEvent, None]:
    """`events` passed on as they come, with the audio of what is to be said among them.

    `tts` None: nothing is said (a text-only turn; `Line`s are dropped). `speak_text` False:
    the planner speaks its answer itself, so only `Line`s are synthesized. What was said is
    added to `spoken`. Ends once `events` ends and the last of the audio is out. `gate`: what
    holds the planner back while the first audio is synthesized. `lines`: where the audio
    of `Line`s is kept, to be said again without synthesis.
    """
    out: asyncio.Queue[StageEvent | BaseException | None] = asyncio.Queue()
    gate = gate or FirstAudioGate()
    voice = _Voice(tts, out, spoken, gate, lines) if tts is not None else None
    if voice is None:
        gate.spoke()
    sentences = SentenceBuffer()

    def say(text: str, speaker_voice: str | None, *, line: bool = False) -> None:
        if voice is not None and text.strip():
            voice.todo.put_nowait((text.strip(), speaker_voice, line))

    async def read() -> None:
        last_voice: str | None = None
        try:
            async for event in events:
                match event:
                    case AnswerText(text=text, voice=last_voice):
                        if speak_text:
                            say(sentences.add(text), last_voice)
                    case Line(text=text, voice=line_voice):
                        say(sentences.rest(), last_voice)
                        say(text, line_voice, line=True)
                        continue
                    case ToolCalled():
                        say(sentences.rest(), last_voice)
                    case Heard() | ToolFinished() | Audio():
                        pass
                    case _:
                        assert_never(event)
                await out.put(event)
            say(sentences.rest(), last_voice)
        except Exception as error:
            await out.put(error)
        if voice is not None:
            voice.todo.put_nowait(None)
        else:
            await out.put(None)

    async def speak() -> None:
        assert voice is not None
        try:
            await voice.run()
        except Exception as error:
            await out.put(error)

    tasks = [asyncio.create_task(read())]
    if voice is not None:
        tasks.append(asyncio.create_task(speak()))
    try:
        while (item := await out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gate.spoke()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def trace_speech(trace: TurnTrace, tts: SpeechSynthesizer, spoken: list[Spoken]) -> None:
    """A speak span from the first spoken sentence to the last, one synthesize span per sentence.

    Sentences are spoken while the plan still streams, so `speak` overlaps `plan`: the
    timeline shows when the voice was busy, not a stage after planning.
    """
    if not spoken:
        return
    total = round(sum(s.audio_seconds for s in spoken), 3)
    attributes = {TTS_MODEL: tts.name, AUDIO_OUT_S: total, SENTENCES: len(spoken), VOICE: spoken[-1].voice}
    span = trace.record("speak", spoken[0].started_ns, spoken[-1].ended_ns, attributes)
    for part in spoken:
        details = {TTS_TEXT: trace.content(part.text), AUDIO_OUT_S: round(part.audio_seconds, 3), VOICE: part.voice}
        trace.record("synthesize", part.started_ns, part.ended_ns, details, parent=span)
