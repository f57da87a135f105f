"""Voice-aware speech: one synthesizer for every voice id of the voice library.

A voice id names the engine, its base voice and an optional style, so that the id alone
says how to speak: the session state and a tool result carry nothing else, and any
replica renders the same voice from it.

    piper:joe                       the default voice (Piper en_US-joe-medium)
    piper:joe:deep-slow             Piper, pitch and rate changed
    espeak:en-gb-scotland+m3:slow   espeak-ng voice + variant, slower
    espeak:en-us+f2:p1.15-r0.9      numbers: pitch factor 1.15, rate factor 0.9

Style words are `deep`, `low`, `high`, `slow`, `fast`; `p<factor>` and `r<factor>` give the
pitch and speaking-rate factors directly (1.0 is the voice's own). Piper has one timbre,
so its pitch is changed by resampling (which also changes the length; `length_scale`
compensates); espeak-ng takes pitch and words per minute as arguments.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from model.audio import resample
from model.base import SpeechSynthesizer
from model.errors import ModelAssetError
from model.tts import PiperTTS, speakable, split_sentences

__all__ = ["DEFAULT_VOICE_ID", "EspeakTTS", "VoiceStyle", "VoiceSynthesizer", "parse_voice_id", "restyled"]

DEFAULT_VOICE_ID = "piper:joe"
_STYLE_WORDS = {"deep": ("pitch", 0.82), "low": ("pitch", 0.9), "high": ("pitch", 1.2)} | {
    "slow": ("rate", 0.78),
    "fast": ("rate", 1.3),
}
_NUMBER = re.compile(r"([pr])(\d+(?:\.\d+)?)")
_ESPEAK_VOICE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]+)*(?:\+[a-z0-9]+)?")
_BAD_ID = "not a voice id: {voice!r} (like piper:joe, piper:joe:deep-slow or espeak:en-gb-scotland+m3:slow)"
_UNKNOWN_VOICE = "%s; speaking with %s instead"
_NO_ESPEAK = "espeak-ng is not installed (apt-get install espeak-ng): espeak voices are unavailable"
_ESPEAK_FAILED = "espeak-ng failed for voice {voice}: {error}"
_ESPEAK_BASE_WPM = 165
_PITCH_LIMITS = (0.5, 2.0)
_RATE_LIMITS = (0.4, 2.5)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceStyle:
    """A parsed voice id: the engine, its base voice, and pitch and rate factors (1.0 = as is)."""

    engine: str
    voice: str
    pitch: float = 1.0
    rate: float = 1.0

    @property
    def id(self) -> str:
        """The canonical id: numbers rounded to two places, neutral factors left out."""
        parts = [f"p{self.pitch:.2f}"] if abs(self.pitch - 1) >= 0.005 else []
        parts += [f"r{self.rate:.2f}"] if abs(self.rate - 1) >= 0.005 else []
        return f"{self.engine}:{self.voice}" + (":" + "-".join(parts) if parts else "")


def parse_voice_id(voice: str) -> VoiceStyle:
    """The style a voice id names; ValueError when it names none."""
    engine, _, rest = voice.strip().partition(":")
    name, _, style = rest.partition(":")
    known = name == "joe" if engine == "piper" else engine == "espeak" and bool(_ESPEAK_VOICE.fullmatch(name))
    if not known:
        raise ValueError(_BAD_ID.format(voice=voice))
    factors = {"pitch": 1.0, "rate": 1.0}
    for word in filter(None, style.split("-")):
        if word in _STYLE_WORDS:
            key, value = _STYLE_WORDS[word]
            factors[key] *= value
        elif number := _NUMBER.fullmatch(word):
            factors["pitch" if number.group(1) == "p" else "rate"] *= float(number.group(2))
        else:
            raise ValueError(_BAD_ID.format(voice=voice))
    pitch = min(max(factors["pitch"], _PITCH_LIMITS[0]), _PITCH_LIMITS[1])
    rate = min(max(factors["rate"], _RATE_LIMITS[0]), _RATE_LIMITS[1])
    return VoiceStyle(engine, name, pitch, rate)


def restyled(voice: str | None, pitch: float, rate: float) -> str | None:
    """`voice` (None: the default voice) with its pitch and rate multiplied by these factors,
    within the limits every voice keeps; a voice that is not an id of ours is left as it is."""
    try:
        style = parse_voice_id(voice or DEFAULT_VOICE_ID)
    except ValueError:
        return voice
    return parse_voice_id(f"{style.engine}:{style.voice}:p{style.pitch * pitch:.4f}-r{style.rate * rate:.4f}").id


class EspeakTTS:
    """espeak-ng through its command line: ~100 formant voices, variants and accents, no model files.

    Its output is 22,050 Hz mono WAV; it is resampled when the caller wants another rate.
    """

    sample_rate = 22_050

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("espeak-ng")
        if not found:
            raise ModelAssetError(_NO_ESPEAK)
        self.binary = found

    def speak(self, text: str, style: VoiceStyle) -> np.ndarray:
        """`text` in `style` as float32 mono at `sample_rate`."""
        pitch = round(min(max(50 + 100 * math.log2(style.pitch), 0), 99))
        wpm = round(_ESPEAK_BASE_WPM * style.rate)
        # The text goes in on stdin, never as an argument: a sentence starting with "-" would
        # be read as an option ("-f/etc/passwd" makes espeak-ng read that file aloud).
        command = [self.binary, "-v", style.voice, "-s", str(wpm), "-p", str(pitch), "--stdout"]
        try:
            done = subprocess.run(command, input=text.encode(), capture_output=True, check=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            raise ModelAssetError(_ESPEAK_FAILED.format(voice=style.voice, error=err)) from err
        return _wav_samples(done.stdout)


class VoiceSynthesizer(SpeechSynthesizer):
    """Dispatches on the voice id: Piper (the default, with pitch and rate variants) or espeak-ng.

    An unknown or unavailable voice falls back to the default with a warning, as PiperTTS
    does: by the time we speak, the answer is ready, and a wrong voice beats silence.
    """

    def __init__(self, piper: PiperTTS, espeak: EspeakTTS | None = None) -> None:
        self.piper = piper
        self.espeak = espeak
        self.sample_rate = piper.sample_rate
        self.name = "voices"

    @classmethod
    def default(cls) -> VoiceSynthesizer:
        """The packaged Piper voice, plus espeak-ng when it is installed."""
        try:
            espeak: EspeakTTS | None = EspeakTTS()
        except ModelAssetError:
            log.warning(_NO_ESPEAK)
            espeak = None
        return cls(PiperTTS(), espeak)

    def accepts(self, voice: str) -> bool:
        """Whether `voice` is an id this synthesizer can speak (not only parse)."""
        try:
            style = parse_voice_id(voice)
        except ValueError:
            return False
        return style.engine == "piper" or self.espeak is not None

    def style(self, voice: str | None) -> VoiceStyle:
        """The style to speak `voice` in; the default voice for None, the Piper name, or a bad id."""
        if voice is None or voice == self.piper.voice_name:
            return parse_voice_id(DEFAULT_VOICE_ID)
        try:
            style = parse_voice_id(voice)
        except ValueError as err:
            log.warning(_UNKNOWN_VOICE, err, DEFAULT_VOICE_ID)
            return parse_voice_id(DEFAULT_VOICE_ID)
        if style.engine == "espeak" and self.espeak is None:
            log.warning(_UNKNOWN_VOICE, _NO_ESPEAK, DEFAULT_VOICE_ID)
            return parse_voice_id(DEFAULT_VOICE_ID)
        return style

    def synthesize(self, text: str, voice: str | None = None) -> Iterator[np.ndarray]:
        """Float32 mono chunks at `sample_rate`, one per sentence, in the voice `voice` names."""
        style = self.style(voice)
        if style.engine == "espeak" and self.espeak is not None:
            for sentence in split_sentences(speakable(text)):
                audio = self.espeak.speak(sentence, style)
                if audio.size:
                    yield resample(audio, self.espeak.sample_rate, self.sample_rate)
            return
        if style.pitch == 1.0 and style.rate == 1.0:
            yield from self.piper.synthesize(text)
            return
        # Resampling by 1/pitch lowers (or raises) the pitch and stretches the length by
        # 1/pitch; the length scale makes up for that so only `rate` changes the tempo.
        length_scale = (self.piper.length_scale or 1.0) * style.pitch / style.rate
        stretched = round(self.sample_rate * style.pitch)
        for chunk in self.piper.synthesize(text, length_scale=length_scale):
            yield resample(chunk, stretched, self.sample_rate)


def _wav_samples(data: bytes) -> np.ndarray:
    """Float32 samples of a 16-bit mono WAV; espeak's streamed header has no valid length, so it is skipped."""
    start = data.find(b"data")
    if start < 0:
        return np.zeros(0, dtype=np.float32)
    pcm = data[start + 8 :]
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
