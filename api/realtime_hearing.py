"""Hearing a live stream: turn detection plus a transcript that grows while the user speaks.

While speech goes on, the speech so far is transcribed again whenever another
`every_ms` of it has come in (one transcription at a time, off the event loop), and what
the new transcript adds to the last is sent as a delta. When the user pauses, the speech
so far is transcribed at once: if they do not go on, that transcript is the final one,
ready when the silence that ends the turn has passed, so the answer need not wait for it.

Every transcription of the stretch is told the same hint (the user's last words, the names
the tenant's tools know), made once as the speech starts, while the first second comes in.
A hint that cannot be made costs the hint, never the words: they are heard without one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from agent.events import Heard
from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer

__all__ = ["LiveTranscript", "hint_or_nothing"]

log = logging.getLogger(__name__)


async def hint_or_nothing(hint: Awaitable[str] | str) -> str:
    """The hint, or "" when it could not be made (the session's memory is down, say)."""
    if isinstance(hint, str):
        return hint
    try:
        return await hint
    except Exception:
        log.warning("could not make the recognizer's hint; hearing without one", exc_info=True)
        return ""


class LiveTranscript:
    """The transcript of one stretch of speech, kept up to date as it grows."""

    def __init__(
        self,
        asr: SpeechRecognizer,
        on_delta: Callable[[Heard], Awaitable[None]],
        *,
        hint: Awaitable[str] | str = "",
        every_ms: int = 1000,
        tolerance_ms: int = 100,
    ) -> None:
        self.asr = asr
        self.on_delta = on_delta
        self._hint = asyncio.ensure_future(hint_or_nothing(hint))
        """Made once for the whole stretch, from when it starts; awaited by the first transcription."""
        self.every = every_ms * SAMPLE_RATE // 1000
        self.tolerance = tolerance_ms * SAMPLE_RATE // 1000
        """How much of the speech a transcript may miss at its end and still be final."""
        self.sent = ""
        """The transcript as far as deltas have told it."""
        self._task: asyncio.Task[str] | None = None
        self._task_samples = 0
        """How much audio the running (or last) transcription was given."""
        self._covered = 0
        """How much of the speech, up to its last word, it was given (silence after not counted)."""

    def update(self, speech: np.ndarray, spoken: int, *, pausing: bool) -> None:
        """The speech so far, `spoken` samples of it up to the last word: transcribe it again
        when another `every_ms` has come in, or when the user pauses after new words.

        Only new words call for another transcription: silence after them does not, or a
        pause longer than one transcription would replace the finished transcript of all
        the words (the one an early answer starts from) by a running one of the same words."""
        if self._task is not None and not self._task.done():
            return
        if spoken > self._covered and (pausing or len(speech) - self._task_samples >= self.every):
            self._task_samples, self._covered = len(speech), spoken
            self._task = asyncio.create_task(self._transcribe(speech.copy()))

    async def final(self, speech: np.ndarray, spoken: int) -> str:
        """The whole speech's transcript: the last one when it was given all its words, else
        transcribed now."""
        if self._task is not None and self._covered >= spoken - self.tolerance:
            text = await self._task
        else:
            if self._task is not None:
                self._task.cancel()
            text = await self._heard(speech)
        return text.strip()

    def ready(self, spoken: int) -> str | None:
        """The transcript of the speech, `spoken` samples of it up to the last word, if one
        that was given all of them is done already; else None."""
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result() if self._covered >= spoken - self.tolerance else None

    def cancel(self) -> None:
        self._hint.cancel()
        if self._task is not None:
            self._task.cancel()

    async def _heard(self, speech: np.ndarray) -> str:
        """`speech` transcribed with the stretch's hint. Shielded: a transcription cancelled
        while the hint is made leaves it for the next."""
        hint = await asyncio.shield(self._hint)
        return await asyncio.to_thread(self.asr.transcribe, speech, hint)

    async def _transcribe(self, speech: np.ndarray) -> str:
        text = (await self._heard(speech)).strip()
        if text.startswith(self.sent) and len(text) > len(self.sent):  # deltas only ever add
            delta, self.sent = text[len(self.sent) :], text
            await self.on_delta(Heard(delta, final=False))
        return text
