"""tiny.en heard again by Whisper base when it was unsure (model/asr.py, `RelistenASR`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.hearing_set import VOICES, speak
from api.settings import Settings
from model.asr import RELISTEN_BELOW, RelistenASR, WhisperASR, packaged_recognizer
from model.base import Transcript
from model.vad import SileroVAD
from model.wer import normalize_words

SILENCE = np.zeros(16_000, dtype=np.float32)
VOICES_BY_NAME = {voice.name: voice for voice in VOICES}


class _Heard(WhisperASR):
    """Says what it was told to and counts how often it was asked (no model)."""

    def __init__(self, heard: Transcript, name: str) -> None:
        self.heard, self.name, self.asked = heard, name, 0

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        self.asked += 1
        return self.heard


BASE = Transcript("What time is it in Oslo?", -0.2, 9)


@pytest.mark.parametrize(
    ("first", "second", "relistened", "kept"),
    [
        (Transcript("What time is it in Tokyo?", -0.12, 9), BASE, False, "first"),  # sure: heard once
        (Transcript("What time is it in our slow?", -0.66, 9), BASE, True, "second"),  # unsure: heard again
        (Transcript("", 0.0), BASE, True, "second"),  # nothing heard: the better ear tries
        (Transcript("Hello.", RELISTEN_BELOW, 3), BASE, False, "first"),  # at the bound: sure enough
        (Transcript("And in Rome.", -0.55, 4), Transcript("And in loom.", -1.03, 4), True, "first"),  # the surer one
        (Transcript("And in Rome.", -0.55, 4), Transcript("", 0.0), True, "first"),  # base heard nothing
    ],
)
def test_an_unsure_transcript_is_heard_again_and_the_surer_kept(
    first: Transcript, second: Transcript, relistened: bool, kept: str
) -> None:
    tiny = _Heard(first, "faster-whisper:tiny.en")
    base = _Heard(second, "faster-whisper:base")
    asr = RelistenASR(tiny, base)
    heard = asr.hear(SILENCE, "Oslo")
    assert heard.text == (first if kept == "first" else second).text
    assert heard.relistened is relistened
    assert (tiny.asked, base.asked) == (1, int(relistened))
    assert asr.name == "faster-whisper:tiny.en+base"


def test_a_heard_stretch_weighs_each_part_by_its_tokens() -> None:
    parts = [Transcript("What time", -0.1, 3), Transcript("", -5.0, 4), Transcript("in Oslo?", -0.5, 1)]
    joined = Transcript.joined(parts, "faster-whisper:tiny.en")
    assert joined.text == "What time in Oslo?" and joined.tokens == 4 and joined.by == "faster-whisper:tiny.en"
    assert joined.logprob == pytest.approx((3 * -0.1 + 1 * -0.5) / 4)


# --- the real path: the packaged recognizers ------------------------------------------------


class _Counted(WhisperASR):
    def __init__(self, inner: WhisperASR) -> None:
        self.inner, self.name, self.asked = inner, inner.name, 0

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        self.asked += 1
        return self.inner.hear(audio, hint)


@pytest.fixture(scope="module")
def default_asr(data_dir: Path) -> RelistenASR:
    asr = packaged_recognizer(Settings().asr_model, data_dir, threads=2)
    assert isinstance(asr, RelistenASR), "the service's recognizer is tiny.en, heard again by base"
    return asr


@pytest.mark.real
def test_clear_speech_is_heard_once(default_asr: RelistenASR) -> None:
    tiny, base = _Counted(default_asr.first), _Counted(default_asr.second)
    asr = RelistenASR(tiny, base, below=default_asr.below)
    clear = SileroVAD().trim(speak("What is the date today in Sydney?", VOICES_BY_NAME["piper-1.0"]))
    assert normalize_words(asr.transcribe(clear)) == ["what", "is", "the", "date", "today", "in", "sydney"]
    assert (tiny.asked, base.asked) == (1, 0)


@pytest.mark.real
@pytest.mark.parametrize(
    ("voice", "said"),
    [  # tiny.en heard "What time has it done to all killed?" and "... news and multi-lake trick cars."
        ("espeak-scotland+m3", "What time is it in Tokyo?"),
        ("espeak-en-029", "Search the web for the latest news about electric cars."),
    ],
)
def test_a_formant_voice_tiny_is_unsure_of_is_heard_right_by_base(
    default_asr: RelistenASR, voice: str, said: str
) -> None:
    tiny, base = _Counted(default_asr.first), _Counted(default_asr.second)
    asr = RelistenASR(tiny, base, below=default_asr.below)
    audio = SileroVAD().trim(speak(said, VOICES_BY_NAME[voice]))
    unsure = default_asr.first.hear(audio)
    assert -5 < unsure.logprob < default_asr.below, unsure
    assert normalize_words(asr.transcribe(audio)) == normalize_words(said)
    assert (tiny.asked, base.asked) == (1, 1)
