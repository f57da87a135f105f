"""Voice activity detection with Silero VAD, to trim silence before ASR and to skip silent turns.

Whisper hallucinates words ("Thank you.") on long silence, so the cascade trims leading and
trailing silence itself (faster-whisper's own `vad_filter` stays off), and refuses a
recording with no speech at all. The trim once cut the first word: a soft onset such as
espeak-ng's "Wh-" in "What time is it in Tokyo?" can come out of Silero as a burst of its
own, shorter than `min_speech_ms` and parted from the rest by a gap; a short burst used to
be dropped as a click, 200 ms of padding did not reach back over the gap, and Whisper heard
"Time isn't talking.". Now short bursts still decide nothing on their own but join the
speech they are near, and half a second of audio is kept beyond the outermost ones (as
faster-whisper's own VAD keeps 400 ms). `voicegraph bench hearing` measures it on a spoken
set of 126 utterances in Piper and espeak-ng voices: no trim cuts into an audible sound any
more (2 of 756 cases did), and the word error rate is that of the untrimmed audio within
run-to-run noise (about a point).

We load the ONNX export: on a 2-core CPU it trimmed 4.6 s of audio in 12 ms against 22 ms for
the TorchScript model (and 7 times faster while other work kept the cores busy), because it
runs single-threaded in onnxruntime and leaves torch's thread pool to the planner. The model
is loaded once per process and shared; Silero keeps recurrent state between windows, so calls
on it are serialised by a lock.

Importing `silero_vad` calls `torch.set_num_threads(1)` for the whole process, which would
halve a torch planner's speed on 2 cores: `_load_model` puts the thread count back.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from model.audio import SAMPLE_RATE
from model.errors import ModelAssetError

__all__ = ["SileroVAD", "SpeechProbabilities"]

_MISSING = "Silero VAD is not installed: pip install silero-vad"


class SileroVAD:
    """Finds where speech starts and ends in 16 kHz mono float32 audio."""

    name = "silero-vad"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        pad_ms: int = 500,
        min_speech_ms: int = 250,
        min_silence_ms: int = 100,
        max_gap_ms: int = 1000,
        onnx: bool = True,
    ) -> None:
        """`min_speech_ms` of speech without a pause is what counts as someone speaking
        (clicks and breaths are shorter). Once that is found, shorter bursts up to
        `max_gap_ms` away join it: that is how a soft first or last word can look. `pad_ms`
        of audio is kept beyond the outermost bursts, as Silero finds an onset up to ~0.1 s
        late.
        """
        self.threshold = threshold
        self.pad_ms = pad_ms
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.max_gap_ms = max_gap_ms
        self.onnx = onnx

    def speech_span(self, audio: np.ndarray) -> tuple[int, int] | None:
        """Sample indices [start, end) from the first speech to the last, padded; None if silent."""
        samples = _as_mono_float(audio)
        if len(samples) < 512:  # one Silero window at 16 kHz
            return None
        span = _join(self._timestamps(samples), _samples(self.min_speech_ms), _samples(self.max_gap_ms))
        if span is None:
            return None
        pad = _samples(self.pad_ms)
        return max(0, span[0] - pad), min(len(samples), span[1] + pad)

    def trim(self, audio: np.ndarray) -> np.ndarray:
        """The audio without leading and trailing silence; empty when there is no speech."""
        samples = _as_mono_float(audio)
        span = self.speech_span(samples)
        if span is None:
            return samples[:0]
        return samples[span[0] : span[1]]

    def has_speech(self, audio: np.ndarray) -> bool:
        """Whether anyone speaks in `audio` (at least `min_speech_ms` of it without a pause)."""
        return self.speech_span(audio) is not None

    def _timestamps(self, samples: np.ndarray) -> list[dict[str, int]]:
        """Every burst of speech, however short: `_join` decides which of them count."""
        model, lock = _load_model(self.onnx)  # first: importing silero_vad resets torch threads
        import torch
        from silero_vad import get_speech_timestamps

        with lock:
            stamps: list[dict[str, int]] = get_speech_timestamps(
                torch.from_numpy(samples),
                model,
                threshold=self.threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=0,
                min_silence_duration_ms=self.min_silence_ms,
                speech_pad_ms=0,
            )
        return stamps


def _join(stamps: list[dict[str, int]], min_speech: int, max_gap: int) -> tuple[int, int] | None:
    """[start, end) of the speech: from the first burst of at least `min_speech` samples to
    the last, widened over shorter bursts outside them for as long as no gap between two
    exceeds `max_gap`; None when no burst is long enough."""
    long = [i for i, stamp in enumerate(stamps) if stamp["end"] - stamp["start"] >= min_speech]
    if not long:
        return None
    first, last = long[0], long[-1]
    while first > 0 and stamps[first]["start"] - stamps[first - 1]["end"] <= max_gap:
        first -= 1
    while last < len(stamps) - 1 and stamps[last + 1]["start"] - stamps[last]["end"] <= max_gap:
        last += 1
    return stamps[first]["start"], stamps[last]["end"]


def _samples(ms: int) -> int:
    return ms * SAMPLE_RATE // 1000


_LOAD_LOCK = threading.Lock()
_MODELS: dict[bool, tuple[Any, threading.Lock]] = {}


def _load_model(onnx: bool) -> tuple[Any, threading.Lock]:
    """The process-wide Silero model of each kind, with the lock that guards its state."""
    with _LOAD_LOCK:
        if onnx not in _MODELS:
            import torch

            threads = torch.get_num_threads()
            try:
                from silero_vad import load_silero_vad

                _MODELS[onnx] = (load_silero_vad(onnx=onnx), threading.Lock())
            except ImportError as err:
                raise ModelAssetError(_MISSING) from err
            finally:
                torch.set_num_threads(threads)
        return _MODELS[onnx]


def _as_mono_float(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected 16 kHz mono audio (1-D), got shape {arr.shape}")
    if not (arr.flags.c_contiguous and arr.flags.writeable):  # torch.from_numpy needs both
        arr = arr.copy()
    return arr


class SpeechProbabilities:
    """Silero's speech probability for each 32 ms window of a live 16 kHz stream.

    Each stream keeps its own recurrent state (the shared ONNX session holds none), so many
    connections can listen at once.
    """

    window = 512
    """Samples per window at 16 kHz."""
    _CONTEXT = 64

    def __init__(self) -> None:
        model, _ = _load_model(True)
        self._session = model.session
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, self._CONTEXT), np.float32)
        self._pending = np.zeros(0, np.float32)

    def feed(self, audio: np.ndarray) -> list[float]:
        """The probabilities of the windows `audio` completes (leftover samples wait for more)."""
        self._pending = np.concatenate([self._pending, _as_mono_float(audio)])
        count = len(self._pending) // self.window
        probabilities = []
        for index in range(count):
            window = self._pending[index * self.window : (index + 1) * self.window][None, :]
            x = np.concatenate([self._context, window], axis=1)
            out, self._state = self._session.run(
                None, {"input": x, "state": self._state, "sr": np.array(SAMPLE_RATE, dtype=np.int64)}
            )
            self._context = x[:, -self._CONTEXT :]
            probabilities.append(float(out.reshape(-1)[0]))
        self._pending = self._pending[count * self.window :]
        return probabilities
