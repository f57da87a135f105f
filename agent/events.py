"""What a turn tells its client as it happens: one typed stream, the same for every face.

The graph's nodes write `NodeEvent`s; the speech stage (agent/speech.py) turns the text in
them into audio and passes the rest on; the runner ends the stream with the turn's result
or its failure. The JSON answer, the server-sent events, the CLI, the benchmarks and the
realtime WebSocket all read this one `TurnEvent` union, and each matches it exhaustively
(`assert_never`), so a new kind of event is a type error in every reader that forgets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model.base import ToolCall
from tools.runtime import CallRecord

if TYPE_CHECKING:
    from agent.outcome import TurnResult

__all__ = [
    "AnswerText",
    "Audio",
    "Heard",
    "Line",
    "NodeEvent",
    "ToolCalled",
    "ToolFinished",
    "TurnDone",
    "TurnEvent",
    "TurnFailed",
]


@dataclass(frozen=True)
class Heard:
    """What the user said (or typed). `final` False: what a transcript that grows while the user
    speaks adds to what it told before (a realtime connection's hearing, api/realtime_hearing.py)."""

    text: str
    final: bool = True


@dataclass(frozen=True)
class AnswerText:
    """The answer as the planner writes it, a piece at a time, and the voice it is to be said in."""

    text: str
    voice: str | None = None


@dataclass(frozen=True)
class Line:
    """A line to say that is not part of the answer: what is being done while tools run, or
    the answer of a speech-native planner that did not speak it. Only the speech stage reads it."""

    text: str
    voice: str | None = None


@dataclass(frozen=True)
class ToolCalled:
    """A call the planner made."""

    call: ToolCall


@dataclass(frozen=True)
class ToolFinished:
    """How a call went (as in the turn's `tool_calls`)."""

    record: CallRecord


@dataclass(frozen=True, eq=False)
class Audio:
    """A chunk of the spoken reply, float32 mono at `sample_rate`.

    `text` is what this chunk begins to say (a sentence or a line), "" for the rest of one
    already begun and for audio a speech-native planner spoke itself.
    """

    audio: np.ndarray
    sample_rate: int
    text: str = ""

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class TurnDone:
    """The turn landed: its result, as the JSON endpoint answers it (less the audio)."""

    result: TurnResult
    tokens: Mapping[str, int] = field(default_factory=dict)
    """The planner's tokens over the turn: input, output and cached (input reused)."""


@dataclass(frozen=True)
class TurnFailed:
    """The turn failed after it started, and the session was left as it was before it."""

    error: Exception


NodeEvent = Heard | AnswerText | Line | ToolCalled | ToolFinished | Audio
"""What the graph's nodes write (`runtime.stream_writer`)."""

TurnEvent = Heard | AnswerText | ToolCalled | ToolFinished | Audio | TurnDone | TurnFailed
"""What a turn's client reads: a `TurnDone` or a `TurnFailed` ends it."""
