"""Spoken questions for the tests, said by espeak-ng: a different voice from the reply TTS."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from model.audio import decode_audio

__all__ = ["espeak_wav", "spoken"]


def espeak_wav(text: str, *, speed: int = 150) -> bytes:
    """`text` spoken by espeak-ng as WAV bytes (22,050 Hz). deploy/bootstrap.sh installs it."""
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is missing: run deploy/bootstrap.sh"
    done = subprocess.run([binary, "-v", "en-us", "-s", str(speed), "--stdout", text], capture_output=True, check=True)
    return done.stdout


def spoken(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng, decoded to 16 kHz mono float32."""
    return decode_audio(espeak_wav(text))
