"""Spoken questions for the tests.

`piper_wav` speaks with the Piper voice at a slower rate than the replies; the end-to-end
tests use it because whisper tiny.en mishears espeak-ng's formant voices too often (about
a fifth of their words on the set of api/hearing_set.py, against 1 % for Piper).
`espeak_wav` gives a voice unlike any the agent uses, for tests that only need some speech.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from model.audio import encode_wav
from model.tts import PiperTTS
from model.voices import VoiceSynthesizer

__all__ = ["espeak_wav", "piper_wav", "voice_wav"]


def espeak_wav(text: str, *, speed: int = 150, pitch: int = 50, voice: str = "en-us") -> bytes:
    """`text` spoken by espeak-ng as WAV bytes (22,050 Hz): `speed` in words per minute, `pitch`
    0-99. deploy/bootstrap.sh installs it."""
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is missing: run deploy/bootstrap.sh"
    command = [binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", "--", text]
    return subprocess.run(command, capture_output=True, check=True).stdout


@functools.cache
def _question_voice(length_scale: float) -> PiperTTS:
    return PiperTTS(length_scale=length_scale)


def piper_wav(text: str, *, length_scale: float = 1.15) -> bytes:
    """`text` spoken by Piper, by default slower than the agent speaks, as WAV bytes."""
    tts = _question_voice(length_scale)
    return encode_wav(np.concatenate(list(tts.synthesize(text))), tts.sample_rate)


@functools.cache
def _voices() -> VoiceSynthesizer:
    return VoiceSynthesizer.default()


def voice_wav(text: str, voice: str) -> bytes:
    """`text` in a voice id of the voice library ("piper:joe:p0.85-r0.7": deeper and slower)."""
    synthesizer = _voices()
    return encode_wav(np.concatenate(list(synthesizer.synthesize(text, voice))), synthesizer.sample_rate)
