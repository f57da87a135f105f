"""Hearing a live stream: turn detection plus a transcript that grows while the user speaks.

While speech goes on, the speech so far is transcribed again whenever another
`every_ms` of it has come in (one transcription at a time, off the event loop), and what
the new transcript adds to the last is sent as a delta. When the user pauses, the speech
so far is transcribed at once: if they do not go on, that transcript is the final one,
ready when the silence that ends the turn has passed, so the answer need not wait for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

from agent.events import Heard
from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer

__all__ = ["LiveTranscript"]


class LiveTranscript:
    """The transcript of one stretch of speech, kept up to date as it grows."""

    def __init__(
        self,
        asr: SpeechRecognizer,
        on_delta: Callable[[Heard], Awaitable[None]],
        *,
        every_ms: int = 1000,
        tolerance_ms: int = 300,
    ) -> None:
        self.asr = asr
        self.on_delta = on_delta
        self.every = every_ms * SAMPLE_RATE // 1000
        self.tolerance = tolerance_ms * SAMPLE_RATE // 1000
        """How much of the speech's end (silence after the last word) a transcript may miss and still be final."""
        self.sent = ""
        """The transcript as far as deltas have told it."""
        self._task: asyncio.Task[str] | None = None
        self._task_samples = 0
        """How much of the speech the running (or last) transcription covers."""

    def update(self, speech: np.ndarray, *, pausing: bool) -> None:
        """The speech so far; transcribe it again when enough is new, or when the user pauses."""
        if self._task is not None and not self._task.done():
            return
        new = len(speech) - self._task_samples
        if new <= 0 or (new < self.every and not pausing):
            return
        self._task_samples = len(speech)
        self._task = asyncio.create_task(self._transcribe(speech.copy()))

    async def final(self, speech: np.ndarray) -> str:
        """The whole speech's transcript: the last one when it covered all of the speech with
        words in it, else transcribed now."""
        if self._task is not None and self._task_samples >= len(speech) - self.tolerance:
            text = await self._task
        else:
            if self._task is not None:
                self._task.cancel()
            text = await asyncio.to_thread(self.asr.transcribe, speech)
        return text.strip()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _transcribe(self, speech: np.ndarray) -> str:
        text = (await asyncio.to_thread(self.asr.transcribe, speech)).strip()
        if text.startswith(self.sent) and len(text) > len(self.sent):  # deltas only ever add
            delta, self.sent = text[len(self.sent) :], text
            await self.on_delta(Heard(delta, final=False))
        return text
