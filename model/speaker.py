"""Who is speaking and how: speaker embeddings (resemblyzer) and rough pitch and rate estimates.

The voice library compares timbres with resemblyzer's GE2E encoder (256-d unit vectors,
weights inside the wheel, so nothing is downloaded). It tells different base voices
apart well but hardly separates espeak variants of one voice, which is why a user's
sample is matched to the nearest built-in timbre and its pitch and speaking rate are
measured separately, with the plain estimators below: they need to be comparable
between clips, not exact.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from model.audio import resample
from model.errors import ModelAssetError

__all__ = ["SpeakerEncoder", "estimate_pitch", "estimate_rate"]

_RATE = 16_000
_MISSING = "speaker embeddings need resemblyzer: pip install 'resemblyzer>=0.1.4' ({error})"
_ENCODERS: dict[str, Any] = {}
_LOCK = threading.Lock()


class SpeakerEncoder:
    """resemblyzer's VoiceEncoder, loaded once per process and device on first use."""

    def __init__(self, device: str = "cpu") -> None:
        self._device = device

    def load(self) -> Any:
        with _LOCK:
            encoder = _ENCODERS.get(self._device)
            if encoder is None:
                try:
                    from resemblyzer import VoiceEncoder
                except ImportError as error:
                    raise ModelAssetError(_MISSING.format(error=error)) from error
                encoder = VoiceEncoder(self._device, verbose=False)
                _ENCODERS[self._device] = encoder
            return encoder

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """A unit vector for the voice in `audio` (float32 mono)."""
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(resample(audio, sample_rate, _RATE), source_sr=_RATE)
        if wav.size < _RATE // 4:  # silence trimmed away: embed what there is
            wav = resample(audio, sample_rate, _RATE)
        vector = np.asarray(self.load().embed_utterance(wav), dtype=np.float32)
        return vector / (float(np.linalg.norm(vector)) or 1.0)


def estimate_pitch(audio: np.ndarray, sample_rate: int) -> float:
    """Median fundamental frequency in Hz over voiced frames (autocorrelation); 0.0 if none."""
    wav = resample(audio, sample_rate, _RATE)
    frame, hop = 640, 320  # 40 ms frames, 20 ms apart
    low, high = _RATE // 400, _RATE // 60  # lags for 400 Hz .. 60 Hz
    loudness = _frame_rms(wav, frame, hop)
    if loudness.size == 0:
        return 0.0
    floor = 0.25 * float(np.percentile(loudness, 90))
    found: list[float] = []
    for index, rms in enumerate(loudness):
        if rms < floor:
            continue
        chunk = wav[index * hop : index * hop + frame]
        chunk = chunk - chunk.mean()
        corr = np.correlate(chunk, chunk, mode="full")[frame - 1 :]
        if corr[0] <= 0:
            continue
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] / corr[0] > 0.45:  # clearly periodic: voiced
            found.append(_RATE / lag)
    return float(np.median(found)) if found else 0.0


def estimate_rate(audio: np.ndarray, sample_rate: int) -> float:
    """Syllable-like loudness peaks per second of speech (silences excluded); 0.0 for silence."""
    wav = resample(audio, sample_rate, _RATE)
    envelope = _frame_rms(wav, 320, 160)  # 10 ms steps
    if envelope.size < 5:
        return 0.0
    envelope = np.convolve(envelope, np.ones(5) / 5, mode="same")
    floor = 0.3 * float(np.percentile(envelope, 90))
    speech = envelope > floor
    peaks = 0
    last = -100
    for i in range(1, envelope.size - 1):
        rising = envelope[i] >= envelope[i - 1] and envelope[i] > envelope[i + 1]
        if speech[i] and rising and i - last >= 8:  # nuclei at least 80 ms apart
            peaks += 1
            last = i
    seconds = float(speech.sum()) / 100
    return peaks / seconds if seconds > 0 else 0.0


def _frame_rms(wav: np.ndarray, frame: int, hop: int) -> np.ndarray:
    count = max(0, 1 + (wav.size - frame) // hop)
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wav, frame)[::hop][:count]
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
