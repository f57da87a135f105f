"""How something was said, measured from the audio: pitch, loudness, pace, pauses.

A speech-native planner (Step-Audio 2) hears this itself; the cascade's recognizer keeps
only the words, so a hurried, loud question and a slow, quiet one read the same. These
figures need no model and cost a few milliseconds for a few seconds of speech:

- **speech**: 25 ms frames every 10 ms whose level stands out from the recording's own
  noise floor. A silence of `PAUSE_S` or more between the first and the last speech frame
  is a pause; the time spoken leaves the pauses out.
- **loudness**: the RMS level of the speech frames in dB full scale (0 is a full-scale
  square wave), so adding gain adds exactly that many dB.
- **pitch**: YIN (de Cheveigné and Kawahara, 2002) on 40 ms frames every 10 ms, all frames at
  once through FFTs: the median over voiced speech frames, the range between its 10th and
  90th percentiles in semitones, and whether the last fifth of the voiced frames sits
  above or below the rest (a rising end is how a question often sounds).
- **rate**: the transcript's words over the time spoken. Taking the words from the
  transcript rather than the recognizer's word timings serves every path alike: the
  realtime transcript, built while the user speaks, has no word timings.
- **hesitations**: filler words (um, uh, er, hmm) and words said twice in a row.

Nothing here judges what the figures mean (fast for whom?): agent/cues.py compares them
with the speaker's own earlier turns.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from model.audio import SAMPLE_RATE

__all__ = ["HOP", "PAUSE_S", "Acoustics", "Paralinguistics", "frame_power", "measure", "measure_acoustics"]

PitchEnd = Literal["rising", "falling", "level"]

HOP = SAMPLE_RATE // 100
"""10 ms: one frame per hop, for level and pitch alike."""
_LEVEL_WINDOW = SAMPLE_RATE // 40  # 25 ms
_YIN_WINDOW = SAMPLE_RATE // 32  # 31 ms integrated; the frame reaches one longest period further
_MIN_F0, _MAX_F0 = 60.0, 500.0
_YIN_THRESHOLD = 0.15
_VOICED_MAX = 0.35
"""A frame whose best dip stays above this is unvoiced (noise, a fricative), whatever its level."""
PAUSE_S = 0.25
_SILENCE_DB = -100.0
_DYNAMIC_DB = 35.0
"""Speech frames are within this of the loudest (95th percentile) frames..."""
_ABOVE_FLOOR = 0.4
"""...and above the noise floor by this share of the way up to them."""
_END_SHARE = 0.2
_LOCAL_FRAMES = 31
_OCTAVE_JUMP = 8.0
_END_ST = 1.5
"""How far (semitones) the end must sit from the rest to count as rising or falling."""
_FILLERS = re.compile(r"\b(?:u+m+|u+h+|e+r+m*|a+h+|h+m+|m{2,})\b", re.IGNORECASE)
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class Acoustics:
    """What the audio alone says; the words come later (`with_words`)."""

    speech_s: float
    """Time spoken: from the first speech to the last, pauses left out."""
    pauses: int
    pause_s: float
    loudness_dbfs: float | None
    pitch_hz: float | None
    """Median fundamental frequency of the voiced frames; None when none is voiced."""
    pitch_range_st: float | None
    pitch_end: PitchEnd | None

    def with_words(self, transcript: str) -> Paralinguistics:
        words = _WORD.findall(transcript.lower())
        rate = len(words) / float(self.speech_s) if words and self.speech_s >= 0.3 else None
        fillers = len(_FILLERS.findall(transcript))
        repeats = sum(1 for a, b in itertools.pairwise(words) if a == b and not _FILLERS.fullmatch(a))
        return Paralinguistics(
            **asdict(self), rate_wps=None if rate is None else round(rate, 2), hesitations=fillers + repeats
        )


_SILENT = Acoustics(
    speech_s=0.0, pauses=0, pause_s=0.0, loudness_dbfs=None, pitch_hz=None, pitch_range_st=None, pitch_end=None
)
"""What audio with no speech in it measures."""


@dataclass(frozen=True)
class Paralinguistics(Acoustics):
    """How a turn was said: the audio's figures and the pace of its words."""

    rate_wps: float | None
    """Words per second spoken, pauses left out; None without words."""
    hesitations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(audio: np.ndarray, transcript: str) -> Paralinguistics:
    """Pitch, loudness, pace and pauses of 16 kHz mono float32 `audio` in which `transcript` was said."""
    return measure_acoustics(audio).with_words(transcript)


def measure_acoustics(audio: np.ndarray) -> Acoustics:
    """Everything but the pace of the words, which needs the transcript."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if samples.size < _LEVEL_WINDOW:
        return _SILENT
    power = frame_power(samples)
    level = 10 * np.log10(np.maximum(power, 10 ** (_SILENCE_DB / 10)))
    speech = _speech_frames(level)
    if not speech.any():
        return _SILENT
    first, last = np.flatnonzero(speech)[[0, -1]]
    pauses, pause_frames = _pauses(speech[first : last + 1])
    loudness = 10 * float(np.log10(power[speech].mean()))
    f0 = _yin(samples, len(level))
    voiced = f0[speech[: len(f0)]]
    voiced = voiced[voiced > 0]
    pitch = _pitch_figures(voiced)
    return Acoustics(
        speech_s=round(float(last - first + 1 - pause_frames) * HOP / SAMPLE_RATE, 2),
        pauses=pauses,
        pause_s=round(pause_frames * HOP / SAMPLE_RATE, 2),
        loudness_dbfs=round(loudness, 1),
        pitch_hz=pitch[0],
        pitch_range_st=pitch[1],
        pitch_end=pitch[2],
    )


def frame_power(samples: np.ndarray) -> np.ndarray:
    """Mean square of each 25 ms frame of 16 kHz `samples`, one every `HOP` (the last frames padded
    with silence)."""
    padded = np.concatenate([samples, np.zeros(_LEVEL_WINDOW, np.float32)])
    squares = np.concatenate([[0.0], np.cumsum(padded.astype(np.float64) ** 2)])
    starts = np.arange(0, samples.size, HOP)
    return (squares[starts + _LEVEL_WINDOW] - squares[starts]) / _LEVEL_WINDOW


def _speech_frames(level: np.ndarray) -> np.ndarray:
    loud = float(np.percentile(level, 95))
    floor = float(np.percentile(level, 10))
    threshold = max(loud - _DYNAMIC_DB, floor + _ABOVE_FLOOR * (loud - floor))
    return np.asarray(level > threshold)


def _pauses(speech: np.ndarray) -> tuple[int, int]:
    """How many silences of `PAUSE_S` or more lie between the speech frames, and their frames."""
    edges = np.diff(np.concatenate([[1], speech.astype(np.int8), [1]]))
    starts, ends = np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)
    lengths = ends - starts
    long = lengths[lengths * HOP >= PAUSE_S * SAMPLE_RATE]
    return len(long), int(long.sum())


def _yin(samples: np.ndarray, frames: int) -> np.ndarray:
    """The fundamental frequency of each 10 ms frame in Hz, 0 where unvoiced."""
    min_lag, max_lag = int(SAMPLE_RATE / _MAX_F0), int(SAMPLE_RATE / _MIN_F0)
    width = _YIN_WINDOW + max_lag
    padded = np.concatenate([samples, np.zeros(width, np.float32)]).astype(np.float64)
    block = sliding_window_view(padded, width)[: frames * HOP : HOP]
    head = block[:, :_YIN_WINDOW]
    size = 1 << int(np.ceil(np.log2(width + _YIN_WINDOW)))
    # r[t] = sum_j head[j] * block[j + t]: one cross-correlation per frame, by FFT.
    corr = np.fft.irfft(np.conj(np.fft.rfft(head, size)) * np.fft.rfft(block, size), size)[:, : max_lag + 1]
    energy = np.concatenate([np.zeros((len(block), 1)), np.cumsum(block**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    shifted = energy[:, lags + _YIN_WINDOW] - energy[:, lags]
    diff = np.maximum(shifted[:, :1] + shifted - 2 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    window = cmnd[:, min_lag:]
    below = window < _YIN_THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), window.argmin(axis=1))
    f0 = np.zeros(len(block))
    for i, start in enumerate(first):
        # The dip that follows the first crossing, not the one a period later.
        stop = min(window.shape[1], start + max(2, (start + min_lag) // 2))
        lag = start + int(window[i, start:stop].argmin())
        if window[i, lag] > _VOICED_MAX:
            continue
        f0[i] = SAMPLE_RATE / _refine(window[i], lag, min_lag)
    return f0


def _refine(cmnd: np.ndarray, lag: int, offset: int) -> float:
    """The dip's lag to a fraction of a sample, through the parabola on its neighbours."""
    if 0 < lag < len(cmnd) - 1:
        a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
        bend = a - 2 * b + c
        if bend > 0:
            return lag + offset + 0.5 * (a - c) / bend
    return float(lag + offset)


def _pitch_figures(voiced: np.ndarray) -> tuple[float | None, float | None, PitchEnd | None]:
    """Median (Hz), 10th-90th percentile range (semitones) and how the voiced frames end."""
    if voiced.size < 5:
        return None, None, None
    tones = _octave_folded(12 * np.log2(voiced / 100.0))
    low, high = np.percentile(tones, [10, 90])
    tail = max(3, round(voiced.size * _END_SHARE))
    lift = float(np.median(tones[-tail:]) - np.median(tones[:-tail]))
    end: PitchEnd = "rising" if lift >= _END_ST else "falling" if lift <= -_END_ST else "level"
    return round(100.0 * 2 ** (float(np.median(tones)) / 12), 1), round(float(high - low), 1), end


def _octave_folded(tones: np.ndarray) -> np.ndarray:
    """Pitch in semitones with octave errors folded back: YIN now and then takes half or twice the
    period (a frame an octave off its neighbours), which would widen the range by an octave.
    A frame more than `_OCTAVE_JUMP` semitones off the median of the frames around it moves
    an octave towards them; speech itself does not leap that far in 10 ms."""
    half = _LOCAL_FRAMES // 2
    padded = np.pad(tones, half, mode="edge")
    local = np.median(sliding_window_view(padded, 2 * half + 1), axis=1)
    off = tones - local
    return np.where(off > _OCTAVE_JUMP, tones - 12, np.where(off < -_OCTAVE_JUMP, tones + 12, tones))
