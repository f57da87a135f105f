"""What a turn comes to (its result and audio), and what the runner gathers as its events go by."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from agent.events import Audio, TurnEvent
from agent.speech import Spoken
from agent.tracing import ANSWER, AUDIO_OUT_S, FIRST_AUDIO_MS, TIMING_MS, TURN, VOICE, TurnTrace
from model.audio import SAMPLE_RATE, resample
from tools.base import Citation
from tools.runtime import CallRecord

__all__ = ["Progress", "ReplyAudio", "TurnOutput", "TurnResult"]


class TurnResult(TypedDict):
    session_id: str
    turn: int
    transcript: str
    paralinguistics: dict[str, Any] | None
    """How the turn was said (agent/cues.py `public`); None for a typed turn."""
    answer: str
    citations: list[Citation]
    tool_calls: list[CallRecord]
    voice: str | None
    timings_ms: dict[str, float]
    trace_id: str
    """The turn's trace (GET /v1/sessions/{id}/traces, `voicegraph trace`, OTLP)."""


@dataclass(frozen=True)
class TurnOutput:
    result: TurnResult
    audio: np.ndarray
    """The spoken reply, float32 mono at `sample_rate`; empty when not spoken."""
    sample_rate: int
    tokens: Mapping[str, int] = field(default_factory=dict)
    """The planner's tokens over the turn: input, output and cached (input reused)."""


class ReplyAudio:
    """A reply's audio events joined into one clip, at the rate of the first."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._rate = 0

    def add(self, audio: np.ndarray, sample_rate: int) -> None:
        self._rate = self._rate or sample_rate
        self._chunks.append(resample(audio, sample_rate, self._rate))

    def output(self, result: TurnResult, tokens: Mapping[str, int] | None = None) -> TurnOutput:
        audio = np.concatenate(self._chunks).astype(np.float32) if self._chunks else np.zeros(0, np.float32)
        return TurnOutput(result=result, audio=audio, sample_rate=self._rate or SAMPLE_RATE, tokens=tokens or {})


@dataclass
class Progress:
    """What the runner measures of a turn as its events go by, for its result and its trace."""

    started: float = field(default_factory=time.perf_counter)
    first_audio_ms: float | None = None
    audio_out_s: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)
    """The graph's latest state."""
    spoken: list[Spoken] = field(default_factory=list)
    """What the speech stage said."""

    def saw(self, event: TurnEvent) -> None:
        if isinstance(event, Audio):
            if self.first_audio_ms is None:
                self.first_audio_ms = round((time.perf_counter() - self.started) * 1000, 1)
            self.audio_out_s += event.seconds

    def timings(self, trace: TurnTrace) -> dict[str, float]:
        """Time per stage from the turn's spans, with the total and the time to first audio."""
        timings = trace.timings_ms()
        timings["total"] = round((time.perf_counter() - self.started) * 1000, 1)
        if self.first_audio_ms is not None:
            timings["first_audio"] = self.first_audio_ms
        return timings

    def figures(self, trace: TurnTrace, timings: dict[str, float]) -> dict[str, Any]:
        """What the turn's span reports at its end."""
        values = self.values
        return {
            TURN: values.get("turn"),
            VOICE: values.get("voice"),
            FIRST_AUDIO_MS: self.first_audio_ms,
            AUDIO_OUT_S: round(self.audio_out_s, 3),
            ANSWER: trace.content(values.get("answer") or None),
            **{TIMING_MS.format(stage=stage): ms for stage, ms in timings.items() if stage != "first_audio"},
        }
