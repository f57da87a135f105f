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

We run the ONNX export that ships in the `silero-vad` wheel in onnxruntime, single-threaded,
and find the bursts of speech in its probabilities as `silero_vad.get_speech_timestamps`
does (the same hysteresis: in at `threshold`, out after `min_silence_ms` below `threshold -
0.15`). On a 2-core CPU it trimmed 4.6 s of audio in 12 ms against 22 ms for the TorchScript
model. The package itself is never imported: it imports torch, which holds ~480 MB of a
server's memory and which nothing else on the CPU path needs. The session is loaded once
per process and shared; each call keeps its own recurrent state, so calls run side by side.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
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
        window = SpeechProbabilities.window
        padded = np.concatenate([samples, np.zeros(-len(samples) % window, np.float32)])
        return _bursts(SpeechProbabilities().feed(padded), len(samples), self.threshold, _samples(self.min_silence_ms))


def _bursts(probabilities: list[float], length: int, threshold: float, min_silence: int) -> list[dict[str, int]]:
    """[start, end) of each burst of speech in a recording of `length` samples, from its windows'
    probabilities: in at `threshold`, out once they stay below `threshold - 0.15` for
    `min_silence` samples (silero_vad's `get_speech_timestamps`, no padding, no minimum)."""
    exit_below = max(threshold - 0.15, 0.01)
    bursts: list[dict[str, int]] = []
    start: int | None = None
    quiet_since = 0
    for index, probability in enumerate(probabilities):
        at = index * SpeechProbabilities.window
        if probability >= threshold:
            quiet_since = 0
            if start is None:
                start = at
                continue
        if probability < exit_below and start is not None:
            quiet_since = quiet_since or at
            if at - quiet_since >= min_silence:
                if quiet_since > start:
                    bursts.append({"start": start, "end": quiet_since})
                start, quiet_since = None, 0
    if start is not None and length > start:
        bursts.append({"start": start, "end": length})
    return bursts


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
_SESSION: list[Any] = []


def _session() -> Any:
    """The process-wide onnxruntime session of the ONNX model inside the silero-vad wheel."""
    with _LOAD_LOCK:
        if not _SESSION:
            spec = importlib.util.find_spec("silero_vad")  # finds the package without importing it (torch)
            if spec is None or not spec.submodule_search_locations:
                raise ModelAssetError(_MISSING)
            path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
            if not path.is_file():
                raise ModelAssetError(f"{_MISSING} (no {path})")
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            _SESSION.append(onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
        return _SESSION[0]


def _as_mono_float(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected 16 kHz mono audio (1-D), got shape {arr.shape}")
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
        self._session = _session()
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
