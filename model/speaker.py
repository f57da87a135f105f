"""Who is speaking and how: speaker embeddings (resemblyzer), pitch and a rate for clips without words.

The voice library compares timbres with resemblyzer's GE2E encoder (256-d unit vectors,
weights inside the wheel, so nothing is downloaded). It tells different base voices
apart well but hardly separates espeak variants of one voice, which is why a user's
sample is matched to the nearest built-in timbre and its pitch and speaking rate are
measured separately: pitch as every turn's is (model/paralinguistics.py), and the rate
as syllable-like loudness peaks per second, since a voice sample comes without its words.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from model.audio import SAMPLE_RATE, resample
from model.cores import on_openmp_thread
from model.errors import ModelAssetError
from model.paralinguistics import HOP, frame_power, measure_acoustics

__all__ = ["SpeakerEncoder", "estimate_pitch", "estimate_rate"]

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

        wav = preprocess_wav(resample(audio, sample_rate, SAMPLE_RATE), source_sr=SAMPLE_RATE)
        if wav.size < SAMPLE_RATE // 4:  # silence trimmed away: embed what there is
            wav = resample(audio, sample_rate, SAMPLE_RATE)
        # torch computes on OpenMP's threads: on the process's one thread for them (model/cores.py)
        vector = np.asarray(on_openmp_thread(lambda: self.load().embed_utterance(wav)), dtype=np.float32)
        return vector / (float(np.linalg.norm(vector)) or 1.0)


def estimate_pitch(audio: np.ndarray, sample_rate: int) -> float:
    """Median fundamental frequency in Hz over voiced speech; 0.0 if none is voiced."""
    return measure_acoustics(resample(audio, sample_rate, SAMPLE_RATE)).pitch_hz or 0.0


def estimate_rate(audio: np.ndarray, sample_rate: int) -> float:
    """Syllable-like loudness peaks per second of speech (silences excluded); 0.0 for silence."""
    power = frame_power(resample(audio, sample_rate, SAMPLE_RATE))
    if power.size < 5:
        return 0.0
    envelope = np.convolve(np.sqrt(power), np.ones(5) / 5, mode="same")
    floor = 0.3 * float(np.percentile(envelope, 90))
    speech = envelope > floor
    peaks = 0
    last = -100
    for i in range(1, envelope.size - 1):
        rising = envelope[i] >= envelope[i - 1] and envelope[i] > envelope[i + 1]
        if speech[i] and rising and i - last >= 8:  # nuclei at least 80 ms apart
            peaks += 1
            last = i
    seconds = float(speech.sum()) * HOP / SAMPLE_RATE
    return peaks / seconds if seconds > 0 else 0.0
