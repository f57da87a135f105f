"""Speaking the answer while it is still being written.

The voice is given at each call, not fixed per turn, because a tool may change it midway.
The planner streams its answer as text deltas; waiting for the whole answer before
synthesizing would add the full generation time to the time to first audio. A
SentenceSpeaker takes the deltas, and as soon as a sentence is complete (the next one has
begun) it synthesizes that sentence and emits its audio; `flush` speaks the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from agent.context import Emit
from agent.tracing import AUDIO_OUT_S, SENTENCES, TTS_MODEL, TTS_TEXT, VOICE, TurnTrace
from model.base import SpeechSynthesizer
from model.tts import split_sentences

__all__ = ["SentenceSpeaker", "Spoken", "trace_speech"]


@dataclass(frozen=True)
class Spoken:
    """One synthesized stretch of the answer, for the turn's trace."""

    text: str
    voice: str | None
    started_ns: int
    """Wall-clock start and end, ns since the epoch."""
    ended_ns: int
    audio_seconds: float


class SentenceSpeaker:
    """One turn's speech: fed text as it arrives, speaks whole sentences in order."""

    def __init__(self, tts: SpeechSynthesizer) -> None:
        self.tts = tts
        self.busy_ms = 0.0
        """Time spent synthesizing so far."""
        self.fed = False
        """Whether any text has been fed this turn."""
        self.spoken: list[Spoken] = []
        """What was synthesized so far, in order."""
        self._buffer = ""

    async def feed(self, text: str, voice: str | None, emit: Emit) -> None:
        """Add streamed text; speak, in `voice`, every sentence that is now complete."""
        self.fed = self.fed or bool(text.strip())
        self._buffer += text
        sentences = split_sentences(self._buffer)
        if len(sentences) < 2:
            return
        *complete, rest = sentences
        self._buffer = self._buffer[self._buffer.rfind(rest) :]  # keep its raw tail: the next delta may begin " word"
        await self._say(" ".join(complete), voice, emit)

    async def flush(self, voice: str | None, emit: Emit) -> None:
        """Speak whatever is left in the buffer."""
        text, self._buffer = self._buffer.strip(), ""
        if text:
            await self._say(text, voice, emit)

    async def say(self, text: str, voice: str | None, emit: Emit) -> None:
        """Speak a whole line now, apart from the answer being fed (a line said while tools run)."""
        if text.strip():
            await self._say(text.strip(), voice, emit)

    async def _say(self, text: str, voice: str | None, emit: Emit) -> None:
        started, started_ns = time.perf_counter(), time.time_ns()
        samples = 0
        chunks: Iterator[np.ndarray] = self.tts.synthesize(text, voice)  # a generator: next() does the work
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            samples += len(chunk)
            emit({"type": "audio", "audio": chunk, "sample_rate": self.tts.sample_rate})
        self.busy_ms += (time.perf_counter() - started) * 1000
        self.spoken.append(Spoken(text, voice, started_ns, time.time_ns(), samples / self.tts.sample_rate))


def trace_speech(trace: TurnTrace, speaker: SentenceSpeaker) -> None:
    """A speak span from the first spoken sentence to the last, one synthesize span per sentence.

    Sentences are spoken while the plan still streams, so `speak` overlaps `plan`: the
    timeline shows when the voice was busy, not a stage after planning.
    """
    spoken = speaker.spoken
    if not spoken:
        return
    total = round(sum(s.audio_seconds for s in spoken), 3)
    attributes = {TTS_MODEL: speaker.tts.name, AUDIO_OUT_S: total, SENTENCES: len(spoken), VOICE: spoken[-1].voice}
    span = trace.record("speak", spoken[0].started_ns, spoken[-1].ended_ns, attributes)
    for part in spoken:
        details = {TTS_TEXT: trace.content(part.text), AUDIO_OUT_S: round(part.audio_seconds, 3), VOICE: part.voice}
        trace.record("synthesize", part.started_ns, part.ended_ns, details, parent=span)
