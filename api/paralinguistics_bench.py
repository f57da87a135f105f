"""`voicegraph bench paralinguistics`: how right and how cheap the figures of how a turn was said are.

Truth comes from how the speech was made, in the voices of the hearing set (Piper at four
rates, espeak-ng voices and accents; api/hearing_set.py):

- pitch: an "ah" of known period (a pulse train through three formants) gives it in Hz;
  resampling a recording by a factor multiplies its pitch and pace by that factor;
- pace: espeak-ng's words per minute (110 against 220: twice the pace), Piper's length
  scale (1.5: two thirds of it), and resampling;
- loudness: gain adds its decibels.

Each is printed as the share of cases within the tolerance the tests hold (pitch 15 %,
pace 20 %, loudness 1 dB) and the mean and worst error, then what it costs: milliseconds
per turn of about three seconds, against the recognizer on the same audio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from api.hearing_set import SENTENCES, VOICES, Voice, speak
from api.latency_bench import percentile
from model.asr import WhisperASR
from model.audio import SAMPLE_RATE, resample
from model.base import SpeechRecognizer
from model.paralinguistics import measure

__all__ = ["run_paralinguistics_bench"]

_FACTORS = (0.8, 0.9, 1.12, 1.25)
_VOWELS_HZ = (75.0, 100.0, 130.0, 180.0, 240.0, 320.0)
_GAINS_DB = (-18.0, -6.0, 0.0)
_QUESTION = "Could you look up the opening hours of the science museum in Chicago?"


def run_paralinguistics_bench(*, asr: SpeechRecognizer | None = None) -> str:
    """The figures as printable lines; `asr` (default: Whisper) is what the cost is set against."""
    recordings = {voice.name: speak(_QUESTION, voice) for voice in VOICES}
    lines = ["how a turn was said: error against the truth of how the speech was made", ""]
    lines += _row("pitch of a known vowel", [_vowel_error(hz) for hz in _VOWELS_HZ], 0.15)
    pitch, pace = _resampled(recordings)
    lines += _row("pitch, resampled speech", pitch, 0.15)
    lines += _row("pace, resampled speech", pace, 0.20)
    lines += _row("pace, espeak-ng 110 vs 220 wpm", _espeak_pace(), 0.20)
    lines += _row("pace, Piper length 1.0 vs 1.5", _piper_pace(), 0.20)
    loud = _loudness(recordings)
    lines.append(
        f"  {'loudness, gain -18/-6/0 dB':32} order right {loud[0]}/{len(recordings)}, "
        f"step error mean {loud[1]:.2f} dB, worst {loud[2]:.2f} dB"
    )
    lines += ["", *_cost(recordings, asr or WhisperASR())]
    return "\n".join(lines)


def _row(name: str, errors: Sequence[float], tolerance: float) -> list[str]:
    within = sum(e <= tolerance for e in errors)
    return [
        f"  {name:32} within {tolerance:.0%}: {within}/{len(errors)}, "
        f"error mean {statistics.fmean(errors):.1%}, worst {max(errors):.1%}"
    ]


def _error(measured: float | None, truth: float) -> float:
    return 1.0 if measured is None else abs(measured / truth - 1)


def _vowel_error(f0: float) -> float:
    from scipy.signal import lfilter

    period = round(SAMPLE_RATE / f0)
    signal = np.zeros(int(1.5 * SAMPLE_RATE))
    signal[::period] = 1.0
    for centre, bandwidth in ((700, 100), (1200, 150), (2500, 200)):
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        signal = lfilter([1.0], [1.0, -2 * radius * np.cos(2 * np.pi * centre / SAMPLE_RATE), radius**2], signal)
    audio = np.concatenate([np.zeros(4000), 0.5 * signal / np.abs(signal).max(), np.zeros(4000)])
    return _error(measure(audio.astype(np.float32), "ah").pitch_hz, SAMPLE_RATE / period)


def _ratio_error(before: float | None, after: float | None, truth: float) -> float:
    return 1.0 if not before or after is None else _error(after / before, truth)


def _resampled(recordings: dict[str, np.ndarray]) -> tuple[list[float], list[float]]:
    pitch, pace = [], []
    for audio in recordings.values():
        plain = measure(audio, _QUESTION)
        for factor in _FACTORS:
            moved = measure(resample(audio, SAMPLE_RATE, round(SAMPLE_RATE / factor)), _QUESTION)
            pitch.append(_ratio_error(plain.pitch_hz, moved.pitch_hz, factor))
            pace.append(_ratio_error(plain.rate_wps, moved.rate_wps, factor))
    return pitch, pace


def _espeak_pace() -> list[float]:
    errors = []
    for voice in (v for v in VOICES if v.engine == "espeak"):
        slow, fast = (
            measure(
                speak(_QUESTION, Voice(voice.name, "espeak", espeak_voice=voice.espeak_voice, speed=wpm)), _QUESTION
            )
            for wpm in (110, 220)
        )
        errors.append(_ratio_error(slow.rate_wps, fast.rate_wps, 2.0))
    return errors


def _piper_pace() -> list[float]:
    errors = []
    for sentence in SENTENCES:
        plain, slow = (measure(speak(sentence, Voice("piper", "piper", length_scale=s)), sentence) for s in (1.0, 1.5))
        errors.append(_ratio_error(plain.rate_wps, slow.rate_wps, 1 / 1.5))
    return errors


def _loudness(recordings: dict[str, np.ndarray]) -> tuple[int, float, float]:
    right, errors = 0, []
    for audio in recordings.values():
        levels = [measure(audio * 10 ** (db / 20), _QUESTION).loudness_dbfs or 0.0 for db in _GAINS_DB]
        right += levels == sorted(levels)
        steps = zip(np.diff(levels), np.diff(_GAINS_DB), strict=True)
        errors += [abs(float(measured - truth)) for measured, truth in steps]
    return right, statistics.fmean(errors), max(errors)


def _cost(recordings: dict[str, np.ndarray], asr: SpeechRecognizer) -> list[str]:
    measured = _timed(lambda audio: measure(audio, _QUESTION), recordings.values())
    heard = _timed(asr.transcribe, recordings.values())
    seconds = statistics.fmean(a.size / SAMPLE_RATE for a in recordings.values())
    p50, p90, asr_p50 = percentile(measured, 50), percentile(measured, 90), percentile(heard, 50)
    return [
        f"cost per turn ({len(recordings)} voices, {seconds:.1f} s questions on average):",
        f"  measure   p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  ({p50 / seconds:.1f} ms per second of speech)",
        f"  recognize p50 {asr_p50:6.1f} ms  p90 {percentile(heard, 90):6.1f} ms  ({asr.name}, same audio)",
        f"  measuring costs {p50 / max(asr_p50, 1e-6):.2f}x the recognizer, on a thread beside it; "
        f"goal <= 30 ms for a 3 s question: {p90 / seconds * 3:.1f} ms at p90",
    ]


def _timed(work: Callable[[np.ndarray], object], audios: Iterable[np.ndarray]) -> list[float]:
    times = []
    for audio in audios:
        work(audio)  # warm
        started = time.perf_counter()
        for _ in range(3):
            work(audio)
        times.append((time.perf_counter() - started) / 3 * 1000)
    return times
