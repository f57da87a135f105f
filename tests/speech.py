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

__all__ = ["espeak_wav", "piper_wav"]


def espeak_wav(text: str, *, speed: int = 150) -> bytes:
    """`text` spoken by espeak-ng as WAV bytes (22,050 Hz). deploy/bootstrap.sh installs it."""
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is missing: run deploy/bootstrap.sh"
    done = subprocess.run([binary, "-v", "en-us", "-s", str(speed), "--stdout", text], capture_output=True, check=True)
    return done.stdout


@functools.cache
def _question_voice() -> PiperTTS:
    return PiperTTS(length_scale=1.15)


def piper_wav(text: str) -> bytes:
    """`text` spoken by Piper, slower than the agent speaks, as WAV bytes."""
    tts = _question_voice()
    return encode_wav(np.concatenate(list(tts.synthesize(text))), tts.sample_rate)
