"""Live turn detection: when a user starts speaking into a stream, and when they have stopped.

Audio goes in as it arrives (16 kHz mono float32); Silero gives each 32 ms window a speech
probability. Speech has started once `min_speech_ms` of windows in a row reach
`threshold` (shorter bursts are clicks and breaths); it has stopped once `silence_ms`
of windows stay below a lower threshold (the hysteresis Silero's own iterator uses, so a
probability wavering around the threshold does not end a turn). The speech's audio
reaches back `prefix_ms` before its onset, as Silero finds onsets late and soft first
sounds ("Wh-") score low, and it ends `tail_ms` after the last speech window.

This is OpenAI Realtime's `server_vad` (threshold, prefix padding, silence duration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.audio import SAMPLE_RATE
from model.vad import SpeechProbabilities

__all__ = ["SpeechStarted", "SpeechStopped", "TurnDetector"]

_WINDOW_MS = SpeechProbabilities.window * 1000 // SAMPLE_RATE


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int
    """Where the speech begins in the stream (its prefix padding included)."""


@dataclass(frozen=True, eq=False)
class SpeechStopped:
    at_ms: int
    """Where the speech ends in the stream (after its last speech window)."""
    audio: np.ndarray
    """The speech, from its padded start to `tail_ms` past its end, 16 kHz float32."""
    spoken_samples: int
    """How much of `audio` lies before the end of the speech (the tail not counted)."""


class TurnDetector:
    """Finds turns in one live stream; every position is in ms from the stream's start."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        prefix_ms: int = 300,
        silence_ms: int = 500,
        min_speech_ms: int = 96,
        tail_ms: int = 200,
        max_kept_ms: int = 600_000,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must lie between 0 and 1")
        self.threshold = threshold
        self.prefix_ms = prefix_ms
        self.silence_ms = silence_ms
        self.min_speech_ms = min_speech_ms
        self.tail_ms = tail_ms
        self._max_kept = max_kept_ms * SAMPLE_RATE // 1000
        self._probabilities = SpeechProbabilities()
        self._audio = np.zeros(0, np.float32)
        self._dropped = 0
        """Samples dropped from the front of `_audio` (the stream before what is kept)."""
        self._windows = 0
        self._run_ms = 0
        """Speech windows in a row (before speech starts), or silent ones (while it lasts)."""
        self._start_ms: int | None = None
        self._last_speech_ms = 0

    @property
    def speaking(self) -> bool:
        return self._start_ms is not None

    @property
    def pausing(self) -> bool:
        """Someone was speaking and the latest windows are silent (the turn may be ending)."""
        return self._start_ms is not None and self._run_ms > 0

    @property
    def silent_for_ms(self) -> int:
        """How long the current speech has been silent (0 while words come, or when no one speaks)."""
        return self._run_ms if self._start_ms is not None else 0

    @property
    def position_ms(self) -> int:
        return (self._dropped + len(self._audio)) * 1000 // SAMPLE_RATE

    def speech_so_far(self) -> np.ndarray:
        """The current speech's audio up to now (empty when no one is speaking)."""
        return self._slice(self._start_ms, self.position_ms) if self._start_ms is not None else self._audio[:0]

    def spoken_samples(self) -> int:
        """How much of the current speech lies before its last speech window (silence after it
        not counted); 0 when no one is speaking."""
        if self._start_ms is None:
            return 0
        return (self._last_speech_ms - self._start_ms) * SAMPLE_RATE // 1000

    def feed(self, audio: np.ndarray) -> list[SpeechStarted | SpeechStopped]:
        """Take more of the stream; what started or stopped in it."""
        self._audio = np.concatenate([self._audio, np.asarray(audio, np.float32)])
        events: list[SpeechStarted | SpeechStopped] = []
        for probability in self._probabilities.feed(audio):
            self._windows += 1
            end_ms = self._windows * _WINDOW_MS
            if self._start_ms is None:
                self._run_ms = self._run_ms + _WINDOW_MS if probability >= self.threshold else 0
                if self._run_ms >= self.min_speech_ms:
                    self._start_ms = max(0, end_ms - self._run_ms - self.prefix_ms)
                    self._last_speech_ms, self._run_ms = end_ms, 0
                    events.append(SpeechStarted(self._start_ms))
            elif probability >= self.threshold - 0.15:
                self._last_speech_ms, self._run_ms = end_ms, 0
            else:
                self._run_ms += _WINDOW_MS
                if self._run_ms >= self.silence_ms:
                    stop = self._last_speech_ms
                    spoken = (stop - self._start_ms) * SAMPLE_RATE // 1000
                    events.append(SpeechStopped(stop, self._slice(self._start_ms, stop + self.tail_ms), spoken))
                    self._start_ms, self._run_ms = None, 0
        self._forget()
        return events

    def _slice(self, start_ms: int, end_ms: int) -> np.ndarray:
        start = max(0, start_ms * SAMPLE_RATE // 1000 - self._dropped)
        end = max(start, end_ms * SAMPLE_RATE // 1000 - self._dropped)
        return self._audio[start:end].copy()

    def _forget(self) -> None:
        """Keep only what a turn may still need: the current speech, or the prefix padding."""
        keep_from = self._start_ms if self._start_ms is not None else self.position_ms - self.prefix_ms
        cut = keep_from * SAMPLE_RATE // 1000 - self._dropped
        cut = max(cut, len(self._audio) - self._max_kept)
        if cut > 0:
            self._audio = self._audio[cut:]
            self._dropped += cut
