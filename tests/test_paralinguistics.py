"""How it was said: the figures against speech whose truth is known, and what the agent makes of them.

Truth comes from how the speech was made: a pulse train of a given period (pitch in Hz),
resampling (pitch and pace times the factor), espeak-ng's `-s` (words per minute) and
`-p`, Piper's length scale (pace divided by it), and gain (loudness up by its dB).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy.signal import lfilter

from agent.cues import Cue, SpeakerBaseline, describe, public, update_baseline, with_cue
from api.paralinguistics_bench import run_paralinguistics_bench
from model.audio import SAMPLE_RATE, decode_audio, resample
from model.base import SpeechRecognizer
from model.paralinguistics import Paralinguistics, measure
from model.voices import restyled
from tests.speech import espeak_wav, piper_wav

QUESTION = "What time is it in Tokyo right now?"
WORDS = len(QUESTION.split())
PITCH_TOLERANCE = 0.15
RATE_TOLERANCE = 0.20


def _heard(wav: bytes) -> Paralinguistics:
    return measure(decode_audio(wav), QUESTION)


def _vowel(f0: float, seconds: float = 1.5) -> np.ndarray:
    """An "ah" at pitch `f0`: a pulse train through three formant resonators, between silences."""
    pulses = np.zeros(int(SAMPLE_RATE * seconds))
    pulses[:: round(SAMPLE_RATE / f0)] = 1.0
    signal = pulses
    for centre, bandwidth in ((700, 100), (1200, 150), (2500, 200)):
        radius = math.exp(-math.pi * bandwidth / SAMPLE_RATE)
        angle = 2 * math.pi * centre / SAMPLE_RATE
        signal = lfilter([1.0], [1.0, -2 * radius * math.cos(angle), radius**2], signal)
    signal = 0.5 * signal / np.abs(signal).max()
    silence = np.zeros(SAMPLE_RATE // 4)
    return np.concatenate([silence, signal, silence]).astype(np.float32)


@pytest.mark.parametrize("f0", [85.0, 120.0, 210.0, 320.0])
def test_pitch_of_a_vowel_with_a_known_period(f0: float) -> None:
    true_f0 = SAMPLE_RATE / round(SAMPLE_RATE / f0)
    heard = measure(_vowel(f0), "ah")
    assert heard.pitch_hz is not None
    assert heard.pitch_hz == pytest.approx(true_f0, rel=0.02)
    assert heard.pitch_range_st is not None and heard.pitch_range_st < 0.5


@pytest.mark.parametrize("factor", [0.8, 1.25])
@pytest.mark.parametrize("voice", ["en-us", "en-us+f2", "en-gb-scotland+m3"])
def test_resampled_speech_moves_pitch_and_pace_by_the_factor(voice: str, factor: float) -> None:
    audio = decode_audio(espeak_wav(QUESTION, voice=voice))
    faster = resample(audio, SAMPLE_RATE, round(SAMPLE_RATE / factor))  # played back `factor` times as fast
    before, after = measure(audio, QUESTION), measure(faster, QUESTION)
    assert before.pitch_hz and after.pitch_hz and before.rate_wps and after.rate_wps
    assert after.pitch_hz / before.pitch_hz == pytest.approx(factor, rel=PITCH_TOLERANCE)
    assert after.rate_wps / before.rate_wps == pytest.approx(factor, rel=RATE_TOLERANCE)


def test_espeak_pitch_setting_orders_the_pitch() -> None:
    pitches = [_heard(espeak_wav(QUESTION, pitch=p)).pitch_hz for p in (20, 50, 85)]
    assert all(p is not None for p in pitches)
    assert pitches == sorted(pitches)
    assert pitches[2] / pitches[0] > 1.3  # type: ignore[operator]


@pytest.mark.parametrize("voice", ["en-us", "en-us+f2"])
def test_espeak_words_per_minute_set_the_pace(voice: str) -> None:
    slow = _heard(espeak_wav(QUESTION, speed=110, voice=voice))
    fast = _heard(espeak_wav(QUESTION, speed=220, voice=voice))
    assert slow.rate_wps and fast.rate_wps
    assert fast.rate_wps / slow.rate_wps == pytest.approx(2.0, rel=RATE_TOLERANCE)


def test_piper_length_scale_sets_the_pace() -> None:
    plain = _heard(piper_wav(QUESTION, length_scale=1.0))
    drawn_out = _heard(piper_wav(QUESTION, length_scale=1.5))
    assert plain.rate_wps and drawn_out.rate_wps
    assert drawn_out.rate_wps / plain.rate_wps == pytest.approx(1 / 1.5, rel=RATE_TOLERANCE)
    assert plain.pitch_hz and drawn_out.pitch_hz
    assert drawn_out.pitch_hz == pytest.approx(plain.pitch_hz, rel=PITCH_TOLERANCE)  # the pace alone changed


def test_gain_raises_loudness_by_its_decibels() -> None:
    audio = decode_audio(espeak_wav(QUESTION))
    levels = [measure(audio * 10 ** (db / 20), QUESTION).loudness_dbfs for db in (-18, -6, 0)]
    assert all(level is not None for level in levels)
    assert levels == sorted(levels)
    assert levels[1] - levels[0] == pytest.approx(12.0, abs=0.5)  # type: ignore[operator]
    assert levels[2] - levels[1] == pytest.approx(6.0, abs=0.5)  # type: ignore[operator]


def test_noise_moves_pitch_and_pace_little() -> None:
    audio = decode_audio(espeak_wav(QUESTION))
    speech_level = float(np.sqrt(np.mean(audio[np.abs(audio) > 0.01] ** 2)))
    noise = np.random.default_rng(7).standard_normal(audio.size).astype(np.float32) * speech_level / 10  # 20 dB SNR
    clean, noisy = measure(audio, QUESTION), measure(audio + noise, QUESTION)
    assert clean.pitch_hz and noisy.pitch_hz and clean.rate_wps and noisy.rate_wps
    assert noisy.pitch_hz == pytest.approx(clean.pitch_hz, rel=0.05)
    assert noisy.rate_wps == pytest.approx(clean.rate_wps, rel=0.1)


def test_pauses_are_found_and_left_out_of_the_pace() -> None:
    first = decode_audio(espeak_wav("What time is it"))
    second = decode_audio(espeak_wav("in Tokyo right now?"))
    gap = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)
    together = measure(np.concatenate([first, second]), QUESTION)
    apart = measure(np.concatenate([first, gap, second]), QUESTION)
    assert apart.pauses >= 1
    assert apart.pause_s >= 0.6
    assert apart.rate_wps == pytest.approx(together.rate_wps, rel=0.1)


def test_hesitations_are_fillers_and_repeated_words() -> None:
    audio = decode_audio(espeak_wav(QUESTION))
    assert measure(audio, QUESTION).hesitations == 0
    assert measure(audio, "Um, what what time is it, uh, in Tokyo?").hesitations == 3


def test_silence_and_scraps_have_no_figures() -> None:
    silent = measure(np.zeros(SAMPLE_RATE, np.float32), "")
    assert (silent.pitch_hz, silent.rate_wps, silent.loudness_dbfs, silent.speech_s) == (None, None, None, 0.0)
    assert measure(np.zeros(10, np.float32), "").pitch_hz is None


def _figures(**changes: object) -> Paralinguistics:
    plain = {
        "speech_s": 2.0,
        "pauses": 0,
        "pause_s": 0.0,
        "loudness_dbfs": -20.0,
        "pitch_hz": 120.0,
        "pitch_range_st": 4.0,
        "pitch_end": "level",
        "rate_wps": 3.5,
        "hesitations": 0,
    }
    return Paralinguistics(**(plain | changes))  # type: ignore[arg-type]


def test_an_ordinary_turn_has_no_cue() -> None:
    cue = describe(_figures(), None)
    assert cue == Cue(text="")
    assert cue.delivery is None
    assert with_cue("What time is it?", cue) == "What time is it?"


def test_first_turn_is_described_by_broad_bands() -> None:
    cue = describe(_figures(rate_wps=6.8, loudness_dbfs=-9.0, pitch_hz=300.0, pitch_end="rising"), None)
    assert cue.text == "spoken fast and loud; pitch high, rising at the end"
    assert cue.delivery is not None and cue.delivery.rate < 1
    assert with_cue("Hi", cue) == "Hi\n[spoken fast and loud; pitch high, rising at the end]"
    quiet = describe(_figures(rate_wps=1.8, loudness_dbfs=-40.0, pauses=1, hesitations=2), None)
    assert quiet.text == "spoken slow and quietly; hesitant, with pauses"


def test_later_turns_are_described_against_the_speaker() -> None:
    baseline: SpeakerBaseline | None = None
    for _ in range(2):
        baseline = update_baseline(baseline, _figures())
    assert baseline is not None and baseline["turns"] == 2
    # The same figures that were plain for this speaker stay plain; a change shows.
    assert describe(_figures(), baseline).text == ""
    faster = describe(_figures(rate_wps=4.6, pitch_hz=150.0, loudness_dbfs=-13.0), baseline)
    assert faster.text == "spoken faster and louder than before; pitch higher than before"
    assert describe(_figures(rate_wps=2.6, pitch_hz=95.0), baseline).text == (
        "spoken slower than before; pitch lower than before"
    )
    # Absolute bands do not apply once the speaker is known: 6.8 words a second is this one's pace.
    quick = update_baseline(None, _figures(rate_wps=6.8))
    assert describe(_figures(rate_wps=7.0), quick).text == ""


def test_baseline_averages_each_figure_over_the_turns_that_had_it() -> None:
    baseline = update_baseline(None, _figures(pitch_hz=100.0, rate_wps=3.0))
    baseline = update_baseline(baseline, _figures(pitch_hz=None, rate_wps=4.0))
    assert baseline["pitch_st"] == pytest.approx(0.0)
    assert baseline["rate_wps"] == pytest.approx(3.5)
    assert baseline["turns"] == 2


def test_delivery_follows_the_cue_within_the_session_voice() -> None:
    hurried = describe(_figures(rate_wps=6.8), None)
    figures = public(_figures(rate_wps=6.8), hurried, adapted=True)
    delivery = figures["delivery"]
    assert delivery == {"pitch": 0.95, "rate": 0.88}
    assert public(_figures(rate_wps=6.8), hurried, adapted=False)["delivery"] is None
    assert restyled(None, delivery["pitch"], delivery["rate"]) == "piper:joe:p0.95-r0.88"
    assert restyled("espeak:en-gb+m3:slow", 1.0, 0.9) == "espeak:en-gb+m3:r0.70"
    assert restyled("not-a-voice", 1.0, 0.9) == "not-a-voice"


class _Instant(SpeechRecognizer):
    name = "instant"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return QUESTION


def test_the_benchmark_finds_every_figure_within_its_tolerance() -> None:
    """`voicegraph bench paralinguistics` over the hearing set's voices (the recognizer it is
    set against stubbed: its cost is not what is checked)."""
    table = run_paralinguistics_bench(asr=_Instant())
    rows = re.findall(r"within (\d+)%: (\d+)/(\d+)", table)
    assert len(rows) == 5, table
    assert all(int(hit) == int(total) > 0 for _, hit, total in rows), table
    assert re.search(r"order right (\d+)/\1,", table), table
    assert "measure   p50" in table and "instant, same audio" in table


@pytest.mark.parametrize(
    "question",
    ["Hello there, how are you doing today?", "Can you tell me a fun fact about octopuses?", QUESTION],
)
def test_ordinary_speech_in_the_default_voice_has_no_cue(question: str) -> None:
    """Piper's own voice at its own pace is no one's idea of fast, slow, high or lively: a first
    turn said that way leaves the prompt as the words alone (YIN's octave slips folded back: an
    unfolded slip alone spans 12 semitones and more). Piper samples its delivery, so the range
    moves from run to run (9-12.4 semitones seen); a first turn is lively only from 15 on."""
    heard = measure(decode_audio(piper_wav(question, length_scale=1.0)), question)
    assert heard.pitch_range_st is not None and heard.pitch_range_st < 14, heard
    assert describe(heard, None).text == "", heard
