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

import numpy as np

from agent.context import Emit
from model.base import SpeechSynthesizer
from model.tts import split_sentences

__all__ = ["SentenceSpeaker"]


class SentenceSpeaker:
    """One turn's speech: fed text as it arrives, speaks whole sentences in order."""

    def __init__(self, tts: SpeechSynthesizer) -> None:
        self.tts = tts
        self.busy_ms = 0.0
        """Time spent synthesizing so far."""
        self.fed = False
        """Whether any text has been fed this turn."""
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

    async def _say(self, text: str, voice: str | None, emit: Emit) -> None:
        started = time.perf_counter()
        chunks: Iterator[np.ndarray] = self.tts.synthesize(text, voice)  # a generator: next() does the work
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            emit({"type": "audio", "audio": chunk, "sample_rate": self.tts.sample_rate})
        self.busy_ms += (time.perf_counter() - started) * 1000
