"""The planner waits while the turn's first audio is synthesized, and only then: on two cores
the two halve each other's speed, and the first audio is what the user waits for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from agent.events import AnswerText, Line, NodeEvent
from agent.speech import FirstAudioGate, speak_along
from model.base import SpeechSynthesizer

pytestmark = pytest.mark.anyio

SYNTH_S = 0.3


@dataclass
class SlowVoice(SpeechSynthesizer):
    """Takes SYNTH_S to say anything; notes when each synthesis began and ended."""

    sample_rate: int = 16000
    name: str = "slow"
    times: list[tuple[str, float, float]] = field(default_factory=list)

    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        started = time.monotonic()
        time.sleep(SYNTH_S)
        self.times.append((text, started, time.monotonic()))
        yield np.zeros(160, dtype=np.float32)


async def _planner_tokens(gate: FirstAudioGate, count: int, into: list[float]) -> None:
    """A planner's worker thread: `pace` before each token, as the cascade's steps do."""

    def work() -> None:
        for _ in range(count):
            gate.wait()
            into.append(time.monotonic())
            time.sleep(0.02)

    await asyncio.to_thread(work)


async def test_tokens_wait_for_the_first_audio_and_not_for_the_rest() -> None:
    gate = FirstAudioGate(max_wait_s=5.0)
    voice = SlowVoice()
    tokens: list[float] = []
    line_said = asyncio.Event()

    async def events() -> AsyncIterator[NodeEvent]:
        yield Line("Let me check the time in Tokyo.")
        await asyncio.sleep(0.05)  # the synthesis has begun when the planner goes on
        line_said.set()
        yield AnswerText("It is noon in Tokyo. ")
        yield AnswerText("Have a nice day.")

    async def plan() -> None:
        await line_said.wait()
        await _planner_tokens(gate, 20, tokens)

    planner = asyncio.create_task(plan())
    async for _ in speak_along(events(), voice, speak_text=True, spoken=[], gate=gate):
        pass
    await planner
    first_ended = voice.times[0][2]
    assert tokens[0] >= first_ended - 0.01, "a token was taken while the first audio was synthesized"
    later = [t for t in tokens if voice.times[1][1] < t < voice.times[1][2]]
    assert later, "the planner waited for audio after the first"


def test_an_unopened_gate_never_holds_the_planner_longer_than_its_bound() -> None:
    gate = FirstAudioGate(max_wait_s=0.05)
    gate.speaking()
    started = time.monotonic()
    gate.wait()
    assert time.monotonic() - started < 1.0
    gate.spoke()
    gate.speaking()  # after the first audio, nothing holds it again
    assert _returns_at_once(gate)


def _returns_at_once(gate: FirstAudioGate) -> bool:
    started = time.monotonic()
    gate.wait()
    return time.monotonic() - started < 0.01
