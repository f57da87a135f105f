"""The live transcript of a stream, with a recognizer that counts what it was asked and
keeps the hints it was told."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.events import Heard
from api.realtime_hearing import LiveTranscript
from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer

pytestmark = pytest.mark.anyio


class _Counting(SpeechRecognizer):
    name = "counting"

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.hints: list[str] = []

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        self.asked.append(len(audio))
        self.hints.append(hint)
        return "what time is it in tokyo"


async def _ignore(heard: Heard) -> None:
    return None


async def _ready(live: LiveTranscript, spoken: int) -> str | None:
    for _ in range(200):
        if (text := live.ready(spoken)) is not None:
            return text
        await asyncio.sleep(0.01)
    return None


def _ms(ms: int) -> int:
    return ms * SAMPLE_RATE // 1000


async def test_a_long_pause_keeps_the_transcript_of_all_the_words() -> None:
    """A pause longer than `every_ms` (or than a slow transcription) brings no new words:
    the transcript of them stays ready instead of being replaced by a running one."""
    asr = _Counting()
    live = LiveTranscript(asr, _ignore, every_ms=1000)
    words = _ms(1800)
    live.update(np.zeros(_ms(1900), np.float32), words, pausing=True)
    assert await _ready(live, words) == "what time is it in tokyo"
    live.update(np.zeros(_ms(3100), np.float32), words, pausing=True)  # 1.2 s more silence
    assert live.ready(words) == "what time is it in tokyo"
    assert len(asr.asked) == 1


async def test_new_words_are_transcribed_again_every_so_often() -> None:
    asr = _Counting()
    live = LiveTranscript(asr, _ignore, every_ms=1000)
    live.update(np.zeros(_ms(1000), np.float32), _ms(1000), pausing=False)
    await asyncio.sleep(0.05)
    live.update(np.zeros(_ms(1500), np.float32), _ms(1500), pausing=False)  # not another second yet
    live.update(np.zeros(_ms(2000), np.float32), _ms(2000), pausing=False)
    await asyncio.sleep(0.05)
    assert asr.asked == [_ms(1000), _ms(2000)]


async def test_every_transcription_of_the_stretch_is_told_its_hint_made_once() -> None:
    made: list[str] = []

    async def hint() -> str:
        made.append("hint")
        await asyncio.sleep(0.05)  # still being made when the first transcription starts
        return "Is it raining in Kyoto? Names: Zorblat."

    asr = _Counting()
    live = LiveTranscript(asr, _ignore, hint=hint(), every_ms=1000)
    live.update(np.zeros(_ms(1000), np.float32), _ms(1000), pausing=False)
    await _ready(live, _ms(1000))
    assert await live.final(np.zeros(_ms(1500), np.float32), _ms(1500)) == "what time is it in tokyo"  # heard anew
    assert asr.asked == [_ms(1000), _ms(1500)]
    assert asr.hints == ["Is it raining in Kyoto? Names: Zorblat."] * 2 and made == ["hint"]


async def test_a_hint_that_cannot_be_made_costs_only_the_hint(caplog: pytest.LogCaptureFixture) -> None:
    async def hint() -> str:
        raise ConnectionError("the session memory is down")

    asr = _Counting()
    live = LiveTranscript(asr, _ignore, hint=hint())
    assert await live.final(np.zeros(_ms(800), np.float32), _ms(800)) == "what time is it in tokyo"
    assert asr.hints == [""] and "hint" in caplog.text
